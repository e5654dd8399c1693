"""The replication script's one-minute variant, so it cannot rot."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "replicate.py"


def load_script():
    spec = importlib.util.spec_from_file_location("replicate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["replicate"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # two short replication runs (about 9 s)
@pytest.mark.parametrize("task", ["gpt", "vit"])
def test_short_protocol_runs_and_reports(tmp_path, task):
    replicate = load_script()
    (report,) = replicate.main(["--short", "--task", task, "--out", str(tmp_path)])
    arms = [row["arm"] for row in report["table"]]
    assert arms == ["baseline @ X", "random-LTD @ 2/3 X", "random-LTD @ X"]
    baseline, two_thirds, full = report["table"]
    budget = report["budget_X"]
    assert baseline["steps"] == 30 and baseline["layer_tokens"] == budget and baseline["budget_saving"] == 0
    assert 2 * budget // 3 <= two_thirds["layer_tokens"] < baseline["layer_tokens"]  # stopped at its own budget
    assert budget <= full["layer_tokens"] and full["steps"] > 30  # same compute, more steps when dropping
    assert all(run["curve"] and run["train_time_s"] > 0 for runs in report["runs"].values() for run in runs)
    saved = json.loads((tmp_path / f"replicate_{task}.json").read_text())
    assert saved["table"] == report["table"]
    assert "| random-LTD @ 2/3 X |" in (tmp_path / f"replicate_{task}.md").read_text()
    if importlib.util.find_spec("matplotlib") is not None:
        assert {Path(p).name for p in report["plots"]} == {
            f"replicate_{task}_layer_tokens.png",
            f"replicate_{task}_time.png",
        }
