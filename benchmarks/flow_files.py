"""Count the project files a run passes through before ``Trainer.fit`` starts.

``python benchmarks/flow_files.py [overrides ...]`` runs ``train.py`` (a 1-step run in a
temporary folder unless told otherwise) under a profiler and prints two numbers: the project
files on the call stack where ``fit`` is called (the path a reader follows from ``train.py``),
and every file of this repository whose functions are called between the start and ``fit``
(not counting the objects that Hydra's ``instantiate`` builds, nor what module bodies run while
importing: definitions, not the flow a reader follows).
"""

from __future__ import annotations

import os
import runpy
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    folder = tempfile.mkdtemp()
    overrides = sys.argv[1:] or ["trainer.max_steps=1", "trainer.limit_val_batches=0", "logger=null"]
    sys.argv = ["train.py", *overrides, f"hydra.run.dir={folder}"]
    seen: list[str] = []

    def profile(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if code.co_name == "fit" and code.co_filename.endswith("trainer/trainer.py"):
            sys.setprofile(None)
            report(seen, stack_files(frame.f_back))
            sys.stdout.flush()
            os._exit(0)  # the count is taken: no need to train
        path = Path(code.co_filename)
        if path.is_relative_to(ROOT) and "tests" not in path.parts and not importing(frame):
            name = str(path.relative_to(ROOT))
            if name not in seen:
                seen.append(name)

    sys.setprofile(profile)
    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")


def importing(frame) -> bool:
    """Whether the call runs a module body or is made by one (an import, a decorator), or builds
    a config group's object (``hydra.utils.instantiate``: the model, data and callbacks the user
    chose are what the run runs, not the path it takes to run them)."""
    while frame is not None and Path(frame.f_code.co_filename) != ROOT / "train.py":
        if frame.f_code.co_name == "<module>" or "hydra/_internal/instantiate" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def stack_files(frame) -> list[str]:
    """The project files on the call stack where ``fit`` is called: the path to it."""
    files: list[str] = []
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else None
        if name and name != "benchmarks/flow_files.py" and name not in files:
            files.insert(0, name)
        frame = frame.f_back
    return files


def report(seen: list[str], path: list[str]) -> None:
    for name in seen:
        print(name)
    print(f"{len(seen)} project files called before Trainer.fit")
    print(f"path to Trainer.fit: {' -> '.join(path)} ({len(path)} files)")


if __name__ == "__main__":
    main()
