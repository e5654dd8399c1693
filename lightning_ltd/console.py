"""A quiet console for ``train.py``: our summary, our warnings (one line each, naming the setting)
and Lightning's progress bar. Lightning's adverts, its device census and known-harmless notices
are dropped; everything else (errors, other libraries' warnings, resume messages) still shows."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from lightning_ltd.errors import (
    BAD_PATHS,
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NON_FINITE_LOSS,
    EXIT_OS_ERROR,
    EXIT_PREEMPTED,
    ConfigError,
    DataError,
    InvalidFieldsError,
    NonFiniteLossError,
    SettingWarning,
)

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
WARNINGS_LOGGER = "lightning_ltd.warnings"  # the console's warnings, into the run folder's log files


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


def command_console() -> None:
    """The console of a command (``python train.py``): Lightning's notes through the root logger
    into Hydra's ``train.log``, and the filters above. Process-wide, so only an entry point calls
    it, never ``train(cfg)``."""
    log_through_root()
    quiet_console()
    warnings_into_log_files()


def warnings_into_log_files() -> None:
    """Every warning the console shows (on stderr, as it is) also goes into the run folder's log
    files (the root logger's file handlers, ``train.log``), and only there (idempotent)."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    logger = logging.getLogger(WARNINGS_LOGGER)
    if not files or getattr(warnings.showwarning, "into_log_files", False):
        return
    logger.propagate = False  # not again on the console
    for handler in files:
        logger.addHandler(handler)
    show = warnings.showwarning

    def show_and_log(message: Any, category: type[Warning], filename: str, lineno: int, *args: Any) -> None:
        show(message, category, filename, lineno, *args)
        logger.warning(format_warning(message, category, filename, lineno).rstrip())

    show_and_log.into_log_files = True  # type: ignore[attr-defined]
    warnings.showwarning = show_and_log


def quiet_lightning() -> None:
    """Drop Lightning's advert and census lines and the warnings above, which Lightning raises on
    its own account in every fit (idempotent). Importing ``lightning_ltd`` calls it, so library
    use is as quiet as ``train.py``; every other message, warning and error still shows."""
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, DropLines) for f in logger.filters):
        logger.addFilter(DropLines())
    for pattern in DROPPED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def quiet_console() -> None:
    """``quiet_lightning``, and our warnings as one line each (idempotent)."""
    quiet_lightning()
    warnings.formatwarning = format_warning


HELD_LOGGERS = ("", "transformers")  # the root (ours, Lightning's) and transformers' (it does not propagate)


@contextmanager
def messages_held_until_checked() -> Iterator[None]:
    """Warnings and log records raised while the settings are checked appear only if the checks
    pass: a bad input's one error line stands alone on stderr."""
    with warnings.catch_warnings(record=True) as held, log_records_held(*HELD_LOGGERS):
        yield
    for warning in held:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


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


def original_message(err: BaseException) -> str:
    """The error's own line: a DataLoader worker re-raises it with the worker's traceback in the
    message, whose last line is ``module.Type: the original message``."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught "):
        return lines[-1].split(": ", 1)[-1]
    return lines[0] if lines else type(err).__name__


def setting_message(err: Exception) -> str:
    """Ours name their keys; Lightning's (``ModelCheckpoint(monitor='val/nope') could not find
    the monitored key ...``) name the callback or argument, up to its ``HINT``."""
    if isinstance(err, InvalidFieldsError):
        return str(err)
    return f"trainer: {' '.join(str(err).split()).split(' HINT:')[0]}"


def exit_code(err: BaseException) -> int | None:
    """The one-line report (on stderr) and exit code of a failure a user can act on; None: an
    unexpected failure, which keeps its traceback.

    2: a bad setting, path, data or checkpoint; 3: the loss went non-finite (the last good
    checkpoint is kept); 5: a file operation the machine refused (disk full, file too large,
    permissions), naming the file; 130: interrupted; 143 / 138: stopped by SIGTERM / SIGUSR1
    after writing a checkpoint of the last whole step."""
    if isinstance(err, (ConfigError, NonFiniteLossError)):
        message, code = str(err), EXIT_NON_FINITE_LOSS if isinstance(err, NonFiniteLossError) else EXIT_BAD_INPUT
    elif isinstance(err, DataError):  # found as the data is read, in the main process or a loader worker
        message, code = original_message(err), EXIT_BAD_INPUT
    elif isinstance(err, (InvalidFieldsError, MisconfigurationException)):  # judged once the run's shape is known
        message, code = setting_message(err), EXIT_BAD_INPUT
    elif isinstance(err, OSError) and err.filename is not None:  # a wrong path, a full disk, a lost mount
        code = EXIT_BAD_INPUT if isinstance(err, BAD_PATHS) else EXIT_OS_ERROR
        message = f"{err.filename}: {err.strerror or err}"
    elif isinstance(err, SIGTERMException):  # PreemptionCheckpoint wrote the checkpoint and set the code
        message = err.args[0] if err.args else "stopped by SIGTERM"
        code = err.code if isinstance(err.code, int) and err.code else EXIT_PREEMPTED
    elif isinstance(err, KeyboardInterrupt):
        message, code = "interrupted", EXIT_INTERRUPTED
    else:
        return None
    print(f"error: {message}", file=sys.stderr)
    return code


def boundary(command: Callable[..., int | None]) -> Callable[..., int]:
    """The one error boundary of every command (``train.py``, ``lightning-ltd-eval``, ``prepare``,
    ``rarity``, ``tiny``): the command's exit code, or a failure's one line and its code
    (``exit_code``). Unexpected failures keep their traceback."""

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> int:
        end_composition_errors()
        try:
            return command(*args, **kwargs) or 0
        except (Exception, KeyboardInterrupt, SIGTERMException) as err:
            if (code := exit_code(err)) is None:
                raise
            return code

    guarded.is_boundary = True  # type: ignore[attr-defined]
    return guarded


RAISE_VARIABLE = "HYDRA_FULL_ERROR"
OURS = "LIGHTNING_LTD_SET_HYDRA_FULL_ERROR"
"""Marks a ``HYDRA_FULL_ERROR`` that ``entry.launch`` set (and a task's start removes again), so
that the rank processes a launcher starts from this one's environment do not take it for the user's."""


def end_composition_errors() -> None:
    """Undo ``entry.launch``'s ``HYDRA_FULL_ERROR``: from the task on, an error is the task's,
    not a bad override, and Hydra reports as usual."""
    if os.environ.pop(OURS, None) == "1":
        os.environ.pop(RAISE_VARIABLE, None)


class CommandParser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are the boundary's one line and exit 2, like every other
    bad input (argparse itself prints the usage, then its message); ``--help`` shows the
    command's module docstring as written."""

    def __init__(self, module: str, description: str | None) -> None:
        formatter = argparse.RawDescriptionHelpFormatter
        super().__init__(prog=f"python -m {module}", description=description, formatter_class=formatter)

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (--help lists the arguments)")
