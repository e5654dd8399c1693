"""``lightning-ltd-train ARGV`` (what ``python train.py ARGV`` runs) inside the test process."""

import logging
import sys

import pytest

from lightning_ltd.cli import main
from lightning_ltd.entry import launch


def launched(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the entry point on ``argv``: its exit code and its stderr. The logging Hydra sets up
    for the run (handlers on capsys's streams) is undone, so later tests log as before."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(sys, "argv", ["lightning-ltd-train", *argv])
    try:
        with pytest.raises(SystemExit) as stopped:
            launch(main)
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    return stopped.value.code, capsys.readouterr().err.strip()
