"""What this machine can hold: its cores, its free memory and what one process of ours takes,
so that settings that multiply processes (CPU devices, loader workers) are judged before they
are started (``data.num_workers=1000`` forked 1000 copies of the trainer and exhausted 24 GiB)."""

from __future__ import annotations

import os
from pathlib import Path


def cores() -> int:
    return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes the kernel can give without swapping (``MemAvailable``); None where it does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_memory() -> int | None:
    """Resident bytes of this process: about what each forked loader worker comes to hold, as
    torch and Python touch their copy-on-write pages (measured: 350 MB a worker here)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
