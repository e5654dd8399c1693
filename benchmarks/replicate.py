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

Curriculum learning with random-LTD (DeepSpeed Data Efficiency, arXiv 2212.03597), tasks
``gpt_cl`` and ``bert_cl``: baseline, random-LTD, curriculum (sequence-length truncation and
vocabulary rarity, ``curriculum=seqlen_rarity``) and curriculum + random-LTD, each at 100 % and
50 % of X. Every arm trains on the same prepared shards of the default corpus (rarity needs
scored shards: the script runs ``prepare`` and the rarity command once into ``--out``), and its
schedules scale with its own budget as the reference's 150B run halves its 300B run's: the
random-LTD ramp over 2/3 and both curricula over 110/286 of its budget's full-length steps.

    python benchmarks/replicate.py --task gpt_cl    # 8 arms x 3 seeds (about 25 min on 2 cores)
    python benchmarks/replicate.py --task bert_cl

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
from fractions import Fraction
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_ltd.cli import train  # noqa: E402
from lightning_ltd.data import default_corpus, prepare, rarity  # noqa: E402


@dataclass(frozen=True)
class CurriculumShape:
    """A task's curricula, scaled from the reference's GPT-3 (80 -> 2048, easiest 1 %) or BERT
    (128 -> 512, easiest 5 %) to its own sequence length."""

    min_len: int  # the truncated length at step 0
    rarity_start: float  # the easiest share of the blocks served at step 0
    steps_fraction: float = 110 / 286  # both curricula grow over this share of the budget's steps


@dataclass
class Task:
    """One protocol: an experiment, its size, and the metric that judges quality."""

    experiment: str
    metric: str  # the validation metric reported (lower is better unless ``higher_is_better``)
    steps: int  # the baseline's length: X = steps x the layer-tokens of one full-length step
    ramp_fraction: float = 2 / 3  # the MSLG ramp, as a fraction of the baseline's steps
    overrides: list[str] = field(default_factory=list)
    higher_is_better: bool = False
    curriculum: CurriculumShape | None = None  # set: the curriculum protocol on prepared shards
    zero_shot: bool = False  # a GPT: also the zero-shot last-word cloze on held-out text (lm-evaluation-harness)


@dataclass(frozen=True)
class Arm:
    """One configuration of a task, trained for a fraction of the baseline's budget X."""

    name: str
    fraction: Fraction  # of X
    dropping: bool
    curriculum: bool
    directory: str


