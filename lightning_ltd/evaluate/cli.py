"""``lightning-ltd-eval`` / ``python -m lightning_ltd.evaluate``: lm-evaluation-harness on a
checkpoint or a Hugging Face folder, Hydra-composed like training (``conf/eval.yaml``).

Every setting is checked before the model loads; a bad one, a missing file, an unknown task or
an unreachable hub dataset is one line on stderr and exit 2. Results go to a new
``results-<time>.json`` (the harness's own dictionary) and ``summary-<time>.md`` beside the
checkpoint, and the table is printed.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lightning_ltd.checks.lock import writer_of
from lightning_ltd.checks.schema import Count, PositiveInt, Range, Seed
from lightning_ltd.checks.targets import value_problems
from lightning_ltd.console import boundary
from lightning_ltd.errors import InvalidFieldsError, writing

ShareOfDocuments = Annotated[float, Range(gt=0, lt=1)]


class EvalSettings:
    """``eval.yaml``'s keys."""

    ckpt_path: str | None
    tokenizer: str | None
    tasks: str | list[str] | None
    include_path: str | list[str] | None
    num_fewshot: Count | None
    limit: PositiveInt | ShareOfDocuments | None
    batch_size: PositiveInt
    max_length: PositiveInt | None
    max_gen_toks: PositiveInt
    eot_token_id: Count | None
    bootstrap_iters: Count
    device: str
    output_dir: str | None
    seed: Seed


class EvalError(InvalidFieldsError):
    """A setting, file or task that stops the evaluation before it runs (one line)."""


def check_settings(cfg: DictConfig) -> None:
    problems = value_problems(cfg, typing.get_type_hints(EvalSettings, include_extras=True))
    pretrained = OmegaConf.select(cfg, "model.pretrained", default=None)
    if pretrained is not None and not isinstance(pretrained, str):
        problems.append(f"model.pretrained={pretrained!r} must be a folder path")
    if isinstance(cfg.get("device"), str) and (missing := device_problem(cfg.device)) is not None:
        problems.append(f"device={cfg.device!r}: {missing}")
    if cfg.get("tasks") is None:
        problems.append("tasks: name the tasks to run (tasks=[lambada_openai,piqa], tasks=paper_19)")
    if problems:
        raise EvalError(problems)


def device_problem(name: str) -> str | None:
    """Why this machine cannot run on the device ``name`` (None: it can)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return "not a device (cpu, cuda, cuda:1, mps)"
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return f"this machine has {torch.cuda.device_count()} CUDA devices (device=cpu runs on the CPU)"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "no MPS device on this machine (device=cpu runs on the CPU)"
    if device.type not in ("cpu", "cuda", "mps"):
        return "must be cpu, cuda, cuda:N or mps"
    return None


def output_folder(cfg: DictConfig, source: Path) -> Path:
    """``output_dir``, else ``CKPT.lm_eval/`` beside a checkpoint file, ``DIR/lm_eval/`` in a folder."""
    if cfg.get("output_dir"):
        return Path(cfg.output_dir).expanduser()
    return source / "lm_eval" if source.is_dir() else source.with_name(f"{source.stem}.lm_eval")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Check, load, run the harness, write and print the results; returns the harness's results
    with ``rows`` (one per metric), ``averages`` (task sets) and the written paths."""
    check_settings(cfg)
    from lightning_ltd.evaluate import report
    from lightning_ltd.evaluate.harness_lm import harness_model
    from lightning_ltd.evaluate.models import load_for_evaluation
    from lightning_ltd.evaluate.runner import run_harness
    from lightning_ltd.evaluate.tasks import expand_tasks, task_manager

    requested = [cfg.tasks] if isinstance(cfg.tasks, str) else list(cfg.tasks)
    tasks = expand_tasks(requested)
    include = cfg.include_path if isinstance(cfg.include_path, str | None) else list(cfg.include_path)
    manager = task_manager(tasks, include)
    pretrained = OmegaConf.select(cfg, "model.pretrained", default=None)
    evaluated = load_for_evaluation(cfg.ckpt_path, pretrained, cfg.tokenizer, cfg.device)
    model = harness_model(
        evaluated.module,
        evaluated.vocabulary,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        max_gen_toks=cfg.max_gen_toks,
        device=cfg.device,
        eot_token_id=cfg.get("eot_token_id"),
    )
    folder = output_folder(cfg, evaluated.source)
    with writer_of(folder, "output_dir"), writing(folder):  # refused before the evaluation, not after it
        results = run_harness(model, tasks, manager, cfg.num_fewshot, cfg.limit, cfg.bootstrap_iters, cfg.seed)
        rows = report.metric_rows(results)
        averages = report.set_averages(rows, requested)
        table = report.summary_table(rows, averages)
        header = f"# lm-evaluation-harness on {evaluated.source}\n\ntasks: {', '.join(tasks)}"
        json_path, table_path = report.write_results(folder, results, table, header)
    print(table, end="")
    print(f"results: {json_path}\nsummary: {table_path}")
    return {**results, "rows": rows, "averages": averages, "results_json": json_path, "summary_md": table_path}


@boundary
def run_command(cfg: DictConfig) -> None:
    """The exit code of one evaluation, a failure's one line on stderr (``console.boundary``)."""
    evaluate(cfg)


@hydra.main(config_path="pkg://lightning_ltd.conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # the command's own process: a task's data loads without a bar above its error line
    sys.exit(run_command(cfg))


def eval_main() -> None:
    """``lightning-ltd-eval``: ``main`` with one-line composition errors."""
    from lightning_ltd.entry import launch

    launch(main)
