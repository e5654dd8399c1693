"""Task names, the paper's set and its aggregation, local task folders."""

import pytest

pytest.importorskip("lm_eval")

from lightning_ltd.evaluate.report import metric_rows, set_averages, summary_table
from lightning_ltd.evaluate.tasks import PAPER_19, TaskError, expand_tasks, include_folders, task_manager


def test_paper_19_is_the_papers_list_with_its_metrics():
    names = expand_tasks("paper_19")
    assert len(names) == len(set(names)) == 19
    metrics = {task.name: task.metric for task in PAPER_19}
    assert {n for n, m in metrics.items() if m == "acc_norm"} == {
        "hellaswag",
        "piqa",
        "arc_challenge",
        "arc_easy",
        "openbookqa",
    }
    assert metrics["record"] == "f1" and metrics["lambada_openai"] == "acc"
    assert expand_tasks(["piqa", "paper_19", "piqa"])[0] == "piqa" and len(expand_tasks(["piqa", "paper_19"])) == 19


@pytest.mark.slow  # indexes the harness's ~10,000 task files (about 12 s)
def test_every_paper_task_is_a_task_of_the_installed_harness():
    manager = task_manager(expand_tasks("paper_19"))
    assert all(task.name in manager.all_tasks for task in PAPER_19)


def harness_results(values: dict[str, tuple[str, float]]) -> dict:
    return {
        "results": {
            task: {f"{metric},none": value, f"{metric}_stderr,none": 0.01} for task, (metric, value) in values.items()
        },
        "n-shot": {task: 0 for task in values},
        "n-samples": {task: {"effective": 10} for task in values},
    }


def test_the_paper_average_is_the_mean_of_each_tasks_paper_metric_in_percent():
    values = {task.name: (task.metric, (i + 1) / 40) for i, task in enumerate(PAPER_19)}
    rows = metric_rows(harness_results(values))
    averages = set_averages(rows, ["paper_19"])
    assert averages["paper_19"] == pytest.approx(100 * sum((i + 1) / 40 for i in range(19)) / 19)
    assert "**paper_19 average**" in summary_table(rows, averages)
    del values["wsc"]
    assert set_averages(metric_rows(harness_results(values)), ["paper_19"]) == {}  # not all 19 ran: no average


def test_rows_keep_every_metric_and_filter_and_skip_stderr_keys():
    rows = metric_rows(
        {"results": {"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": "N/A", "exact_match,strict": 0.25}}}
    )
    assert [(r["metric"], r["filter"], r["value"], r["stderr"]) for r in rows] == [
        ("acc", "none", 0.5, None),
        ("exact_match", "strict", 0.25, None),
    ]


@pytest.mark.slow  # command-line processes: about 6 s
def test_unknown_names_and_folders_are_one_line(local_tasks, tmp_path):
    with pytest.raises(TaskError, match=r"'tiny_clozee' is not a task .* \(did you mean tiny_cloze\?\)"):
        task_manager(["tiny_clozee"], str(local_tasks))
    with pytest.raises(TaskError, match="tasks=\\[\\]"):
        expand_tasks([])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TaskError, match="no task YAML files"):
        include_folders(str(empty))
    with pytest.raises(TaskError, match="no such folder"):
        include_folders([str(local_tasks), str(tmp_path / "missing")])


def test_local_tasks_index_only_their_folder(local_tasks):
    manager = task_manager(["tiny_mc", "tiny_cloze"], str(local_tasks))
    assert set(manager.all_tasks) == {"tiny_mc", "tiny_cloze"}
