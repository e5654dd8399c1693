"""Token-shard pipeline at corpus scale: preparation throughput, training memory, loader speed.

1. Builds a text corpus of ``--corpus-mb`` MB locally (the default corpus's paragraphs, shuffled
   anew for every repetition, in 16 MB files), and a 1 MB one.
2. ``prepare`` with bytes, with a byte-level BPE trained on the corpus (``--vocab-size``), and
   with that trained tokenizer reused (encoding alone): MB of text per second.
3. ``python train.py data=tokens`` for ``--steps`` steps on the big and the 1 MB shards: peak
   resident memory of each (``/usr/bin/time -v``).
4. Loader throughput (tokens/s over ``--batches`` batches, 0 and 2 workers) against what the
   default model consumes (``--model-tokens-per-s``, from the default run's summary).

Run: ``python benchmarks/data_pipeline.py [--corpus-mb 1024] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lightning_ltd.data.prepare import prepare
from lightning_ltd.data.text import default_corpus
from lightning_ltd.data.tokens import TokensDataModule

ROOT = Path(__file__).resolve().parents[1]
FILE_MB = 16


def build_corpus(folder: Path, megabytes: float, seed: int = 0) -> int:
    """``megabytes`` of real text in 16 MB files; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = [p for p in default_corpus().split(b"\n\n") if p.strip()]
    generator = random.Random(seed)
    target, written, index = int(megabytes * 2**20), 0, 0
    while written < target:
        size = min(FILE_MB * 2**20, target - written)
        chunks, length = [], 0
        while length < size:
            generator.shuffle(paragraphs)
            for paragraph in paragraphs:
                chunks.append(paragraph)
                length += len(paragraph) + 2
                if length >= size:
                    break
        data = b"\n\n".join(chunks)[:size]
        (folder / f"part{index:04d}.txt").write_bytes(data)
        written += len(data)
        index += 1
    return written


def timed_prepare(corpus: Path, output: Path, tokenizer: str, vocab_size: int) -> tuple[float, dict]:
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    meta = prepare([str(corpus)], str(output), tokenizer, vocab_size=vocab_size, progress=False)
    return time.perf_counter() - start, meta


def total_tokens(meta: dict) -> int:
    return sum(shard["tokens"] for shard in meta["train"] + meta["val"])


def peak_memory_of_training(shards: Path, steps: int, work: Path) -> float:
    """Peak resident memory (MiB) of ``python train.py data=tokens`` on ``shards``."""
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "train.py",
        "data=tokens",
        f"data.path={shards}",
        f"trainer.max_steps={steps}",
        "trainer.val_check_interval=1000",
        "trainer.limit_val_batches=2",
        "validate_before_fit=false",
        "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false",
        "lr.warmup_steps=1",
        f"hydra.run.dir={work / ('run-' + shards.name)}",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    assert match, result.stderr[-2000:]
    return int(match.group(1)) / 1024


def loader_tokens_per_second(shards: Path, workers: int, batches: int) -> float:
    data = TokensDataModule(str(shards), block_size=128, batch_size=16, num_workers=workers)
    data.use_objective("lm")
    data.setup("fit")
    loader = data.train_dataloader()
    iterator = iter(loader)
    next(iterator)  # workers started
    start, tokens = time.perf_counter(), 0
    for _, batch in zip(range(batches), iterator, strict=False):
        tokens += batch[:, :-1].numel()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-mb", type=float, default=1024)
    parser.add_argument("--vocab-size", type=int, default=50257)
    parser.add_argument("--steps", type=int, default=30, help="training steps for the memory measurement")
    parser.add_argument("--batches", type=int, default=2000, help="batches for the loader throughput")
    parser.add_argument("--model-tokens-per-s", type=float, default=9909, help="the default run's throughput")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="ltd-data-"))
    try:
        big, small = work / "corpus", work / "corpus-1mb"
        size = build_corpus(big, args.corpus_mb)
        build_corpus(small, 1)
        print(f"corpus: {size / 2**20:,.0f} MiB in {len(list(big.iterdir()))} files ({work})")
        results = {}
        for label, tokenizer in (("bytes", "bytes"), ("bpe (train + encode)", "bpe")):
            seconds, meta = timed_prepare(big, work / f"shards-{tokenizer}", tokenizer, args.vocab_size)
            results[label] = (seconds, total_tokens(meta))
        trained = str(work / "shards-bpe" / "tokenizer")
        seconds, meta = timed_prepare(big, work / "shards-bpe-again", trained, 0)
        results["bpe (encode only, trained tokenizer)"] = (seconds, total_tokens(meta))
        for label, (seconds, tokens) in results.items():
            print(f"prepare, {label:<36}: {seconds:8.1f} s, {size / 2**20 / seconds:6.2f} MiB/s, {tokens:,} tokens")
        timed_prepare(small, work / "shards-1mb", "bytes", 0)
        big_rss = peak_memory_of_training(work / "shards-bytes", args.steps, work)
        small_rss = peak_memory_of_training(work / "shards-1mb", args.steps, work)
        print(
            f"train.py data=tokens, {args.steps} steps: peak RSS {big_rss:,.0f} MiB on the big corpus, "
            f"{small_rss:,.0f} MiB on 1 MiB (difference {big_rss - small_rss:+,.0f} MiB)"
        )
        for workers in (0, 2):
            rate = loader_tokens_per_second(work / "shards-bytes", workers, args.batches)
            ratio = rate / args.model_tokens_per_s
            print(f"loader, {workers} workers: {rate:,.0f} tokens/s = {ratio:,.0f}x the default model's consumption")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
