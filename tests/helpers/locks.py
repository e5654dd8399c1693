"""Another live run's lock on a folder, as the folder's next run finds it."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from lightning_ltd.checks.lock import LOCK_NAME


def live_lock(folder: Path) -> subprocess.Popen:
    """Write the lock of a live run (a sleeping process) into ``folder``; kill it to end the run."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "2026-12-02 06:00:00"}
    (folder / LOCK_NAME).write_text(json.dumps(holder))
    return sleeper
