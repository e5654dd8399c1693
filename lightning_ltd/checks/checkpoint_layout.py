"""What a checkpoint holds, read the same way from each layout Lightning writes: one file (most
strategies, FSDP with ``state_dict_type: full``), a DeepSpeed folder, a sharded FSDP folder.

A resume check needs the run's metadata (step, hyperparameters, callback states), the weights'
names, shapes and dtypes, and whether any weight or optimizer state holds a NaN or inf. Files
are read through a memory map, a sharded folder's tensors a bounded batch at a time
(``SCAN_BYTES``), so memory stays flat; everything loads with ``weights_only=True`` (a DeepSpeed
optimizer file that needs more, its loss scaler object, is left to DeepSpeed's own load).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from lightning_ltd.checks.checkpoint_counters import COUNTERS, VERSION_KEY, counter_problem, version_problem
from lightning_ltd.checks.fingerprint import CHECKPOINT_KEY as FINGERPRINT_KEY
from lightning_ltd.errors import first_line

Layout = Literal["file", "deepspeed", "sharded"]
DEEPSPEED_TAG_FILE = "latest"  # DeepSpeed writes the tag of the newest save here
DEEPSPEED_MODEL_STATES = "mp_rank_00_model_states.pt"
SHARDED_METADATA = "meta.pt"  # Lightning's non-tensor part of a sharded FSDP checkpoint
DEEPSPEED_PREFIX = "_forward_module."  # Lightning's wrapper around the module DeepSpeed holds
SHARDED_PREFIX = "model."  # the key Lightning's FSDP saves the module's state under
SCAN_BYTES = 256 * 2**20  # a sharded folder's tensors are read for the NaN scan this many bytes at a time


@dataclass
class SavedRun:
    """The parts of a checkpoint a resume check reads."""

    layout: Layout
    global_step: int
    hyper_parameters: dict[str, Any]
    callbacks: dict[str, Any]
    weight_shapes: dict[str, tuple[int, ...]]
    fingerprint: dict[str, Any] | None  # the run's trajectory keys (``lightning_ltd.checks.fingerprint``)
    weight_dtypes: dict[str, torch.dtype] = field(default_factory=dict)
    non_finite: str | None = None  # the first weight or optimizer state holding a NaN or inf
    missing: tuple[str, ...] = ()  # parts of a full training checkpoint it lacks (``RESUME_STATE``)
    moment_dtypes: dict[str, torch.dtype] = field(default_factory=dict)  # optimizer states but ``step`` (files)
    optimizer_states: list[Any] | None = None  # a file's ``optimizer_states`` (memory-mapped); None: elsewhere
    lr_scheduler_count: int = 0  # how many LR scheduler states it holds (a file's ``lr_schedulers``)


def checkpoint_layout(path: Path) -> Layout | None:
    """The layout at ``path`` (None: not a checkpoint Lightning writes)."""
    if path.is_file():
        return "file"
    if path.is_dir() and (path / SHARDED_METADATA).is_file():
        return "sharded"
    if path.is_dir() and ((path / DEEPSPEED_TAG_FILE).is_file() or any(path.glob(f"*/{DEEPSPEED_MODEL_STATES}"))):
        return "deepspeed"
    return None


def read_checkpoint(path: str) -> tuple[SavedRun | None, str | None]:
    """The checkpoint's run, or why it is not one."""
    location = Path(path).expanduser()
    layout = checkpoint_layout(location)
    if layout is None:
        kind = "a folder" if location.is_dir() else "no such file or folder"
        return None, f"{kind}, not a checkpoint (neither a file, a DeepSpeed folder nor a sharded FSDP folder)"
    try:
        return _READERS[layout](location), None
    except _NotACheckpoint as err:
        return None, str(err)
    except Exception as err:  # torch raises many kinds for corrupt, truncated or foreign files
        return None, f"not a readable checkpoint ({first_line(err, 160)})"


class _NotACheckpoint(ValueError):
    pass


