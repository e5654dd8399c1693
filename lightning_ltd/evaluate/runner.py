"""One call of ``lm_eval.simple_evaluate`` with this project's settings, shared by the command
and the training callback."""

from __future__ import annotations

from typing import Any

from lightning_ltd.errors import InvalidFieldsError, first_line

DATA_LAYERS = ("datasets", "huggingface_hub", "requests", "urllib3", "fsspec", "aiohttp")
"""Where a task's data fails to load (no network for a hub task, a missing data file)."""
TEMPLATE_LAYERS = ("jinja2",)
"""Where a task's prompt template fails on its documents (a field they lack)."""


class TaskDataError(InvalidFieldsError):
    """A task whose documents could not be read (one line)."""


def run_harness(
    model: Any,
    tasks: list[str],
    manager: Any,
    num_fewshot: int | None = None,
    limit: int | float | None = None,
    bootstrap_iters: int = 0,
    seed: int | None = 1234,
    seed_global_rngs: bool = True,
) -> dict[str, Any]:
    """The harness's results dictionary. ``seed`` seeds few-shot sampling, and with
    ``seed_global_rngs`` also Python's, numpy's and torch's global generators (off inside a
    training run, whose random streams must not move). A task whose data cannot be read is one
    line naming the tasks."""
    import lm_eval

    global_seed = seed if seed_global_rngs else None
    try:
        return lm_eval.simple_evaluate(
            model=model,
            tasks=tasks,
            num_fewshot=num_fewshot,
            limit=limit,
            bootstrap_iters=bootstrap_iters,
            task_manager=manager,
            log_samples=False,
            random_seed=global_seed,
            numpy_random_seed=global_seed,
            torch_random_seed=global_seed,
            fewshot_random_seed=seed,
        )
    except Exception as err:
        layer = type(err).__module__.split(".")[0]
        if layer in DATA_LAYERS or isinstance(err, ConnectionError | FileNotFoundError):
            raise TaskDataError(
                [f"tasks={tasks}: a task's data could not be read ({type(err).__name__}: {first_line(err, 300)})"]
            ) from err
        if layer in TEMPLATE_LAYERS:
            raise TaskDataError(
                [f"tasks={tasks}: a task's template does not fit its documents ({first_line(err, 300)})"]
            ) from err
        raise
