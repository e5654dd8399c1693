"""Which harness tasks to run: names, named sets (``paper_19``), and folders of local task files.

A local task is the harness's own YAML format; ``dataset_path: json`` with ``dataset_kwargs:
{data_files: ...}`` reads JSON/JSONL files through ``datasets`` without any network. Indexing
the harness's ~10,000 built-in task files takes seconds, so when every requested task is in
``include_path`` only that folder is indexed.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lm_eval.tasks import TaskManager

from lightning_ltd.errors import InvalidFieldsError


class TaskError(InvalidFieldsError):
    """A task name, task set or task folder that cannot be used (one line)."""


@dataclass(frozen=True)
class PaperTask:
    """One of the paper's 19 tasks, with the metric its tables report."""

    name: str
    metric: str


PAPER_19 = (
    # acc_norm (the reference's ds_evalharness_parallel_run.sh)
    *(PaperTask(name, "acc_norm") for name in ("hellaswag", "piqa", "arc_challenge", "arc_easy", "openbookqa")),
    PaperTask("record", "f1"),
    # lambada is lambada_openai in the reference harness; triviaqa and webqs are generation tasks
    # scored by exact_match in today's harness (the reference's harness scored them as acc)
    PaperTask("lambada_openai", "acc"),
    PaperTask("triviaqa", "exact_match"),
    PaperTask("webqs", "exact_match"),
    *(
        PaperTask(name, "acc")
        for name in (
            "winogrande",
            "race",
            "boolq",
            "copa",
            "rte",
            "wsc",
            "multirc",
            "anli_r1",
            "anli_r2",
            "anli_r3",
        )
    ),
)
TASK_SETS: dict[str, tuple[PaperTask, ...]] = {"paper_19": PAPER_19}
"""Named task sets: ``tasks=paper_19`` runs its tasks and reports its metric average."""


def expand_tasks(names: Sequence[str] | str) -> list[str]:
    """Task names with every set name replaced by its tasks (order kept, duplicates dropped)."""
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise TaskError(["tasks=[]: name at least one task (or tasks=paper_19)"])
    expanded: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise TaskError([f"tasks: {name!r} is not a task name"])
        for task in [t.name for t in TASK_SETS[name]] if name in TASK_SETS else [name]:
            if task not in expanded:
                expanded.append(task)
    return expanded


def include_folders(include_path: str | Sequence[str] | None) -> list[Path]:
    """``include_path`` as existing folders (or YAML files), each checked."""
    if include_path is None:
        return []
    paths = [include_path] if isinstance(include_path, str) else list(include_path)
    folders = []
    for path in paths:
        folder = Path(str(path)).expanduser()
        if not folder.exists():
            raise TaskError([f"include_path={str(path)!r}: no such folder"])
        if folder.is_dir() and not any(folder.rglob("*.yaml")):
            raise TaskError([f"include_path={str(path)!r}: no task YAML files in the folder"])
        folders.append(folder.resolve())
    return folders


def task_manager(tasks: Sequence[str], include_path: str | Sequence[str] | None = None) -> TaskManager:
    """A ``TaskManager`` that knows every name in ``tasks``; an unknown name is one line with the
    nearest known names."""
    folders = include_folders(include_path)
    if folders:
        local = TaskManager(include_path=[str(f) for f in folders], include_defaults=False)
        if all(name in local.all_tasks for name in tasks):
            return local
    manager = TaskManager(include_path=[str(f) for f in folders] or None)
    unknown = [name for name in tasks if name not in manager.all_tasks]
    if unknown:
        raise TaskError([unknown_task_message(name, manager.all_tasks, folders) for name in unknown])
    return manager


def unknown_task_message(name: str, known: Sequence[str], folders: Sequence[Path]) -> str:
    import lm_eval

    where = f"lm-evaluation-harness {getattr(lm_eval, '__version__', '')}".rstrip()
    if folders:
        where += " or include_path"
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return f"tasks: {name!r} is not a task of {where}{hint}"
