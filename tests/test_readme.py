"""The README's "Use as a library" examples run as written, and its API-reference command builds."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = README.split("## Use as a library", 1)[1].split("\n## ", 1)[0]


def test_the_library_examples_run_in_order(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)  # the Compose example writes outputs/ here
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md (library example {number})", "exec"), namespace)
    assert namespace["schedule"].current_keep == 64 and 0 < namespace["schedule"].ledger.saving < 1
    assert namespace["summary"]["steps"] == 10
    assert namespace["y"].shape == (8, 128, 64) and namespace["step"].logits.shape == (4, 32, 256)


@pytest.mark.slow
def test_the_api_reference_command_builds(tmp_path):
    command = next(line for line in SECTION.splitlines() if "python -m pdoc" in line)
    pdoc = shlex.split(command.split("&&", 1)[1])
    pdoc[pdoc.index("-o") + 1] = str(tmp_path / "api")
    subprocess.run([sys.executable, *pdoc[1:]], cwd=ROOT, check=True, timeout=300, capture_output=True)
    pages = {p.name for p in (tmp_path / "api").rglob("*.html")}
    assert {"index.html", "lightning_ltd.html", "ltd.html", "callbacks.html"} <= pages
    top = (tmp_path / "api" / "lightning_ltd.html").read_text()
    assert "apply_random_ltd" in top and "RandomLTDModule" in top and "train/schedule_saving" in top
