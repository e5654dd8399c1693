"""``lightning-ltd-train ARGV`` (what ``python train.py ARGV`` runs) inside the test process."""

import contextlib
import logging
import sys
from collections.abc import Iterator

import pytest

from lightning_ltd.cli import main
from lightning_ltd.entry import launch


def launched(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the entry point on ``argv``: its exit code and its stderr."""
    monkeypatch.setattr(sys, "argv", ["lightning-ltd-train", *argv])
    with hydra_logging_undone(), pytest.raises(SystemExit) as stopped:
        launch(main)
    return stopped.value.code, capsys.readouterr().err.strip()


@contextlib.contextmanager
def hydra_logging_undone() -> Iterator[None]:
    """The logging Hydra sets up for a run (handlers on capsys's streams) is undone, so later
    tests log as before."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
