"""Weight files of the wrong kind are one ``PretrainedError`` naming the file, whatever their bytes."""

from __future__ import annotations

import json
import pickle
import re

import pytest
import torch

from lightning_ltd.pretrained.io import PretrainedError, load_hf_directory, load_weight_file, save_weight_file


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("text.pth", b"not weights\n", "not a weight file (not a torch.save file)"),
        ("text.safetensors", b"not weights\n", "not readable as a .safetensors file"),
        ("empty.bin", b"", "not a weight file"),
        ("pickled.pt", pickle.dumps({"a": 1}), "not readable as a torch weight file"),
    ],
)
def test_bytes_of_another_kind_are_named(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PretrainedError, match=re.escape(f"pretrained='{path}': {expected}")):
        load_weight_file(path)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_truncated_weight_file_is_named(tmp_path, suffix):
    whole = save_weight_file(tmp_path / f"w{suffix}", {"w": torch.randn(64, 64)})
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert load_weight_file(whole)["w"].shape == (64, 64)
    with pytest.raises(PretrainedError, match=re.escape(f"pretrained='{cut}': not readable as")):
        load_weight_file(cut)


def test_a_torch_file_of_non_tensors_is_named(tmp_path):
    torch.save({"w": [1, 2]}, tmp_path / "lists.pt")
    with pytest.raises(PretrainedError, match="not a state dict of tensors"):
        load_weight_file(tmp_path / "lists.pt")


@pytest.mark.parametrize(
    "index, expected",
    [
        ("{broken", "not a shard index"),
        (json.dumps({"metadata": {}}), "not a shard index"),
        (json.dumps({"weight_map": []}), "not a shard index"),
        (json.dumps({"weight_map": {}}), "its weight_map names no shard files"),
        (json.dumps({"weight_map": {"w": 3}}), "its weight_map names no shard files"),
    ],
)
def test_a_broken_shard_index_is_named(tmp_path, index, expected):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors.index.json").write_text(index)
    with pytest.raises(PretrainedError, match=re.escape(f"model.safetensors.index.json': {expected}")):
        load_hf_directory(tmp_path)
