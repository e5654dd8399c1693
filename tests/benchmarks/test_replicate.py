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
    if task == "gpt" and importlib.util.find_spec("lm_eval") is not None:  # the zero-shot cloze beside val/loss
        assert all(0 <= row["zero_shot_acc"] <= 1 and row["zero_shot_perplexity"] > 1 for row in report["table"])
        assert "| cloze accuracy (mean ± std) |" in (tmp_path / f"replicate_{task}.md").read_text()


@pytest.mark.slow  # eight short runs on prepared, rarity-scored shards (about 40 s)
def test_short_curriculum_protocol_runs_all_eight_arms_at_equal_budgets(tmp_path):
    replicate = load_script()
    (report,) = replicate.main(["--short", "--task", "gpt_cl", "--out", str(tmp_path)])
    rows = {row["arm"]: row for row in report["table"]}
    methods = ("baseline", "random-LTD", "curriculum", "curriculum + random-LTD")
    assert list(rows) == [f"{m} @ {b}" for b in ("X", "X/2") for m in methods]
    budget = report["budget_X"]
    for arm, row in rows.items():
        share = 1 if arm.endswith("@ X") else 0.5
        assert row["layer_tokens"] >= share * budget - 1  # each stopped at its own budget ...
        assert row["layer_tokens"] < share * budget * 1.1  # ... within a step of it
        assert (row["data_saving"] > 0) == arm.startswith("curriculum")  # truncation serves fewer tokens
    assert rows["curriculum @ X"]["steps"] > rows["baseline @ X"]["steps"]  # shorter rows: more steps per budget
    assert (tmp_path / "tokens_200000" / "rarity-129.npy").is_file()
    assert set(report["answer"]) == {"worse_by", "tolerance", "matches"}
    assert "Curriculum + random-LTD @ X/2" in (tmp_path / "replicate_gpt_cl.md").read_text()
