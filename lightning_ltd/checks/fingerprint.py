"""What defines a run's trajectory, recorded in every checkpoint and compared on resume.

A checkpoint resumed by a run of other settings continues a trajectory neither run describes
(another ramp, another LR, a ledger of two batch sizes). The fingerprint is every key of the
``model``, ``data``, ``ltd``, ``curriculum`` and ``lr`` groups, the seed and the trainer keys that change the
update (accumulation, clipping, precision), as written (an interpolation such as
``total_steps: ${trainer.max_steps}`` compares as its expression, so extending ``max_steps``
extends the schedule instead of being a difference), plus a fingerprint of the data's content
(so a corpus copied elsewhere resumes and one swapped in place does not). ``MAY_CHANGE`` lists
the keys of those groups a resume may change; everything outside them (``trainer.max_steps``,
logging and checkpoint cadence, callbacks, loggers, devices) may change too.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

TRAJECTORY = (
    "model",
    "data",
    "ltd",
    "curriculum",
    "lr",
    "seed",
    "trainer.accumulate_grad_batches",
    "trainer.gradient_clip_val",
    "trainer.gradient_clip_algorithm",
    "trainer.precision",
)
MAY_CHANGE = ("data.num_workers", "data.path", "model.pretrained")
"""Keys of the trajectory groups a resume may change: how many workers read, where the data
lives (its content is compared instead), where pretrained weights came from (the checkpoint has
them)."""
DATA_CONTENT = "data.content"
CHECKPOINT_KEY = "run_fingerprint"
DEFAULT_CORPUS = "(the embedded default corpus)"
SAMPLED_FILES = 64  # files whose bytes (head and tail) enter a folder's content fingerprint
SAMPLED_BYTES = 1 << 16


def run_fingerprint(cfg: DictConfig, data_content: str | None) -> dict[str, Any]:
    """The run's trajectory keys (dotted, as written) and ``data.content``."""
    flat: dict[str, Any] = {}
    for key in TRAJECTORY:
        node = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if isinstance(node, DictConfig):
            _flatten(key, OmegaConf.to_container(node, resolve=False), flat)
        else:
            flat[key] = _plain(node)
    for key in MAY_CHANGE:
        flat.pop(key, None)
    flat[DATA_CONTENT] = data_content
    return flat


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            _flatten(f"{prefix}.{name}", item, into)
    else:
        into[prefix] = _plain(value)


def _plain(value: Any) -> Any:
    """Types a ``weights_only`` checkpoint load accepts and ``==`` compares as written."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


DERIVED_FILES = ("rarity-*.npy", "*.partial")
"""Files written beside a prepared folder's shards from the shards themselves (the rarity
curriculum's scores) or not yet whole: scoring a folder mid-run does not make it other data."""


def derived(file: Path) -> bool:
    return any(fnmatch.fnmatch(file.name, pattern) for pattern in DERIVED_FILES)


def content_fingerprint(path: str | Path | None) -> str:
    """A hash of what ``path`` holds: for a file its size and first and last 64 KB; for a folder
    every file's relative name and size, and the bytes of up to 64 of them, evenly spaced (a
    prepared folder's ``meta.json`` among them). Moving or copying the data keeps it."""
    if path is None:
        return "(the embedded default corpus)"
    root = Path(path).expanduser()
    digest = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not derived(p))
    step = max(1, len(files) // SAMPLED_FILES)
    for index, file in enumerate(files):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(root) if file != root else file.name}\0{size}\0".encode())
        if index % step == 0 or file.name == "meta.json":
            with open(file, "rb") as handle:
                digest.update(handle.read(SAMPLED_BYTES))
                if size > 2 * SAMPLED_BYTES:
                    handle.seek(size - SAMPLED_BYTES)
                    digest.update(handle.read(SAMPLED_BYTES))
    return digest.hexdigest()[:32]


def fingerprint_problems(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """One problem listing every trajectory key the new run changed (none for a checkpoint
    written before fingerprints were recorded)."""
    if saved is None:
        return []
    saved, current = (with_trainer_defaults(with_added_groups(side)) for side in (saved, current))
    changed = [key for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]
    if not changed:
        return []
    listed = ", ".join(f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in changed)
    return [
        f"this run differs from the checkpoint's in {listed} (a resume may change trainer.max_steps, logging, "
        f"checkpoint cadence, devices and {', '.join(MAY_CHANGE)}; start a new run to change the rest)"
    ]


def with_trainer_defaults(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """``fingerprint`` with each trainer key that was not written (None) at ``Trainer``'s default,
    so that writing a default out (``+trainer.accumulate_grad_batches=1``) is no difference; the
    checkpoints of earlier versions recorded None and compare the same way."""
    import inspect

    from lightning.pytorch import Trainer

    defaults = inspect.signature(Trainer.__init__).parameters
    filled = dict(fingerprint)
    for key in TRAJECTORY:
        name = key.removeprefix("trainer.")
        if name != key and filled.get(key) is None and name in defaults:
            filled[key] = _plain(defaults[name].default)
    return filled


ADDED_GROUPS = {"curriculum": "off"}
"""Trajectory groups added after checkpoints were first fingerprinted, and the option an earlier
version's run is the same as (it had no curriculum: ``curriculum=off``)."""


def with_added_groups(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """``fingerprint`` with each group it has no key of (an earlier version's checkpoint) at the
    option those runs were (``ADDED_GROUPS``), read from that option's config file: resuming them
    with the option unchanged is no difference, with another one is."""
    from importlib.resources import files

    filled = dict(fingerprint)
    for group, option in ADDED_GROUPS.items():
        if any(key == group or key.startswith(f"{group}.") for key in fingerprint):
            continue
        config = OmegaConf.create(files("lightning_ltd.conf").joinpath(group, f"{option}.yaml").read_text())
        _flatten(group, OmegaConf.to_container(config, resolve=False), filled)
    if "curriculum.seqlen" in filled and "curriculum.compile_buckets" not in filled:  # added with the buckets
        filled["curriculum.compile_buckets"] = None if filled.get("model.compile") else BUCKETS_DEFAULT
    return filled


BUCKETS_DEFAULT = 16
"""``curriculum.compile_buckets``: an earlier run without it bucketed nothing, which only a compiled
run's lengths show (an eager run's are the same at any value)."""


class RunFingerprint(Callback):
    """Writes the run's fingerprint into every checkpoint (``checkpoint["run_fingerprint"]``)."""

    def __init__(self, fingerprint: dict[str, Any]) -> None:
        self.fingerprint = fingerprint

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(self.fingerprint)


def data_source(datamodule: Any) -> str | None:
    """What a datamodule reads (its ``path``, absolute), stored with the schedule's state and
    compared on resume; None for data modules that have no ``path``."""
    if datamodule is None or not hasattr(datamodule, "path"):
        return None
    path = datamodule.path
    return DEFAULT_CORPUS if path is None else str(Path(str(path)).expanduser().absolute())
