"""The paper's headline in miniature: does random-LTD reach the baseline's quality with less compute?

For each task, at a layer-token budget X (the baseline's cost of ``--steps`` full-length steps):

- baseline: no dropping, trained until X layer-tokens are spent;
- random-LTD at 2/3 X, and random-LTD at X (MSLG kept length);

every run with the LayerToken learning rate, warmed up and decayed *to its own budget* (a
baseline cut short with an undecayed LR would be no baseline), for several seeds each. It reports
final validation quality (mean and spread), wall-clock of the training loop, the budget saving
(layer-tokens against the baseline's X) and the measured wall-clock saving side by side, writes them as JSON and a
Markdown table, and plots validation loss against layer-tokens and against wall-clock.

    python benchmarks/replicate.py                  # all tasks (gpt, vit, bert), 3 seeds
    python benchmarks/replicate.py --task gpt       # one task (gpt_2x: the GPT at twice the depth)
    python benchmarks/replicate.py --short          # a one-minute smoke version (used by the tests)

Plots need matplotlib (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_ltd.cli import train  # noqa: E402


@dataclass
class Task:
    """One protocol: an experiment, its size, and the metric that judges quality."""

    experiment: str
    metric: str  # the validation metric reported (lower is better unless ``higher_is_better``)
    steps: int  # the baseline's length: X = steps x the layer-tokens of one full-length step
    ramp_fraction: float = 2 / 3  # the MSLG ramp, as a fraction of the baseline's steps
    overrides: list[str] = field(default_factory=list)
    higher_is_better: bool = False


TASKS = {
    "gpt": Task("null", "val/loss", 600, overrides=["ltd.min_keep=32"]),  # the default GPT, embedded corpus
    "vit": Task("vit_digits", "val/acc", 450, higher_is_better=True, overrides=["ltd.min_keep=16"]),
    "bert": Task("bert_mlm", "val/loss", 300, overrides=["model.n_layer=4", "ltd.min_keep=32"]),
    # twice the default GPT: 12 layers instead of 6 (2x the parameters in blocks, 2x the compute per step)
    "gpt_2x": Task("null", "val/loss", 600, overrides=["ltd.min_keep=32", "model.n_layer=12"]),
}
DEFAULT_TASKS = ["gpt", "vit", "bert"]
SHORT = [
    "model.n_layer=3",
    "model.n_embd=32",
    "model.n_head=2",
    "trainer.limit_val_batches=2",
]
QUIET = ["~callbacks.progress_bar", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def run_config(task: Task, budget: int, dropping: bool, seed: int, out: Path, extra: list[str]) -> list[str]:
    experiment = [] if task.experiment == "null" else [f"experiment={task.experiment}"]
    return [
        *experiment,
        "lr=layer_token_budget",
        f"lr.total_layer_tokens={budget}",
        f"lr.warmup_layer_tokens={budget // 20}",
        "lr.warmup_steps=null",
        f"ltd={'on' if dropping else 'off'}",
        f"ltd.ramp_steps={max(1, int(task.steps * task.ramp_fraction))}",
        f"seed={seed}",
        f"trainer.val_check_interval={max(1, task.steps // 4)}",
        "trainer.log_every_n_steps=1",
        "callbacks.throughput.window_size=2",
        "~callbacks.model_checkpoint",
        f"paths.output_dir={out}",
        *task.overrides,
        *QUIET,
        *extra,
    ]


def curve(run_dir: Path, metric: str) -> list[dict[str, float]]:
    """Validation points of one run, each with the layer-tokens and training time (Lightning's
    ThroughputMonitor, validation excluded) of the last training step before it."""
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        rows = list(csv.DictReader(metrics))
    last = {"train/layer_tokens": 0.0, "train/time": 0.0}
    points = []
    for row in rows:
        for key in last:
            if row.get(key):
                last[key] = float(row[key])
        if row.get(metric):
            value = float(row[metric])
            points.append({"step": int(row["step"]), "value": value, **{k.split("/")[1]: v for k, v in last.items()}})
    return points


def full_step_layer_tokens(cfg: DictConfig) -> int:
    """Rows x tokens per row x layers of one full-length step (BERT rows at their padded maximum)."""
    if "block_size" in cfg.data:
        tokens = cfg.data.block_size
    else:
        tokens = (cfg.model.image_size // cfg.model.patch_size) ** 2 + 1
    return cfg.data.batch_size * tokens * cfg.model.n_layer


def run_task(name: str, seeds: int, out: Path, short: bool) -> dict:
    task = TASKS[name]
    steps = 30 if short else task.steps
    extra = SHORT if short else []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        budget = steps * full_step_layer_tokens(compose("train", overrides=run_config(task, 1, False, 0, out, extra)))
        arms = {  # name: (layer-token budget, dropping, directory)
            "baseline @ X": (budget, False, "baseline_X"),
            "random-LTD @ 2/3 X": (budget * 2 // 3, True, "ltd_two_thirds_X"),
            "random-LTD @ X": (budget, True, "ltd_X"),
        }
        results: dict[str, list[dict]] = {arm: [] for arm in arms}
        for seed in range(seeds):
            for arm, (arm_budget, dropping, directory) in arms.items():
                run_dir = out / name / f"{directory}_seed{seed}"
                cfg = compose("train", overrides=run_config(task, arm_budget, dropping, 1234 + seed, run_dir, extra))
                summary = train(cfg)
                points = curve(run_dir, task.metric)
                results[arm].append(
                    {
                        "train_time_s": points[-1]["time"] if points else float("nan"),
                        "seed": 1234 + seed,
                        "final": summary[task.metric],
                        "wall_time_s": summary["wall_time_s"],
                        "layer_tokens": summary["layer_tokens"],
                        "steps": summary["steps"],
                        "curve": points,
                    }
                )
    baseline_time = statistics.mean(r["train_time_s"] for r in results["baseline @ X"])
    table = []
    for arm, runs in results.items():
        finals = [r["final"] for r in runs]
        time_s = statistics.mean(r["train_time_s"] for r in runs)
        tokens = statistics.mean(r["layer_tokens"] for r in runs)
        table.append(
            {
                "arm": arm,
                "metric": task.metric,
                "mean": statistics.mean(finals),
                "std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
                "min": min(finals),
                "max": max(finals),
                "steps": statistics.mean(r["steps"] for r in runs),
                "layer_tokens": tokens,
                "budget_saving": 1 - tokens / budget,  # layer-tokens against the baseline's X
                "train_time_s": time_s,
                "fit_time_s": statistics.mean(r["wall_time_s"] for r in runs),
                "measured_saving": 1 - time_s / baseline_time,
            }
        )
    return {"task": name, "budget_X": budget, "seeds": seeds, "table": table, "runs": results}


def markdown(report: dict) -> str:
    task = report["task"]
    lines = [
        f"### {task}: X = {report['budget_X']:,} layer-tokens, {report['seeds']} seed(s)",
        "",
        "| run | final metric (mean ± std, min..max) | steps | layer-tokens | budget saving (vs X) | "
        "training time | measured saving | fit time (with validation) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["table"]:
        lines.append(
            f"| {row['arm']} | {row['metric']} {row['mean']:.4f} ± {row['std']:.4f} "
            f"({row['min']:.4f}..{row['max']:.4f}) "
            f"| {row['steps']:.0f} | {row['layer_tokens']:,.0f} | {100 * row['budget_saving']:.1f} % "
            f"| {row['train_time_s']:.1f} s | {100 * row['measured_saving']:.1f} % | {row['fit_time_s']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict, out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plots")
        return []
    written = []
    for axis, label in (("layer_tokens", "layer-tokens consumed"), ("time", "training time, validation excluded (s)")):
        figure, ax = plt.subplots(figsize=(6, 4))
        for color, (arm, runs) in zip(("black", "tab:orange", "tab:blue"), report["runs"].items(), strict=False):
            for i, run in enumerate(runs):
                points = run["curve"]
                ax.plot(
                    [p[axis] for p in points],
                    [p["value"] for p in points],
                    color=color,
                    alpha=0.8,
                    marker="o",
                    markersize=3,
                    label=arm if i == 0 else None,
                )
        metric = report["table"][0]["metric"]
        ax.set(xlabel=label, ylabel=metric, title=f"{report['task']}: {metric} vs {label}")
        ax.legend()
        figure.tight_layout()
        path = out / f"replicate_{report['task']}_{axis}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=[*TASKS, "all"], default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--short", action="store_true", help="tiny models, 30 steps, 1 seed: a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "replicate")
    parser.add_argument("--plots", type=Path, default=None, help="where the PNGs go (default: --out)")
    args = parser.parse_args(argv)
    seeds = 1 if args.short else args.seeds
    args.out.mkdir(parents=True, exist_ok=True)
    plots = args.plots or args.out
    plots.mkdir(parents=True, exist_ok=True)
    reports = []
    header = f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    for name in DEFAULT_TASKS if args.task == "all" else [args.task]:
        report = run_task(name, seeds, args.out, args.short)
        report["plots"] = [str(p) for p in plot(report, plots)]
        (args.out / f"replicate_{name}.json").write_text(json.dumps(report, indent=1))
        (args.out / f"replicate_{name}.md").write_text(header + "\n\n" + markdown(report))
        print(header)
        print(markdown(report))
        reports.append(report)
    return reports


if __name__ == "__main__":
    main()
