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
FAMILIES = README.split("## Random-LTD in a Hugging Face or LitGPT model", 1)[1].split("\n## ", 1)[0]


def python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def uses_litgpt(block: str) -> bool:
    return "from litgpt" in block or "import litgpt" in block


def run_alone(block: str, name: str) -> dict:
    """One README block in a fresh namespace, as pasted into a new Python file."""
    namespace: dict = {"__name__": "readme"}
    exec(compile(block, name, "exec"), namespace)
    return namespace


def test_the_library_examples_each_run_alone(tmp_path, monkeypatch):
    blocks = python_blocks(SECTION)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)  # the Compose example writes outputs/ here
    ran = [run_alone(block, f"README.md (library example {n})") for n, block in enumerate(blocks, 1)]
    assert ran[0]["y"].shape == (8, 128, 64) and ran[1]["y"].shape == (8, 128, 64)
    assert ran[2]["schedule"].current_keep == 64 and 0 < ran[2]["schedule"].ledger.saving < 1
    assert ran[3]["step"].logits.shape == (4, 32, 256)
    assert ran[4]["summary"]["steps"] == 10


def test_the_hugging_face_examples_each_run_alone(tmp_path, monkeypatch):
    """Every block but LitGPT's (``tests/ltd/test_litgpt.py`` runs that one in its environment)."""
    blocks = [b for b in python_blocks(FAMILIES) if not uses_litgpt(b)]
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the tiny checkpoint and the saved folder are written here
    ran = [run_alone(block, f"README.md (Hugging Face example {n})") for n, block in enumerate(blocks, 1)]
    assert ran[0]["model"].ltd_router.keep == 128 and ran[1]["out"].shape == (2, 32, 4)
    assert ran[2]["schedule"].ledger.saving > 0 and (tmp_path / "tiny_llama_finetuned" / "config.json").is_file()


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