def _load(path: Path) -> dict[str, Any]:
    if path.stat().st_size == 0:
        raise _NotACheckpoint(f"{path.name} is empty (a save that never completed?)")
    if not is_torch_file(path):  # text, JSON, safetensors: torch's own error is about mmap
        raise _NotACheckpoint(f"not a readable checkpoint ({path.name} is neither a torch.save zip nor a pickle)")
    loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(loaded, dict) or "global_step" not in loaded:
        raise _NotACheckpoint(f"not a Lightning checkpoint ({path.name} has no global_step)")
    for key, words in COUNTERS:
        value = loaded.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _NotACheckpoint(f"{key}={value!r} in {path.name} is not {words}")
    if (unreadable := version_problem(loaded.get(VERSION_KEY), path.name)) is not None:
        raise _NotACheckpoint(unreadable)
    for key in ("hyper_parameters", "callbacks", "loops", FINGERPRINT_KEY):
        if loaded.get(key) is not None and not isinstance(loaded[key], dict):
            raise _NotACheckpoint(f"its {key} is a {type(loaded[key]).__name__}, not a mapping")
    if (problem := counter_problem(loaded)) is not None:
        raise _NotACheckpoint(problem)
    return loaded


TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")
"""``torch.save``'s zip archive, or the legacy format's pickle protocol byte."""


def is_torch_file(path: Path) -> bool:
    """Whether ``path`` starts as ``torch.save`` writes: torch's own error for anything else is
    about memory maps or pickle opcodes, not about the file being of another kind."""
    with open(path, "rb") as file:
        return file.read(4).startswith(TORCH_FILE_STARTS)


RESUME_STATE = ("loops", "optimizer_states", "lr_schedulers")
"""What an exact resume reads besides the weights: the loops' progress (the data position
included), the optimizer's moments and the LR schedulers' positions (Lightning writes the list
even when it is empty). A ``save_weights_only`` checkpoint lacks all three; DeepSpeed and
sharded folders keep the optimizer in their own files."""


