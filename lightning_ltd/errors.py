"""The error types of bad settings and data, so every entry point can name the offending key."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class InvalidFieldsError(ValueError):
    """Raised with every problem at once; each problem starts with the field's name.

    Callers that know where the fields came from (``train.py``: the Hydra group) prefix each
    problem with that path, so a user sees ``ltd.min_keep=-1 must be ...`` on one line.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))

    def prefixed(self, prefix: str) -> str:
        return "; ".join(f"{prefix}.{problem}" for problem in self.problems)


class DataError(InvalidFieldsError):
    """Bad data input; one line naming the path (``path=...``) or the key."""

    def __init__(self, problems: str | list[str]) -> None:
        super().__init__([problems] if isinstance(problems, str) else problems)


def first_line(err: BaseException, limit: int = 200) -> str:
    """An exception's first line (its type's name if it has no text): what fits a one-line error,
    since library errors often run to paragraphs of advice."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__


def raise_if(problems: Sequence[str]) -> None:
    if problems:
        raise InvalidFieldsError(problems)


def is_int(value: object) -> bool:
    """An ``int`` that is not a ``bool`` (YAML's ``true`` must not pass for 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class SettingWarning(UserWarning):
    """A setting that works, but probably not as meant; ``train.py`` shows it as one line naming
    the setting (``warning: lr.warmup_steps=50 ...``), not as a location in Hydra's internals."""


class ConfigError(ValueError):
    """A bad setting, reported as one line that names its full key (``ltd.min_keep=...``)."""


def stop_if(problems: list[str]) -> None:
    """Every problem found so far, on one line."""
    if problems:
        raise ConfigError("; ".join(problems))


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the first such step."""


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """A failed write names the file (or folder) it was writing: torch's checkpoint writer,
    safetensors and a plain ``write`` raise without one, or as their own error type, and the
    boundary maps an ``OSError`` with a filename to one line and exit 5."""
    try:
        yield
    except OSError as err:
        if err.filename is not None:
            raise
        raise OSError(err.errno or errno.EIO, err.strerror or str(err), str(path)) from err
    except Exception as err:  # torch's zip writer, safetensors: their own error, the refused write behind it
        code = refused_write(err)
        if code is None:
            raise
        raise OSError(code, os.strerror(code), str(path)) from err


def refused_write(err: Exception) -> int | None:
    """The ``errno`` of the write a writer library failed on (None: not a write failure)."""
    if isinstance(err.__context__, OSError) and err.__context__.errno:
        return err.__context__.errno
    if found := re.search(r"os error (\d+)", str(err)):  # safetensors (Rust's std::io::Error)
        return int(found.group(1))
    return errno.EIO if isinstance(err, RuntimeError) and "write" in str(err) else None


BAD_PATHS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError)
"""``OSError``s that are a wrong path in the input, not a machine refusing a write."""

EXIT_BAD_INPUT = 2
EXIT_NON_FINITE_LOSS = 3
EXIT_OS_ERROR = 5  # the machine refused a file operation (disk full, permissions, a lost mount)
EXIT_PREEMPTED = 128 + 15  # SIGTERM (SIGUSR1: 138): a checkpoint of the last whole step was written
EXIT_INTERRUPTED = 128 + 2  # Ctrl-C
