"""Zero-shot (or few-shot) evaluation with lm-evaluation-harness during training, so a random-LTD
run and its baseline are compared on the paper's kind of metric as they train, not only at the end."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from lightning_ltd.checks.schema import Count, PositiveInt, checked
from lightning_ltd.errors import InvalidFieldsError

PREFIX = "zeroshot"


class ZeroShotEvaluation(Callback):
    """Every ``every_n_steps`` optimizer steps and when training ends, runs ``tasks`` on the
    module in eval mode (every token kept, no dropout) and logs ``zeroshot/<task>/<metric>`` to
    every logger at that step (``latest`` holds the last values).

    Every rank evaluates (a sharded model needs every rank in each forward); the random
    generators training uses are restored afterwards, so a run with the callback trains exactly
    as one without it. ``tasks`` empty: the callback does nothing (and needs no harness).

    Args:
        tasks: harness task names or sets (``paper_19``); local ones through ``include_path``.
        every_n_steps: optimizer steps between evaluations.
        include_path: a folder (or list) of task YAML files.
        limit: at most this many documents per task (None: all).
        num_fewshot: examples in each prompt (0: zero-shot).
        batch_size: rows per forward.
        at_end: evaluate once more when training ends (unless that step was just evaluated).
        eot_token_id: the end-of-text id, for a tokenizer with none (nor a model config's).
    """

    @checked
    def __init__(
        self,
        tasks: Sequence[str] = (),
        every_n_steps: PositiveInt = 500,
        include_path: str | Sequence[str] | None = None,
        limit: PositiveInt | None = None,
        num_fewshot: Count = 0,
        batch_size: PositiveInt = 8,
        at_end: bool = True,
        eot_token_id: Count | None = None,
    ) -> None:
        self.tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        self.every_n_steps = every_n_steps
        self.include_path = include_path
        self.limit = limit
        self.num_fewshot = num_fewshot
        self.batch_size = batch_size
        self.at_end = at_end
        self.eot_token_id = eot_token_id
        self.latest: dict[str, float] = {}
        self._evaluated_step = -1
        self._prepared: tuple[list[str], Any, Any] | None = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Task names, task files and the tokenizer are checked before the first step."""
        if not self.tasks or stage != "fit":
            return
        from lightning_ltd.evaluate.models import vocabulary_for
        from lightning_ltd.evaluate.tokens import token_contract

        try:
            from lightning_ltd.evaluate.tasks import expand_tasks, task_manager
        except ImportError as err:
            raise InvalidFieldsError(
                ["callbacks.zero_shot.tasks: needs lm-evaluation-harness: pip install 'lightning-ltd[eval]'"]
            ) from err
        try:
            names = expand_tasks(self.tasks)
            manager = task_manager(names, self.include_path)
            source = getattr(trainer.datamodule, "tokenizer_source", None)
            vocabulary = vocabulary_for(source, pl_module, "callbacks.zero_shot (the data's tokenizer)")
            token_contract(vocabulary, pl_module, self.eot_token_id)  # an end-of-text token, before any step
        except InvalidFieldsError as err:
            raise InvalidFieldsError([f"callbacks.zero_shot.{problem}" for problem in err.problems]) from err
        self._prepared = (names, manager, vocabulary)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if self._prepared is not None and step % self.every_n_steps == 0 and step != self._evaluated_step:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._prepared is not None and self.at_end and trainer.global_step != self._evaluated_step:
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: Any, pl_module: Any) -> dict[str, float]:
        """Run the tasks now; log and return ``zeroshot/<task>/<metric>``."""
        from lightning_ltd.evaluate.harness_lm import harness_model
        from lightning_ltd.evaluate.report import metric_rows
        from lightning_ltd.evaluate.runner import run_harness

        assert self._prepared is not None
        names, manager, vocabulary = self._prepared
        was_training = pl_module.training
        with preserved_random_state(), torch.no_grad():
            try:
                model = harness_model(
                    pl_module,
                    vocabulary,
                    batch_size=self.batch_size,
                    device=pl_module.device,
                    eot_token_id=self.eot_token_id,
                )
                results = run_harness(
                    model, names, manager, self.num_fewshot, self.limit, bootstrap_iters=0, seed_global_rngs=False
                )
            finally:
                pl_module.train(was_training)
        self.latest = {metric_name(row): row["value"] for row in metric_rows(results)}
        self._evaluated_step = trainer.global_step
        for logger in trainer.loggers:  # once, at this step (self.log would repeat it at every logging step)
            logger.log_metrics(self.latest, step=trainer.global_step)
        return self.latest

    def state_dict(self) -> dict[str, Any]:
        return {"evaluated_step": self._evaluated_step, "latest": dict(self.latest)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._evaluated_step = int(state_dict.get("evaluated_step", -1))
        self.latest = dict(state_dict.get("latest", {}))


def metric_name(row: dict[str, Any]) -> str:
    """``zeroshot/<task>/<metric>``, the filter appended where it is not the harness's ``none``."""
    suffix = "" if row["filter"] == "none" else f"_{row['filter']}"
    return f"{PREFIX}/{row['task']}/{row['metric']}{suffix}"


class preserved_random_state:
    """Python's, numpy's and torch's generators (CPU and CUDA) as they were before the block:
    the harness shuffles and samples with them."""

    def __enter__(self) -> None:
        self.python, self.numpy = random.getstate(), np.random.get_state()
        self.torch = torch.random.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def __exit__(self, *exc: object) -> None:
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.random.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)
