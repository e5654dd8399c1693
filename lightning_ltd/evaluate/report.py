"""The harness's results as one table, with the paper's aggregation, and written to disk."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightning_ltd.evaluate.tasks import TASK_SETS

Row = dict[str, Any]


def metric_rows(results: Mapping[str, Any]) -> list[Row]:
    """One row per (task, metric, filter) of the harness's ``results``; stderr where it has one."""
    rows = []
    for task, metrics in results.get("results", {}).items():
        shots = results.get("n-shot", {}).get(task)
        samples = results.get("n-samples", {}).get(task, {}).get("effective")
        for key, value in metrics.items():
            if "," not in key or "_stderr," in key or not isinstance(value, (int, float)):
                continue
            metric, filter_name = key.split(",", 1)
            stderr = metrics.get(f"{metric}_stderr,{filter_name}")
            rows.append(
                {
                    "task": task,
                    "metric": metric,
                    "filter": filter_name,
                    "value": float(value),
                    "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                    "num_fewshot": shots,
                    "samples": samples,
                }
            )
    return rows


def set_averages(rows: Sequence[Row], requested: Sequence[str]) -> dict[str, float]:
    """For each requested task set all of whose tasks ran: the mean of its tasks' metrics, in
    percent (the paper's "average over 19 tasks")."""
    averages = {}
    for name in requested:
        if name not in TASK_SETS:
            continue
        picked = [first_value(rows, task.name, task.metric) for task in TASK_SETS[name]]
        if all(v is not None for v in picked):
            averages[name] = 100 * sum(picked) / len(picked)
    return averages


def first_value(rows: Sequence[Row], task: str, metric: str) -> float | None:
    """The first filter's value of ``metric`` on ``task`` (None if it did not run)."""
    return next((row["value"] for row in rows if row["task"] == task and row["metric"] == metric), None)


def summary_table(rows: Sequence[Row], averages: Mapping[str, float]) -> str:
    """A Markdown table of every metric, then each set's average."""
    lines = ["| task | metric | filter | value | stderr | shots | samples |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        stderr = "" if row["stderr"] is None or math.isnan(row["stderr"]) else f"{row['stderr']:.4f}"
        lines.append(
            f"| {row['task']} | {row['metric']} | {row['filter']} | {row['value']:.4f} | {stderr} "
            f"| {row['num_fewshot']} | {row['samples']} |"
        )
    for name, value in averages.items():
        lines.append(f"| **{name} average** | (each task's paper metric) | | {value:.2f} % | | | |")
    return "\n".join(lines) + "\n"


def write_results(folder: Path, results: Mapping[str, Any], table: str, header: str) -> tuple[Path, Path]:
    """``results-<UTC time>.json`` (the harness's dictionary) and ``summary-<UTC time>.md`` in
    ``folder``: a new pair per evaluation, so nothing written earlier is replaced."""
    from lm_eval.utils import handle_non_serializable

    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S-%fZ")
    json_path, table_path = folder / f"results-{stamp}.json", folder / f"summary-{stamp}.md"
    json_path.write_text(json.dumps(results, indent=1, default=handle_non_serializable))
    table_path.write_text(f"{header}\n\n{table}")
    return json_path, table_path
