"""Bad inputs and faults for every command beside ``python train.py``'s own table, run as a user
would: how many end as they should (exit 2 for a bad input, 5 for a file operation the machine
refused, with one ``error:`` line on stderr and nothing written over).

    python benchmarks/command_catalogue.py [--only SUBSTRING] [--json OUT]

Each case is (class, command, expected exit code); ``{names}`` in braces are files made here. An
outcome is ``one line`` (what we want), ``accepted`` (exit 0), ``traceback`` (more than one
stderr line), ``wrong code`` or ``killed``. The classes follow issue 37.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PREPARE, RARITY, TINY = ([PY, "-m", f"lightning_ltd.{m}"] for m in ("data.prepare", "data.rarity", "pretrained.tiny"))
EVAL = [PY, "-m", "lightning_ltd.evaluate"]
TRAIN = [PY, str(ROOT / "train.py")]
SHORT = [
    "model.n_layer=3",
    "model.n_embd=32",
    "model.n_head=2",
    "data.block_size=32",
    "data.batch_size=8",
    "data.max_bytes=60000",
    "ltd.min_keep=8",
    "ltd.ramp_steps=4",
    "lr.warmup_steps=1",
    "trainer.max_steps=4",
    "trainer.val_check_interval=4",
    "trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
]
TOKENS = ["data=tokens", "data.path={prepared}", "model.vocab_size=256", *(o for o in SHORT if "max_bytes" not in o)]
LOCAL = ["include_path={tasks}", "limit=2"]

CATALOGUE: list[tuple[str, list[str], int]] = [
    # commands beside train.py: ordinary mistakes
    ("prepare", [*PREPARE, "--input", "{text}", "--output", "{a_file}"], 2),
    ("prepare", [*PREPARE, "--input", "{missing}", "--output", "{new}"], 2),
    ("prepare", [*PREPARE, "--input", "{text}", "--output", "{new}", "--vocab-size", "0", "--tokenizer", "bpe"], 2),
    ("prepare", [*PREPARE, "--input", "{text}", "--output", "{new}", "--val-fraction", "1.5"], 2),
    ("prepare", [*PREPARE, "--input", "{text}", "--output", "{new}", "--shard-tokens", "0"], 2),
    ("prepare", [*PREPARE, "--input", "{text}", "--output", "{new}", "--tokenizer", "{missing}"], 2),
    ("prepare", [*PREPARE, "--input", "{text}", "--output", "{new}", "--bpe-sample-mb", "-1", "--tokenizer", "bpe"], 2),
    ("prepare", [*PREPARE, "--input", "{empty}", "--output", "{new}"], 2),
    ("prepare", [*PREPARE, "--input", "{text}", "--output", "{new}", "--val-fraction", "abc"], 2),
    ("rarity", [*RARITY, "{missing}", "--width", "33"], 2),
    ("rarity", [*RARITY, "{prepared}", "--width", "0"], 2),
    ("rarity", [*RARITY, "{prepared}", "--width", "100000000"], 2),
    ("rarity", [*RARITY, "{a_file}", "--width", "33"], 2),
    ("rarity", [*RARITY, "{empty_dir}", "--width", "33"], 2),
    ("rarity", [*RARITY, "{prepared}"], 2),
    ("tiny", [*TINY, "gpt2", "{a_file}"], 2),
    ("tiny", [*TINY, "gpt3", "{new}"], 2),
    ("tiny", [*TINY, "llama", "{a_file}/inside"], 2),
    ("tiny", [*TINY], 2),
    ("eval", [*EVAL, "ckpt_path={missing}", "tasks=[lambada_openai]"], 2),
    ("eval", [*EVAL, "ckpt_path={ckpt}", "tasks=[tiny_mc]", *LOCAL, "device=cuda"], 2),
    ("eval", [*EVAL, "ckpt_path={ckpt}", "tasks=[tiny_nofield]", *LOCAL], 2),
    ("eval", [*EVAL, "ckpt_path={ckpt}", "tasks=[tiny_mc]", *LOCAL, "output_dir={a_file}"], 2),
    ("eval", [*EVAL, "ckpt_path={ckpt}", "tasks=[nope_task]"], 2),
    ("eval", [*EVAL, "ckpt_path={ckpt}", "tasks=[lambada_openai]", "batch_size=0"], 2),
    ("eval", [*EVAL, "ckpt_path={ckpt}", "tasks=[lambada_openai]", "limit=-1"], 2),
    ("eval", [*EVAL, "ckpt_path={nan_ckpt}", "tasks=[tiny_mc]", *LOCAL], 2),
    ("eval", [*EVAL, "ckpt_path={a_file}", "tasks=[lambada_openai]"], 2),
    ("eval", [*EVAL, "tasks=[lambada_openai]"], 2),
    # curriculum settings that cannot do what they say
    ("curriculum", [*TRAIN, *SHORT, "curriculum=seqlen", "curriculum.min_len=64"], 2),
    ("curriculum", [*TRAIN, *SHORT, "curriculum=seqlen", "curriculum.max_len=1000"], 2),
    ("curriculum", [*TRAIN, *SHORT, "curriculum=seqlen", "curriculum.steps=0"], 2),
    ("curriculum", [*TRAIN, *SHORT, "curriculum=seqlen", "curriculum.granularity=0"], 2),
    ("curriculum", [*TRAIN, *SHORT, "curriculum=seqlen", "curriculum.min_len=32"], 2),
    ("curriculum", [*TRAIN, *SHORT, "curriculum=seqlen", "curriculum.root_degree=0", "curriculum.schedule=root"], 2),
    ("curriculum", [*TRAIN, *SHORT, "curriculum=seqlen", "curriculum.schedule=cubic"], 2),
    ("curriculum", [*TRAIN, *TOKENS, "curriculum=rarity", "curriculum.rarity_start=1.5"], 2),
    ("curriculum", [*TRAIN, *TOKENS, "curriculum=rarity", "curriculum.rarity_steps=-1"], 2),
    ("curriculum", [*TRAIN, *TOKENS, "curriculum=rarity", "curriculum.rarity_start=1.0"], 2),
    # derived files checked against their source
    ("derived", [*TRAIN, *TOKENS, "data.path={stale}", "curriculum=rarity"], 2),
    ("derived", [*TRAIN, *TOKENS, "data.path={cut_scores}", "curriculum=rarity"], 2),
    # write faults from the real writers (a file-size limit on the child process)
    ("write fault", ["FSIZE=20000", *TRAIN, *SHORT, "callbacks.model_checkpoint.every_n_train_steps=2"], 5),
    ("write fault", ["FSIZE=20000", *PREPARE, "--input", "{text}", "--output", "{new}"], 5),
    ("write fault", ["FSIZE=4000", *RARITY, "{prepared_copy}", "--width", "33"], 5),
    ("write fault", ["FSIZE=20000", *TINY, "gpt2", "{new}"], 5),
]


def make_files(tmp: Path) -> dict[str, str]:
    """The files the cases name: text, a prepared corpus with and without good scores, a checkpoint."""
    text = tmp / "corpus.txt"
    text.write_text(("the quick brown fox jumps over the lazy dog. " * 40 + "\n") * 60)
    (tmp / "a_file").write_text("x")
    (tmp / "empty.txt").write_text("")
    (tmp / "empty_dir").mkdir()
    names = {"text": text, "a_file": tmp / "a_file", "empty": tmp / "empty.txt", "empty_dir": tmp / "empty_dir"}
    names |= {"missing": tmp / "missing", "new": tmp / "new"}
    for name in ("prepared", "prepared_copy", "stale", "cut_scores"):
        run([*PREPARE, "--input", str(text), "--output", str(tmp / name), "--quiet"])
        names[name] = tmp / name
    for name in ("stale", "cut_scores"):
        run([*RARITY, str(tmp / name), "--width", "33", "--quiet"])
    # stale: the corpus re-prepared from other text of the same size under the old scores
    scores = (tmp / "stale").glob("rarity*")
    kept = {p.name: p.read_bytes() for p in scores}
    other = tmp / "other.txt"
    other.write_text(text.read_text().replace("quick", "slowr"))
    run([*PREPARE, "--input", str(other), "--output", str(tmp / "stale"), "--quiet", "--overwrite"])
    for name, data in kept.items():
        (tmp / "stale" / name).write_bytes(data)
    for path in (tmp / "cut_scores").glob("rarity*.npy"):
        path.write_bytes(path.read_bytes()[:-40])
    run([*TRAIN, *SHORT, f"hydra.run.dir={tmp / 'run'}"])
    ckpt = next((tmp / "run").rglob("last.ckpt"))
    names["ckpt"] = ckpt
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    key = next(k for k in state["state_dict"] if "wte" in k or "embed" in k)
    state["state_dict"][key] = torch.full_like(state["state_dict"][key], float("nan"))
    torch.save(state, tmp / "nan.ckpt")
    names["nan_ckpt"] = tmp / "nan.ckpt"
    sys.path.insert(0, str(ROOT))
    from tests.evaluate.conftest import write_tasks

    tasks = write_tasks(tmp / "tasks")
    nofield = (tasks / "tiny_mc.yaml").read_text().replace("task: tiny_mc", "task: tiny_nofield")
    (tasks / "tiny_nofield.yaml").write_text(nofield.replace("{{question}}", "{{prompt}}"))
    names["tasks"] = tasks
    return {k: str(v) for k, v in names.items()}


def run(command: list[str], limit_bytes: int | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    preexec = limit if limit_bytes else None
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd, env=env, preexec_fn=preexec)


PROGRESS = re.compile(r"\[\d+:\d+<")
"""tqdm's ``[elapsed<remaining`` field: a progress bar's line."""


def outcome(done: subprocess.CompletedProcess, expected: int) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    lines = [line for line in lines if not PROGRESS.search(line)]  # a command's own progress bar is no error line
    if done.returncode == 0:
        return "accepted"
    if done.returncode < 0:
        return "killed"
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return "traceback"
    return "one line" if done.returncode == expected else "wrong code"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        names = make_files(tmp)
        for i, (kind, command, expected) in enumerate(CATALOGUE):
            if args.only not in " ".join([kind, *command]):
                continue
            work = tmp / f"case{i}"
            work.mkdir()
            limit = int(command[0].split("=")[1]) if command[0].startswith("FSIZE=") else None
            names["new"] = str(work / "new")
            argv = [part.format(**names) for part in command if not part.startswith("FSIZE=")]
            start = time.perf_counter()
            done = run([*argv, f"hydra.run.dir={work / 'run'}"] if argv[1].endswith("train.py") else argv, limit, work)
            result = outcome(done, expected)
            last = (done.stderr.strip().splitlines() or [""])[-1][:150]
            rows.append({"class": kind, "command": argv[2:], "exit": done.returncode, "outcome": result, "last": last})
            seconds = time.perf_counter() - start
            print(f"{result:10} {done.returncode:4} {seconds:5.1f}s {kind:12} {' '.join(argv[2:])[-90:]}")
            print(f"{'':28}{last}")
    good = sum(r["outcome"] == "one line" for r in rows)
    print(f"\n{good} of {len(rows)} end as they should ({100 * good / max(1, len(rows)):.0f} %)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
