"""A quiet console for ``train.py``: our summary, our warnings (one line each, naming the setting)
and Lightning's progress bar. Lightning's adverts, its device census and known-harmless notices
are dropped; everything else (errors, other libraries' warnings, resume messages) still shows."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lightning_ltd.errors import SettingWarning

DROPPED_LOG_LINES = (
    "try installing [litlogger]",  # an advert, on every run
    "GPU available: ",
    "TPU available: ",
    "`Trainer.fit` stopped: ",  # the summary says how many steps ran, and why it stopped
    "Trainer already configured with model summary callbacks",
    "`max_epochs` was not set",  # runs end by steps or by a layer-token budget, never by 1000 epochs
)
DROPPED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",  # Lightning's own use of a torch deprecation, once per rank
    r"The dirpath has changed from",  # a resume writes into its own run folder, by design
    r"Precision (bf)?16-mixed is not supported by the model summary",  # mixed keeps fp32 weights: 32 bits is right
    # our modules' hook (the curriculum's truncation) runs the data module's own first
    r"You have overridden `on_after_batch_transfer` in `LightningModule` but have passed in a `LightningDataModule`",
)
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"  # where rank_zero_info records are made
PYTHON_FORMAT = warnings.formatwarning  # how every other warning is shown


class DropLines(logging.Filter):
    """Drops log records whose message contains one of ``DROPPED_LOG_LINES``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(line in message for line in DROPPED_LOG_LINES)


def format_warning(message: Any, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """Our ``SettingWarning`` as ``warning: <setting>: ...``; every other warning as Python shows it."""
    if issubclass(category, SettingWarning):
        return f"warning: {message}\n"
    return PYTHON_FORMAT(message, category, filename, lineno, line)


def log_through_root() -> None:
    """Send Lightning's log records (its notes and our summary) to the root logger, whose handlers
    ``python train.py`` configures (``hydra/job_logging: run_folder``: the console and
    ``train.log``); Lightning keeps a handler of its own when imported before logging is set up,
    so the run folder's log would stay empty."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def quiet_console() -> None:
    """Install the filters above (idempotent: a second call adds nothing)."""
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, DropLines) for f in logger.filters):
        logger.addFilter(DropLines())
    for pattern in DROPPED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.formatwarning = format_warning


class _HeldRecords(logging.Handler):
    """Keeps the records it is given, to be shown later or dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def log_records_held(*names: str) -> Iterator[list[logging.LogRecord]]:
    """The records that reach these loggers' handlers (``""``: the root) are shown only once the
    block succeeds: a library's notes about an input (transformers warns before it fails, or
    before our own check refuses what it loaded) must not stand above the one error line.

    Handlers a library adds inside the block (its first import configures it) are kept. Yields
    the held records, so a failure's message can quote what the library explained before it."""
    loggers = [logging.getLogger(name or None) for name in names]
    saved = [list(logger.handlers) for logger in loggers]
    held = _HeldRecords()
    for logger in loggers:
        logger.handlers = [held]
    succeeded = False
    try:
        yield held.records
        succeeded = True
    finally:
        for logger, handlers in zip(loggers, saved, strict=True):
            added = [h for h in logger.handlers if h is not held and h not in handlers]
            logger.handlers = [*handlers, *added]
        if succeeded:
            _replay(held.records, loggers)


def _replay(records: list[logging.LogRecord], loggers: list[logging.Logger]) -> None:
    """Each held record to the handlers of the first held logger on its way up (where it landed)."""
    for record in records:
        own = (lg for lg in loggers if record.name == lg.name or record.name.startswith(f"{lg.name}."))
        for handler in next(own, logging.getLogger()).handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
