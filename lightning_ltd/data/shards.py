"""A prepared folder (``python -m lightning_ltd.data.prepare``): ``meta.json`` and the shards it names.

Both the reader (``data=tokens``) and the writers (``prepare``, ``rarity``) use this one
description of the format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ltd.checks.paths import file_inside
from lightning_ltd.errors import DataError

FORMAT = "lightning-ltd-tokens"  # what meta.json says a prepared folder is
VERSION = 1
META = "meta.json"


DTYPES = ("uint8", "uint16", "uint32")


def _is_shard_entry(entry: Any) -> bool:
    tokens = entry.get("tokens") if isinstance(entry, dict) else None
    return isinstance(entry, dict) and isinstance(entry.get("file"), str) and isinstance(tokens, int) and tokens >= 0


def read_meta(path: str) -> dict[str, Any]:
    """``DIR/meta.json`` of a prepared folder, checked; every problem names the path."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"path={path!r}: no such directory (prepare one: python -m lightning_ltd.data.prepare)")
    meta_file = folder / META
    if not meta_file.is_file():
        raise DataError(f"path={path!r}: not a prepared folder (no {META}; run python -m lightning_ltd.data.prepare)")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"path={path!r}: {META} is not valid JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DataError(f"path={path!r}: {META} is not a {FORMAT} v{VERSION} description")
    vocab_size = meta.get("vocab_size")
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise DataError(f"path={path!r}: {META} says vocab_size={vocab_size!r}, not a positive integer")
    if meta.get("dtype") not in DTYPES:
        raise DataError(f"path={path!r}: {META} says dtype={meta.get('dtype')!r}, not one of {', '.join(DTYPES)}")
    for split in ("train", "val"):
        shards = meta.get(split)
        if not isinstance(shards, list) or not all(_is_shard_entry(s) for s in shards):
            raise DataError(f"path={path!r}: {META} has no list of {{file, tokens}} shards under {split!r}")
    if (changed := tokenizer_problem(folder, meta)) is not None:
        raise DataError(f"path={path!r}: {changed}")
    for split in ("train", "val"):
        for shard in meta[split]:
            file = file_inside(folder, shard["file"])
            if file is None:
                raise DataError(f"path={path!r}: {META} names shard {shard['file']!r}, outside the folder")
            expected = shard["tokens"] * np.dtype(meta["dtype"]).itemsize
            if not file.is_file() or file.stat().st_size != expected:
                raise DataError(f"path={path!r}: shard {shard['file']} is missing or not {expected:,} bytes")
    return meta


def tokenizer_folder(folder: Path, meta: dict[str, Any]) -> Path | None:
    """The tokenizer folder that encoded the shards (``bpe``: the one ``prepare`` wrote inside)."""
    kind = str(meta.get("tokenizer"))
    return None if kind == "bytes" else folder / "tokenizer" if kind == "bpe" else Path(kind)


def folder_hash(folder: Path) -> str:
    """The sha256 of a (small) folder's files, names and bytes: what a tokenizer folder was."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def tokenizer_problem(folder: Path, meta: dict[str, Any]) -> str | None:
    """Why the shards' ids no longer mean what the tokenizer folder now encodes (None: they do,
    or nothing was recorded: an older folder, or the tokenizer folder is gone)."""
    recorded, tokenizer = meta.get("tokenizer_sha256"), tokenizer_folder(folder, meta)
    if recorded is None or tokenizer is None or not tokenizer.is_dir() or folder_hash(tokenizer) == recorded:
        return None
    return (
        f"{META} records the tokenizer {tokenizer} as it was when the shards were written, and it has "
        "changed since: their ids mean other tokens now (prepare the corpus again)"
    )
