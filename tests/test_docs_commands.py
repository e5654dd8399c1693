"""Every shell block of the README and the docs pages runs as written, each alone, in a fresh folder.

Three things differ from a user's terminal, so that the suite stays short and offline: ``python
train.py`` gets ``trainer.max_steps=3 trainer.limit_val_batches=2`` appended (Hydra lets the last
override win); ``pip install`` only checks that the extras it names exist (the suite's environment
has them all: ``.ci/run`` installs them); and the files a page assumes the reader has (a corpus, a
finished run) are made first. The few blocks that need the network, a GPU or another environment
are named below with the test that covers them instead; their ``train.py`` lines are still
composed by Hydra with our config groups.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHORTEN = "trainer.max_steps=3 trainer.limit_val_batches=2"
SHIM = f"""python() {{ if [ "$1" = train.py ]; then command python "$@" {SHORTEN}; else command python "$@"; fi; }}
pip() {{ for word in "$@"; do command python {ROOT / "tests" / "helpers" / "extras.py"} "$word"; done; }}"""

# The first line of a block that does not run here -> why, and where it is covered instead.
ELSEWHERE = {
    "pip install torch==2.13.0 && pip install -e . && python train.py": "test_readme's newcomer test, in a fresh venv",
    'pip install torch==2.13.0 && pip install -e ".[dev': "the suite itself: CI runs this command (.ci/run)",
    "python train.py model=litgpt": "litgpt's own environment: tests/modules/test_litgpt.py",
    "lightning-ltd-eval ckpt_path=outputs/RUN": "downloads lm-eval's datasets: tests/evaluate/ runs local tasks",
    "# GPT-2 (model and tokenizer": "downloads gpt2, bert-base-uncased and timm's weights",
}


def shell_blocks() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        shell = re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", document.read_text(), flags=re.S)
        for number, block in enumerate(shell, 1):
            found.append((f"{document.relative_to(ROOT)}:{number}", textwrap.dedent(block)))
    return found


BLOCKS = shell_blocks()
RUN_HERE = [(name, block) for name, block in BLOCKS if not any(block.startswith(key) for key in ELSEWHERE)]
NOT_HERE = [(name, block) for name, block in BLOCKS if (name, block) not in RUN_HERE]


def test_every_entry_of_elsewhere_names_a_block():
    assert all(any(block.startswith(key) for _, block in NOT_HERE) for key in ELSEWHERE)
    assert len(RUN_HERE) >= 5


def train_overrides(block: str) -> list[list[str]]:
    lines = [line.split("#", 1)[0].split() for line in block.splitlines()]
    return [words[2:] for words in lines if words[:2] == ["python", "train.py"]]


@pytest.mark.parametrize("name, block", NOT_HERE, ids=[name for name, _ in NOT_HERE])
def test_the_train_lines_of_blocks_run_elsewhere_compose(name, block):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        for overrides in train_overrides(block):
            cfg = compose("train", overrides=overrides)
            assert cfg.model and cfg.data, (name, overrides)


def given(folder: Path, block: str) -> None:
    """The files the page assumes: a small corpus, a finished short run."""
    if "corpus/" in block:
        stdlib = Path(os.__file__).parent
        (folder / "corpus" / "a").mkdir(parents=True)
        for source in ("os.py", "argparse.py", "textwrap.py"):
            (folder / "corpus" / "a" / f"{source}.txt").write_text((stdlib / source).read_text())
    if "outputs/DATE/TIME/" in block:
        run = subprocess.run(
            ["python", str(ROOT / "train.py"), "experiment=smoke", *SHORTEN.split(), "hydra.run.dir=outputs/DATE/TIME"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.slow  # 9 blocks, each a few short runs: about 2 minutes of CPU in all
@pytest.mark.parametrize("name, block", RUN_HERE, ids=[name for name, _ in RUN_HERE])
def test_the_block_runs_alone(name, block, tmp_path):
    for item in ("train.py", "conf"):
        (tmp_path / item).symlink_to(ROOT / item)
    given(tmp_path, block)
    done = subprocess.run(
        ["bash", "-c", f"set -eo pipefail\n{SHIM}\n{block}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )
    assert done.returncode == 0, f"{name}\n{block}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.count("==== run summary ====") == len(train_overrides(block)), name  # every run ended
