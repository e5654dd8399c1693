"""One run per output folder: a lock file that a second run finds, and a killed run leaves stale.

Two runs into one ``hydra.run.dir`` interleave their checkpoints (``last.ckpt``,
``last-v1.ckpt``) and metrics, and a resume from ``last.ckpt`` then continues the other run. The
first run's rank 0 creates ``.lightning-ltd.lock`` (``O_EXCL``: atomic) holding its host and
process id; a second run finds it and stops at start. A lock whose process is gone (the run
was killed) is stale and taken over. Other ranks of the same run write into the folder too, so
only global rank 0 takes the lock. With the lock held, no other run can be saving, so leftover
``.*.partial`` files (an interrupted atomic save) are removed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lightning_ltd.checkpoint import unwritable_folder
from lightning_ltd.errors import ConfigError

LOCK_NAME = ".lightning-ltd.lock"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK")


class FolderInUseError(RuntimeError):
    """Another live run holds the output folder's lock."""


def is_launching_rank() -> bool:
    """Whether this process is global rank 0 (the launcher, before any rank variable is set)."""
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


class RunLock:
    """The lock on ``folder``; ``acquire`` raises ``FolderInUseError`` naming the holder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self.path = self.folder / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a stale lock is removed once, then created anew
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _alive(holder):
                    raise FolderInUseError(
                        f"another run (pid {holder['pid']} on {holder['host']}, started {holder['started']}) is "
                        f"writing into this folder; choose another hydra.run.dir, or wait for it"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its run was killed
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%F %T")}, handle)
            self.held = True
            _HELD[self.folder] = self
            return
        raise FolderInUseError(f"{self.path}: could not be created")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
            _HELD.pop(self.folder, None)

    def _holder(self) -> dict[str, object] | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None  # half-written or unreadable: a run killed while creating it
        return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


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


def _alive(holder: dict[str, object]) -> bool:
    """Whether the holder still runs; on another host it cannot be told, so it counts as alive."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)  # type: ignore[call-overload]
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