LTD_ARMS = [
    Arm("baseline @ X", Fraction(1), False, False, "baseline_X"),
    Arm("random-LTD @ 2/3 X", Fraction(2, 3), True, False, "ltd_two_thirds_X"),
    Arm("random-LTD @ X", Fraction(1), True, False, "ltd_X"),
]
CURRICULUM_ARMS = [
    Arm(f"{method} @ {label}", fraction, dropping, curriculum, f"{directory}_{suffix}")
    for fraction, label, suffix in ((Fraction(1), "X", "X"), (Fraction(1, 2), "X/2", "half_X"))
    for method, dropping, curriculum, directory in (
        ("baseline", False, False, "baseline"),
        ("random-LTD", True, False, "ltd"),
        ("curriculum", False, True, "cl"),
        ("curriculum + random-LTD", True, True, "cl_ltd"),
    )
]
GPT = ["ltd.min_keep=32"]
BERT = ["model.n_layer=4", "ltd.min_keep=32"]
TASKS = {
    "gpt": Task("null", "val/loss", 600, overrides=GPT, zero_shot=True),  # the default GPT, embedded corpus
    "vit": Task("vit_digits", "val/acc", 450, higher_is_better=True, overrides=["ltd.min_keep=16"]),
    "bert": Task("bert_mlm", "val/loss", 300, overrides=BERT),
    # twice the default GPT: 12 layers instead of 6 (2x the parameters in blocks, 2x the compute per step)
    "gpt_2x": Task("null", "val/loss", 600, overrides=[*GPT, "model.n_layer=12"], zero_shot=True),
    # the curriculum protocol: 8 -> 128 (80/2048 of 128, up to a multiple of 8), easiest 1 % first
    "gpt_cl": Task("null", "val/loss", 600, overrides=GPT, curriculum=CurriculumShape(8, 0.01), zero_shot=True),
    # BERT's reference 128 -> 512 is 1/4 -> 1 of the length; easiest 5 % first; the bert task's 32 rows a step
    "bert_cl": Task(
        "bert_mlm", "val/loss", 300, overrides=[*BERT, "data.batch_size=32"], curriculum=CurriculumShape(32, 0.05)
    ),
}
DEFAULT_TASKS = ["gpt", "vit", "bert"]
CORPUS_BYTES = 2_000_000  # the text data's own cap (data.max_bytes), so gpt_cl sees gpt's corpus
SHORT = [
    "model.n_layer=3",
    "model.n_embd=32",
    "model.n_head=2",
    "trainer.limit_val_batches=2",
]
QUIET = ["~callbacks.progress_bar", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def arms(task: Task) -> list[Arm]:
    return LTD_ARMS if task.curriculum is None else CURRICULUM_ARMS


def schedule_overrides(task: Task, arm: Arm, steps: int) -> list[str]:
    """The arm's random-LTD ramp and curricula. The original protocol ramps over 2/3 of the
    baseline's steps whatever the arm's budget; the curriculum protocol scales every schedule
    with the arm's own budget, as the reference's 150B scripts halve their 300B ones."""
    shape = task.curriculum
    budget_steps = steps if shape is None else steps * arm.fraction
    overrides = [f"ltd.ramp_steps={max(1, int(budget_steps * task.ramp_fraction))}"]
    if shape is not None and arm.curriculum:
        curriculum_steps = max(1, round(budget_steps * shape.steps_fraction))
        overrides += [
            "curriculum=seqlen_rarity",
            f"curriculum.min_len={shape.min_len}",
            f"curriculum.steps={curriculum_steps}",
            f"curriculum.rarity_start={shape.rarity_start}",
            f"curriculum.rarity_steps={curriculum_steps}",
        ]
    return overrides


def run_config(
    task: Task, budget: int, dropping: bool, seed: int, out: Path, extra: list[str], schedules: list[str] = ()
) -> list[str]:
    experiment = [] if task.experiment == "null" else [f"experiment={task.experiment}"]
    return [
        *experiment,
        "lr=layer_token_budget",
        f"lr.total_layer_tokens={budget}",
        f"lr.warmup_layer_tokens={budget // 20}",
        "lr.warmup_steps=null",
        f"ltd={'on' if dropping else 'off'}",
        *schedules,
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


def scored_shards(out: Path, widths: set[int], corpus_bytes: int) -> Path:
    """The default corpus prepared into byte shards under ``out`` and scored for rarity at every
    width the arms read (a GPT block's ``block_size + 1``, a BERT row's ``block_size``): made once,
    reused by later tasks and reruns."""
    folder = out / f"tokens_{corpus_bytes}"
    if not (folder / "meta.json").exists():
        text = out / f"corpus_{corpus_bytes}.txt"
        text.write_bytes(default_corpus(corpus_bytes))
        # 1 in 20 units held out: the text data's own val_every=20
        if prepare.main(["--input", str(text), "--output", str(folder), "--val-fraction", "0.05", "--quiet"]):
            raise SystemExit(f"preparing {folder} failed")
    for width in sorted(widths):
        scored = (folder / f"rarity-{width}.npy").exists()
        if not scored and rarity.main([str(folder), "--width", str(width), "--quiet"]):
            raise SystemExit(f"scoring {folder} at width {width} failed")
    return folder


def data_overrides(task: Task, out: Path, short: bool) -> list[str]:
    """The curriculum protocol trains every arm on the same scored shards (rarity needs them)."""
    if task.curriculum is None:
        return []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        block_size = compose("train", overrides=run_config(task, 1, False, 0, out, [])).data.block_size
    mlm = task.experiment == "bert_mlm"
    folder = scored_shards(out, {block_size + (0 if mlm else 1)}, CORPUS_BYTES // (10 if short else 1))
    return ["data=tokens", f"data.path={folder}"]


CLOZE_TASK = "replicate_cloze"
CLOZE_DOCUMENTS = 500


def cloze_task(out: Path, documents: int) -> Path:
    """A LAMBADA-style task from text no run trains on (the default corpus past the training
    cap): each paragraph of 64..600 bytes ending in a word of two or more letters, the last
    word to be predicted from everything before it; scored by the harness (``acc``: greedy
    decoding gives the whole word; ``perplexity`` of the word)."""
    folder = out / f"cloze_{documents}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for paragraph in default_corpus()[CORPUS_BYTES:].decode("utf-8", errors="replace").split("\n\n"):
        words = paragraph.split()
        if 64 <= len(paragraph.encode()) <= 600 and words and words[-1].isalpha() and len(words[-1]) > 1:
            start = paragraph.rstrip().rfind(words[-1])
            rows.append({"context": paragraph[:start], "target": paragraph[start:].rstrip()})
        if len(rows) == documents:
            break
    (folder / "cloze.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / f"{CLOZE_TASK}.yaml").write_text(
        f"task: {CLOZE_TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {folder / 'cloze.jsonl'}\n"
        "output_type: loglikelihood\ntest_split: test\ndoc_to_text: '{{context}}'\ndoc_to_target: '{{target}}'\n"
        "target_delimiter: ''\nmetric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: perplexity\n    aggregation: perplexity\n    higher_is_better: false\n"
    )
    return folder


def zero_shot_overrides(task: Task, out: Path, short: bool) -> list[str]:
    """The cloze task, evaluated once when each run's training ends (after the training clock)."""
    if not task.zero_shot:
        return []
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        print("lm-evaluation-harness is not installed (pip install -e '.[eval]'): no zero-shot figure")
        return []
    folder = cloze_task(out, 50 if short else CLOZE_DOCUMENTS)
    return [
        f"callbacks.zero_shot.tasks=[{CLOZE_TASK}]",
        f"callbacks.zero_shot.include_path={folder}",
        "callbacks.zero_shot.every_n_steps=100000000",
        "callbacks.zero_shot.batch_size=32",
    ]


def zero_shot_results(run_dir: Path) -> dict[str, float]:
    """The cloze metrics each run logged when its training ended (empty where none ran)."""
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        rows = list(csv.DictReader(metrics))
    found = {}
    for metric in ("acc", "perplexity"):
        key = f"zeroshot/{CLOZE_TASK}/{metric}"
        values = [float(row[key]) for row in rows if row.get(key)]
        if values:
            found[f"zero_shot_{metric}"] = values[-1]
    return found


def run_task(name: str, seeds: int, out: Path, short: bool) -> dict:
    task = TASKS[name]
    steps = 30 if short else task.steps
    extra = [*data_overrides(task, out, short), *zero_shot_overrides(task, out, short), *(SHORT if short else [])]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        budget = steps * full_step_layer_tokens(compose("train", overrides=run_config(task, 1, False, 0, out, extra)))
        results: dict[str, list[dict]] = {arm.name: [] for arm in arms(task)}
        for seed in range(seeds):
            for arm in arms(task):
                run_dir = out / name / f"{arm.directory}_seed{seed}"
                arm_budget = budget * arm.fraction.numerator // arm.fraction.denominator
                schedules = schedule_overrides(task, arm, steps)
                overrides = run_config(task, arm_budget, arm.dropping, 1234 + seed, run_dir, extra, schedules)
                summary = train(compose("train", overrides=overrides))
                points = curve(run_dir, task.metric)
                results[arm.name].append(
                    {
                        "train_time_s": points[-1]["time"] if points else float("nan"),
                        "seed": 1234 + seed,
                        "final": summary[task.metric],
                        "wall_time_s": summary["wall_time_s"],
                        "layer_tokens": summary["layer_tokens"],
                        "steps": summary["steps"],
                        "data_saving": summary.get("data_saving", 0.0),
                        "curve": points,
                        **zero_shot_results(run_dir),
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
                "data_saving": statistics.mean(r["data_saving"] for r in runs),
                **spread_of(runs, "zero_shot_acc"),
                **spread_of(runs, "zero_shot_perplexity"),
            }
        )
    report = {"task": name, "budget_X": budget, "seeds": seeds, "table": table, "runs": results}
    if task.curriculum is not None:
        report["answer"] = half_budget_answer(table, task.higher_is_better)
    return report


def spread_of(runs: list[dict], key: str) -> dict[str, float]:
    """``key``'s mean and standard deviation over the seeds (empty where no run has it)."""
    values = [r[key] for r in runs if key in r]
    if not values:
        return {}
    return {key: statistics.mean(values), f"{key}_std": statistics.stdev(values) if len(values) > 1 else 0.0}


def half_budget_answer(table: list[dict], higher_is_better: bool) -> dict:
    """Does curriculum + random-LTD at half the budget match the baseline at X? "Matches" means
    its mean is no worse than the baseline's by more than the larger of the two seed spreads."""
    rows = {row["arm"]: row for row in table}
    baseline, composed = rows["baseline @ X"], rows["curriculum + random-LTD @ X/2"]
    worse_by = (baseline["mean"] - composed["mean"]) if higher_is_better else (composed["mean"] - baseline["mean"])
    tolerance = max(baseline["std"], composed["std"])
    return {"worse_by": worse_by, "tolerance": tolerance, "matches": worse_by <= tolerance}


def markdown(report: dict) -> str:
    task = report["task"]
    lines = [
        f"### {task}: X = {report['budget_X']:,} layer-tokens, {report['seeds']} seed(s)",
        "",
        "| run | final metric (mean ± std, min..max) | steps | layer-tokens | budget saving (vs X) | "
        "training time | measured saving | fit time (with validation) | data saving |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["table"]:
        lines.append(
            f"| {row['arm']} | {row['metric']} {row['mean']:.4f} ± {row['std']:.4f} "
            f"({row['min']:.4f}..{row['max']:.4f}) "
            f"| {row['steps']:.0f} | {row['layer_tokens']:,.0f} | {100 * row['budget_saving']:.1f} % "
            f"| {row['train_time_s']:.1f} s | {100 * row['measured_saving']:.1f} % | {row['fit_time_s']:.1f} s "
            f"| {100 * row['data_saving']:.1f} % |"
        )
    zero_shot = [row for row in report["table"] if "zero_shot_acc" in row]
    if zero_shot:
        lines += [
            "",
            f"Zero-shot last-word cloze on held-out text ({CLOZE_TASK}, lm-evaluation-harness), beside {task}'s "
            "validation metric:",
            "",
            "| run | cloze accuracy (mean ± std) | cloze word perplexity (mean ± std) |",
            "|---|---|---|",
        ]
        for row in zero_shot:
            lines.append(
                f"| {row['arm']} | {row['zero_shot_acc']:.4f} ± {row['zero_shot_acc_std']:.4f} "
                f"| {row['zero_shot_perplexity']:.2f} ± {row['zero_shot_perplexity_std']:.2f} |"
            )
    if "answer" in report:
        answer = report["answer"]
        verdict = "matches" if answer["matches"] else "does not match"
        lines += [
            "",
            f"Curriculum + random-LTD @ X/2 {verdict} the baseline @ X: worse by {answer['worse_by']:+.4f} "
            f"against a tolerance of {answer['tolerance']:.4f} (the larger seed spread).",
        ]
    return "\n".join(lines) + "\n"


COLORS = {
    "baseline": "black",
    "random-LTD": "tab:blue",
    "curriculum": "tab:green",
    "curriculum + random-LTD": "tab:red",
}


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
        for arm, runs in report["runs"].items():
            method, budget = arm.split(" @ ")
            color = COLORS[method]
            for i, run in enumerate(runs):
                points = run["curve"]
                ax.plot(
                    [p[axis] for p in points],
                    [p["value"] for p in points],
                    color=color,
                    linestyle="-" if budget == "X" else "--",
                    alpha=0.8,
                    marker="o",
                    markersize=3,
                    label=arm if i == 0 else None,
                )
        metric = report["table"][0]["metric"]
        ax.set(xlabel=label, ylabel=metric, title=f"{report['task']}: {metric} vs {label}")
        ax.legend(fontsize="small")
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
