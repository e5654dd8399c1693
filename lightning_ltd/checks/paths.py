"""Paths that index files name: they must stay inside the folder that holds the index."""

from __future__ import annotations

from pathlib import Path


def file_inside(root: Path, name: str) -> Path | None:
    """``root / name`` if it stays inside ``root`` (no absolute path, no ``..`` out), else None.

    A shard index or ``meta.json`` from elsewhere must not make us read arbitrary files.
    """
    candidate = (root / name).resolve()
    return candidate if candidate.is_relative_to(root.resolve()) else None
