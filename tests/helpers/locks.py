"""Another live run's lock on a folder, as the folder's next run finds it."""

import subprocess
import sys
import time
from pathlib import Path

from lightning_ltd.checks.lock import LOCK_NAME

HOLDER = "import sys, time\nfrom lightning_ltd.checks.lock import hold\nhold(sys.argv[1])\ntime.sleep(120)"


def live_lock(folder: Path) -> subprocess.Popen:
    """A process that holds ``folder``'s lock (as a run's rank 0 does) until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)])
    deadline = time.monotonic() + 60
    while f'"pid": {holder.pid}' not in _text(folder / LOCK_NAME):
        assert holder.poll() is None and time.monotonic() < deadline, "the lock holder did not start"
        time.sleep(0.05)
    return holder


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
