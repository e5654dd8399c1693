"""One run per output folder: an operating-system lock that a second run finds, and that ends
with the process that holds it.

Two runs into one ``hydra.run.dir`` interleave their checkpoints (``last.ckpt``,
``last-v1.ckpt``) and metrics, and a resume from ``last.ckpt`` then continues the other run. The
first run's rank 0 locks ``.lightning-ltd.lock`` with ``filelock`` (``flock``: the kernel, or the
NFS server, releases it when the process dies, on this host or another, so a killed or preempted
run never blocks its requeued resume) and writes its host and process id into it for the
message a second run prints. Other ranks of the same run write into the folder too, so only
global rank 0 takes the lock. With the lock held, no other run can be saving, so leftover
``.*.partial`` files (an interrupted atomic save) are removed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from lightning_ltd.checkpoint import unwritable_folder
from lightning_ltd.errors import ConfigError

LOCK_NAME = ".lightning-ltd.lock"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK")


class FolderInUseError(RuntimeError):
    """Another live run holds the output folder's lock; ``holder`` says who (pid, host, start)."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(
            f"another run ({holder}) is writing into this folder; choose another hydra.run.dir, or wait for it"
        )


def is_launching_rank() -> bool:
    """Whether this process is global rank 0 (the launcher, before any rank variable is set)."""
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


class RunLock:
    """The lock on ``folder``; ``acquire`` raises ``FolderInUseError`` naming the holder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self.path = self.folder / LOCK_NAME
        self._lock = FileLock(self.path, timeout=0, thread_local=False, on_acquired=_write_holder)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise FolderInUseError(self._holder()) from None
        _HELD[self.folder] = self

    def release(self) -> None:
        """Remove the file while still holding it, then unlock: a run waiting on the old file finds
        it unlinked once it gets the ``flock`` and takes a new one (``filelock`` checks)."""
        if self.held:
            self.path.unlink(missing_ok=True)
            self._lock.release(force=True)
            _HELD.pop(self.folder, None)

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
        except (OSError, ValueError, TypeError, KeyError):
            return "its lock file names no holder yet"  # being written this very moment


def _write_holder(descriptor: int) -> None:
    """Who holds the lock, for the message another run prints (the lock itself is the ``flock``)."""
    os.ftruncate(descriptor, 0)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%F %T")}
    os.pwrite(descriptor, json.dumps(holder).encode(), 0)


_HELD: dict[Path, RunLock] = {}
"""The locks this process holds, by folder: the entry point takes a folder's lock before Hydra
writes into it, and the run it starts continues under that lock instead of taking its own."""


def hold(folder: str | os.PathLike[str]) -> RunLock:
    """This process's lock on ``folder``: the one it already holds, or a new one acquired."""
    held = _HELD.get(Path(folder).expanduser().absolute())
    if held is not None:
        return held
    lock = RunLock(folder)
    lock.acquire()
    return lock


def release_all() -> None:
    """Release every lock this process holds (the entry point's last step, however it ends)."""
    for lock in list(_HELD.values()):
        lock.release()


def earlier_run_problem(folder: str | os.PathLike[str], resuming: bool) -> str | None:
    """A fresh run into a folder that already holds a run's checkpoints would overwrite its
    ``last.ckpt`` and ``.hydra/config.yaml`` (the record of how it was made); None: the folder
    holds none, or this run resumes (``ckpt_path``)."""
    location = Path(folder).expanduser()
    if resuming or not location.is_dir():
        return None
    found = next(iter(sorted(location.glob("*.ckpt")) + sorted(location.glob("*/*.ckpt"))), None)
    if found is None:
        return None
    return (
        f"holds an earlier run's checkpoint ({found.relative_to(location)}): resume it with "
        f"ckpt_path={found}, or choose another folder"
    )


def remove_partial_saves(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.*.partial`` files an interrupted atomic save left in ``folder``."""
    location = Path(folder).expanduser()
    removed = sorted(location.glob(".*.partial")) if location.is_dir() else []
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def hold_output_dir(cfg: DictConfig) -> RunLock | None:
    """Rank 0 locks ``paths.output_dir`` (one run per folder; the entry point may hold it already)
    and clears the checkpoint folder of an interrupted save's ``.partial`` files; None where this
    process takes no lock."""
    folder = OmegaConf.select(cfg, "paths.output_dir", default=None)
    if not isinstance(folder, str) or not is_launching_rank():
        return None
    reason = unwritable_folder(folder) if folder.strip() else "an empty path"
    if reason:
        raise ConfigError(f"paths.output_dir={folder!r}: cannot write there ({reason})")
    try:
        lock = hold(folder)
    except FolderInUseError as err:
        raise ConfigError(f"paths.output_dir={folder!r}: {err}") from err
    if (earlier := earlier_run_problem(folder, cfg.get("ckpt_path") is not None)) is not None:
        lock.release()
        raise ConfigError(f"paths.output_dir={folder!r} {earlier}")
    checkpoints = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    if isinstance(checkpoints, str):
        remove_partial_saves(checkpoints)
    return lock


@contextmanager
def writer_of(folder: str | os.PathLike[str], name: str) -> Iterator[RunLock]:
    """The lock a command holds on the folder it writes (``prepare``'s output, ``rarity``'s corpus,
    ``tiny``'s folder, evaluation results): the run folder's lock, so a second writer of any kind
    is refused in one line naming ``name`` instead of silently replacing the first one's files.
    A folder it created for a command that then fails is removed again if still empty."""
    location = Path(folder).expanduser()
    if location.exists() and not location.is_dir():
        raise ConfigError(f"{name}={str(folder)!r}: is a file, not a folder")
    created = not location.exists()
    lock = RunLock(location)
    try:
        lock.acquire()
    except FolderInUseError as err:
        message = f"another process ({err.holder}) is writing into this folder; wait for it"
        raise ConfigError(f"{name}={str(folder)!r}: {message}") from None
    except OSError as err:
        raise ConfigError(f"{name}={str(folder)!r}: cannot create it ({err.strerror or err})") from None
    try:
        yield lock
    except BaseException:
        lock.release()
        if created and not any(location.iterdir()):  # a refused command leaves no empty folder behind
            location.rmdir()
        raise
    lock.release()
