"""Zero- and few-shot evaluation with lm-evaluation-harness (the ``[eval]`` extra): the harness's
model interface over our modules, task sets (``paper_19``), local task folders, and the
``lightning-ltd-eval`` command. Importing this package needs ``lm_eval``."""

from lightning_ltd.evaluate.harness_lm import CausalHarnessLM, MaskedHarnessLM
from lightning_ltd.evaluate.tasks import PAPER_19, TASK_SETS, expand_tasks, task_manager

__all__ = ["PAPER_19", "TASK_SETS", "CausalHarnessLM", "MaskedHarnessLM", "expand_tasks", "task_manager"]
