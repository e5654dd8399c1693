"""Checkpoint files that are whole or absent: written beside the target, then renamed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lightning_ltd.errors import writing


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are atomic on any local filesystem, and whose loads
    are ``weights_only=True``.

    Lightning's own save stages the file in the system's temporary folder; when the checkpoint
    folder is on another filesystem the final move is a copy, and a crash during it leaves a
    truncated ``last.ckpt``: the last good checkpoint is lost. Here the bytes go to a hidden
    file in the target's folder, are flushed to disk, and ``os.replace`` swaps it in.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote: Lightning's transactional save
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            with writing(target), open(temporary, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def load_checkpoint(
        self,
        path: Any,
        map_location: Callable[..., Any] | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Plain tensors and types only (``weights_only=True``), explicitly, whatever torch's default."""
        return super().load_checkpoint(path, map_location, weights_only=True if weights_only is None else weights_only)


def unwritable_folder(folder: str | os.PathLike[str]) -> str | None:
    """Why checkpoints cannot be written under ``folder`` (None if they can), checked before any work."""
    existing = Path(folder).expanduser().absolute()
    missing = None
    while not existing.exists():
        existing, missing = existing.parent, existing
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None if missing is None else uncreatable(missing)


def uncreatable(folder: Path) -> str | None:
    """Why ``folder`` (whose parent exists) cannot be created, found by creating and removing
    it: permission bits do not tell (root, read-only mounts, ``/proc``)."""
    try:
        folder.mkdir()
    except FileExistsError:
        return None
    except OSError as err:
        return f"cannot create {folder} ({err.strerror or err})"
    with contextlib.suppress(OSError):  # another process has put something there since: it can be written
        folder.rmdir()
    return None
