"""Reading and writing weight files and checking them against a model, without a network.

Import needs nothing beyond torch for ``.bin``/``.pth`` files and the ``safetensors`` package
for ``.safetensors`` (the ``[hf]`` extra). Every problem is one ``PretrainedError`` naming the
path; key problems list every missing, unexpected and mis-shaped key at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from lightning_ltd.checks.checkpoint_layout import is_torch_file
from lightning_ltd.checks.paths import file_inside
from lightning_ltd.errors import InvalidFieldsError, first_line

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class PretrainedError(InvalidFieldsError):
    """A checkpoint that cannot be used as asked; one line naming the path (``pretrained=...``)."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])


def load_weight_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file (``.bin``, ``.pth``, ``.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"pretrained={str(path)!r}: no such file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise PretrainedError(f"{path}: reading .safetensors needs: pip install safetensors") from err
        return _read(path, load_file, "a .safetensors file")
    if not is_torch_file(path):
        raise PretrainedError(f"pretrained={str(path)!r}: not a weight file (not a torch.save file)")
    state = _read(path, lambda file: torch.load(file, map_location="cpu", weights_only=True), "a torch weight file")
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f"pretrained={str(path)!r}: not a state dict of tensors")
    return dict(state)


def _read(path: Path, reader: Callable[[str], Any], form: str) -> Any:
    """``reader(path)``, its failure on bytes of another kind (text, truncated, foreign pickle) as
    one line naming the file: the readers raise many exception types, with paragraphs of advice."""
    try:
        return reader(str(path))
    except Exception as err:
        raise PretrainedError(f"pretrained={str(path)!r}: not readable as {form} ({first_line(err, 160)})") from err


def load_hf_directory(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``config.json`` and the weights of a Hugging Face ``save_pretrained`` directory.

    Sharded checkpoints (``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``)
    are read shard by shard.
    """
    root = Path(path)
    if not root.is_dir():
        raise PretrainedError(f"pretrained={str(root)!r}: no such directory (expected a save_pretrained folder)")
    config_file = root / "config.json"
    if not config_file.is_file():
        raise PretrainedError(f"pretrained={str(root)!r}: no config.json")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PretrainedError(f"pretrained={str(root)!r}: config.json is not valid JSON ({err})") from err
    for name in HF_WEIGHT_FILES:
        if (root / name).is_file():
            return config, load_weight_file(root / name)
        index = root / f"{name}.index.json"
        if index.is_file():
            shards = _index_shards(index)
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                inside = file_inside(root, shard)
                if inside is None:
                    raise PretrainedError(f"pretrained={str(root)!r}: {index.name} names {shard!r}, outside the folder")
                state.update(load_weight_file(inside))
            return config, state
    raise PretrainedError(f"pretrained={str(root)!r}: no {' or '.join(HF_WEIGHT_FILES)} (or their index)")


def _index_shards(index: Path) -> list[str]:
    """The shard file names a ``*.index.json`` lists (its ``weight_map`` values)."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise PretrainedError(f"pretrained={str(index)!r}: not a shard index (no weight_map of file names)") from err
    if not shards or not all(isinstance(shard, str) for shard in shards):
        raise PretrainedError(f"pretrained={str(index)!r}: its weight_map names no shard files")
    return shards


def save_hf_directory(path: str | Path, config: dict[str, Any], state: Mapping[str, torch.Tensor]) -> Path:
    """Write ``config.json`` and ``model.safetensors``, what ``from_pretrained`` of transformers reads."""
    from safetensors.torch import save_file

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(root / "model.safetensors"))
    return root


def save_weight_file(path: str | Path, state: Mapping[str, torch.Tensor]) -> Path:
    """A bare state dict, as ``.safetensors`` or (any other suffix) a torch file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(tensors, str(path))
    else:
        torch.save(tensors, path)
    return path


def check_state_dict(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: str | Path
) -> None:
    """Raise one error listing every missing, unexpected and mis-shaped key (converted names)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(found))
        if found[k].shape != expected[k].shape
    ]
    parts = [
        f"{label}: {', '.join(items)}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
        if items
    ]
    if parts:
        raise PretrainedError(f"pretrained={str(source)!r} does not fit the model; " + "; ".join(parts))