def _saved_run(layout: Layout, checkpoint: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> SavedRun:
    needed = RESUME_STATE if layout == "file" else RESUME_STATE[:1]
    return SavedRun(
        missing=tuple(key for key in needed if key not in checkpoint),
        layout=layout,
        global_step=int(checkpoint["global_step"]),
        hyper_parameters=dict(checkpoint.get("hyper_parameters") or {}),
        callbacks=dict(checkpoint.get("callbacks") or {}),
        weight_shapes=shapes,
        fingerprint=checkpoint.get(FINGERPRINT_KEY),
    )


def _read_file(path: Path) -> SavedRun:
    """Names, shapes and dtypes of the weights, and the first non-finite tensor among them and
    the optimizer's states (read through the memory map: the file is scanned once)."""
    checkpoint = _load(path)
    if "state_dict" not in checkpoint:
        raise _NotACheckpoint("not a Lightning checkpoint (no state_dict)")
    weights = checkpoint["state_dict"]
    saved = _saved_run("file", checkpoint, {k: tuple(v.shape) for k, v in weights.items()})
    saved.weight_dtypes = {k: v.dtype for k, v in weights.items()}
    optimizers = checkpoint.get("optimizer_states") or []
    saved.optimizer_states = optimizers if isinstance(optimizers, list) else [optimizers]
    schedulers = checkpoint.get("lr_schedulers") or []
    saved.lr_scheduler_count = len(schedulers) if isinstance(schedulers, list) else 1
    saved.non_finite = first_non_finite(weights) or first_non_finite(optimizers, "optimizer_states")
    saved.moment_dtypes = {
        f"optimizer_states[{i}].state[{param}].{name}": value.dtype
        for i, optimizer in enumerate(optimizers)
        for param, moments in (optimizer.get("state") or {}).items()
        for name, value in moments.items()
        if isinstance(value, torch.Tensor) and name != "step"
    }
    return saved


def first_non_finite(value: Any, name: str = "") -> str | None:
    """The name (``optimizer_states[0].state[3].exp_avg``) of the first floating tensor in
    ``value`` (nested dicts and lists) that holds a NaN or inf; None if there is none."""
    if isinstance(value, torch.Tensor):
        return name if value.is_floating_point() and not bool(torch.isfinite(value).all()) else None
    if isinstance(value, dict):
        items = (
            (f"{name}[{k}]" if name and not isinstance(k, str) else f"{name}.{k}" if name else str(k), v)
            for k, v in value.items()
        )
    elif isinstance(value, (list, tuple)):
        items = ((f"{name}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for key, item in items if (found := first_non_finite(item, key)) is not None), None)


def _read_deepspeed(path: Path) -> SavedRun:
    """``<dir>/<tag>/mp_rank_00_model_states.pt``: Lightning's client state beside DeepSpeed's
    ``module`` (whole weights at ZeRO 1-2) or ``param_shapes`` (ZeRO-3, weights in the shards)."""
    tag_file = path / DEEPSPEED_TAG_FILE
    if tag_file.is_file():
        tag = tag_file.read_text().strip()
    else:
        tag = next(path.glob(f"*/{DEEPSPEED_MODEL_STATES}")).parent.name
    states = path / tag / DEEPSPEED_MODEL_STATES
    if not states.is_file():
        raise _NotACheckpoint(f"a DeepSpeed folder without {tag}/{DEEPSPEED_MODEL_STATES}")
    checkpoint = _load(states)
    module = checkpoint.get("module") or {}
    shapes = {k: tuple(v.shape) for k, v in module.items() if isinstance(v, torch.Tensor)}
    for group in checkpoint.get("param_shapes") or []:  # ZeRO-3: the module's entries are placeholders
        shapes.update({k: tuple(v) for k, v in group.items()})
    saved = _saved_run("deepspeed", checkpoint, {_strip(k, DEEPSPEED_PREFIX): v for k, v in shapes.items()})
    # dtypes are DeepSpeed's to choose (bf16 modules under bf16-mixed): only finiteness is checked
    module_name = first_non_finite({_strip(k, DEEPSPEED_PREFIX): v for k, v in module.items()})
    saved.non_finite = (
        f"{tag}/{DEEPSPEED_MODEL_STATES}: {module_name}" if module_name else _deepspeed_optimizer_nan(path / tag)
    )
    return saved


def _deepspeed_optimizer_nan(folder: Path) -> str | None:
    """The first NaN or inf in the ZeRO optimizer partitions of ``folder`` that load as plain
    tensors (those that pickle DeepSpeed objects are DeepSpeed's to load)."""
    for partition in sorted(folder.glob("*optim_states.pt")):
        try:
            state = torch.load(partition, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # DeepSpeed's loss scaler is an object weights_only refuses
            continue
        found = first_non_finite(state)
        if found:
            return f"{folder.name}/{partition.name}: {found}"
    return None


def _read_sharded(path: Path) -> SavedRun:
    """``meta.pt`` (everything but tensors) and the distributed checkpoint's ``.metadata``
    (every tensor's name and global shape)."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    checkpoint = _load(path / SHARDED_METADATA)
    metadata = FileSystemReader(str(path)).read_metadata().state_dict_metadata
    tensors = {k: v for k, v in metadata.items() if isinstance(v, TensorStorageMetadata)}
    weights = {_strip(k, SHARDED_PREFIX): v for k, v in tensors.items() if k.startswith(SHARDED_PREFIX)}
    saved = _saved_run("sharded", checkpoint, {k: tuple(v.size) for k, v in weights.items()})
    saved.weight_dtypes = {k: v.properties.dtype for k, v in weights.items()}
    saved.non_finite = _sharded_nan(path, tensors)
    return saved


def _sharded_nan(path: Path, tensors: dict[str, Any]) -> str | None:
    """The first floating tensor of a distributed checkpoint holding a NaN or inf, read in
    batches of at most ``SCAN_BYTES`` (a single larger tensor alone)."""
    import warnings

    import torch.distributed.checkpoint as dcp

    floating = [(k, v) for k, v in tensors.items() if v.properties.dtype.is_floating_point]
    batch: dict[str, torch.Tensor] = {}
    for index, (key, meta) in enumerate(floating):
        batch[key] = torch.empty(meta.size, dtype=meta.properties.dtype)
        size = sum(t.numel() * t.element_size() for t in batch.values())
        if size < SCAN_BYTES and index + 1 < len(floating):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "assuming the intent is to load in a single process"
            dcp.load(batch, storage_reader=dcp.FileSystemReader(str(path)), no_dist=True)
        found = first_non_finite(batch)
        if found:
            return found
        batch = {}
    return None


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


_READERS = {"file": _read_file, "deepspeed": _read_deepspeed, "sharded": _read_sharded}
