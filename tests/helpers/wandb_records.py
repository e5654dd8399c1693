"""Reads an offline W&B run file (``run-*.wandb``) back: its history rows, key -> values.

The file is a LevelDB-style log (a 7-byte header, then 32 KiB blocks of records, each a 7-byte
header of checksum, length and type, FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4) of ``Record``
protobufs; wandb's own Python reader moved into its Go core, so the test reads it here.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7


def records(path: Path) -> list[bytes]:
    data, pos, out, pending = path.read_bytes(), HEADER, [], b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0:  # zeros: the writer padded the rest of this block (after a flush)
            pos += BLOCK - pos % BLOCK
            continue
        pending += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            out.append(pending)
            pending = b""
    return out


def history(path: Path) -> dict[str, list]:
    from wandb.proto import wandb_internal_pb2

    rows: dict[str, list] = {}
    for raw in records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                rows.setdefault(item.key or "/".join(item.nested_key), []).append(json.loads(item.value_json))
    return rows
