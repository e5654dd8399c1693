"""The README's and the docs' examples run as written, each alone, and the documentation site builds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = (ROOT / "docs" / "library.md").read_text()
FAMILIES = (ROOT / "docs" / "hugging-face.md").read_text()
PAGES = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}


def python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def uses_litgpt(block: str) -> bool:
    return "from litgpt" in block or "import litgpt" in block


def run_alone(block: str, name: str) -> dict:
    """One README block in a fresh namespace, as pasted into a new Python file."""
    namespace: dict = {"__name__": "readme"}
    exec(compile(block, name, "exec"), namespace)
    return namespace


@pytest.mark.slow  # every example run: about 2 s
def test_the_library_examples_each_run_alone(tmp_path, monkeypatch):
    blocks = python_blocks(SECTION)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)  # the Compose example writes outputs/ here
    ran = [run_alone(block, f"README.md (library example {n})") for n, block in enumerate(blocks, 1)]
    assert ran[0]["y"].shape == (8, 128, 64) and ran[1]["y"].shape == (8, 128, 64)
    assert ran[2]["schedule"].keep_at(30) == 64 and 0 < ran[2]["schedule"].ledger.saving < 1
    assert ran[3]["step"].logits.shape == (4, 32, 256)
    assert ran[4]["summary"]["steps"] == 10


@pytest.mark.slow  # about 1 s
def test_the_hugging_face_examples_each_run_alone(tmp_path, monkeypatch):
    """Every block but LitGPT's (``tests/ltd/test_litgpt.py`` runs that one in its environment)."""
    blocks = [b for b in python_blocks(FAMILIES) if not uses_litgpt(b)]
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the tiny checkpoint and the saved folder are written here
    ran = [run_alone(block, f"README.md (Hugging Face example {n})") for n, block in enumerate(blocks, 1)]
    assert ran[0]["model"].ltd_router.keep == 128 and ran[2]["out"].shape == (2, 32, 4)
    assert list(ran[1]["differences"]) == ["transformer.h.2"] and ran[1]["differences"]["transformer.h.2"] < 1e-6
    assert ran[4]["schedule"].ledger.saving > 0 and (tmp_path / "tiny_llama_finetuned" / "config.json").is_file()
    logs = [entry for entry in ran[3]["trainer"].state.log_history if "layer_tokens" in entry]
    assert [entry["keep"] for entry in logs] == [80, 128] and 0 < logs[-1]["schedule_saving"] < 1


@pytest.mark.slow  # about 1 s
def test_the_readme_library_example_runs_alone():
    (block,) = python_blocks(README)
    ran = run_alone(block, "README.md (library example)")
    assert ran["model"].ltd_router.keep == 64 and ran["step"] == 2


def test_every_python_block_of_the_readme_and_the_pages_is_python():
    """The blocks no other test runs (GPUs, corpora, other environments) still parse."""
    for name, text in {"README.md": README, **PAGES}.items():
        for number, block in enumerate(python_blocks(text), 1):
            compile(block, f"{name} (block {number})", "exec")


@pytest.mark.slow  # about 15 s
def test_the_documentation_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "apply_random_ltd" in api and "verify_random_ltd" in api and "RandomLTDCallback" in api
    assert (tmp_path / "site" / "configs" / "index.html").is_file()


NEWCOMER_FILES = ("pyproject.toml", "README.md", "train.py", "lightning_ltd", "conf", "tests")
VARYING = ("wall time", "throughput")  # machine-dependent summary lines


def setup_command() -> str:
    """The README's set-up command: install and train, in one line."""
    section = README.split("## Set up and use", 1)[1]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0].strip()


def summary_rows(text: str) -> dict[str, str]:
    """``name -> value`` of every summary line in ``text`` (names are padded to 22 columns)."""
    block = text.split("==== run summary ====", 1)[1]
    return {line[:22].strip(): line[22:].strip() for line in block.strip().splitlines()[:9] if len(line) > 22}


def numbers(value: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"[\d,]+\.?\d*", value)]


def readme_summary() -> dict[str, str]:
    block = README.split("ends with a summary like this", 1)[1].split("```", 2)[1]
    return {name: value for name, value in summary_rows(block).items() if not name.startswith(VARYING)}


@pytest.mark.slow  # a fresh virtual environment and the whole default run: about 3 minutes
def test_a_newcomer_pastes_the_set_up_command_and_gets_the_readme_summary(tmp_path):
    """In a fresh venv (nothing from this environment), the README's command as written."""
    work = tmp_path / "lightning-ltd"
    work.mkdir()
    for item in NEWCOMER_FILES:
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy)(ROOT / item, work / item)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=300)
    inside = f"source {tmp_path / 'venv' / 'bin' / 'activate'} && cd {work}"
    done = subprocess.run(
        ["bash", "-c", f"{inside} && {setup_command()}"], capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ours, expected = summary_rows(done.stdout), readme_summary()
    assert set(expected) <= set(ours) and len(expected) == 5, (expected, ours)
    for name, value in expected.items():  # counts exactly; losses to the last printed digit (BLAS may round)
        tolerance = 1e-4 if name.startswith("val/") else 0
        assert numbers(ours[name]) == pytest.approx(numbers(value), rel=tolerance, abs=0), (name, ours[name], value)
    assert list(work.glob("outputs/*/*/checkpoints/last.ckpt"))
    # the suite inside a virtual environment: the test that used to fail only there
    tests = 'pip install -e ".[dev]" && python -m pytest -q -n 0 -p no:cacheprovider tests/test_package.py -k wheel'
    suite = subprocess.run(["bash", "-c", f"{inside} && {tests}"], capture_output=True, text=True, timeout=900)
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
