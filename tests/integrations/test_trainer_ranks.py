"""``RandomLTDCallback`` on 2 gloo ranks of ``transformers.Trainer``, and a resume onto 1."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(out: Path, ranks: int, resume: str | None = None) -> None:
    with socket.socket() as probe:  # a free port: torchrun's own default may be taken by another test
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}", f"--master_port={port}"]
    script = [str(ROOT / "tests" / "helpers" / "trainer_ranks.py"), str(out), *([resume] if resume else [])]
    subprocess.run(command + script, cwd=ROOT, check=True, timeout=300, capture_output=True)


@pytest.mark.slow
def test_two_ranks_count_together_drop_differently_and_resume_onto_one(tmp_path):
    run(tmp_path, 2)
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert rank0["first_plan"] != rank1["first_plan"]  # each rank drops its own tokens
    logged = [entry for entry in rank0["logs"] if "layer_tokens" in entry]
    assert [entry["step"] for entry in logged] == list(range(1, 21))
    assert logged[-1]["layer_tokens"] == rank0["measured"] + rank1["measured"]  # summed over ranks
    assert rank0["logs"][:-1] == rank1["logs"][:-1]  # the same training logs (the runtime summary aside)

    run(tmp_path, 1, resume=str(tmp_path / "checkpoint-10"))
    resumed = json.loads((tmp_path / "rank0-resumed.json").read_text())
    after = {entry["step"]: entry for entry in resumed["logs"] if "layer_tokens" in entry and entry["step"] > 10}
    at = {entry["step"]: entry for entry in logged}
    # the count goes on from the 2 ranks' total; the LR from their scheduled layer-tokens
    assert after[20]["layer_tokens"] == at[10]["layer_tokens"] + resumed["measured"]
    assert after[11]["learning_rate"] == pytest.approx(at[11]["learning_rate"], rel=1e-12)
    assert after[12]["learning_rate"] != pytest.approx(at[12]["learning_rate"], rel=1e-6)  # half the batch since
