"""Training-step time of a GPT with and without random-LTD at a fixed kept length.

Prints the measured time ratio next to the theoretical layer-token ratio
``(keep * n_dropping + T * (L - n_dropping)) / (T * L)``. Run: ``python benchmarks/step_time.py``;
``--compile`` times compiled blocks too (eager and compiled, with and without dropping);
``--bf16`` runs under bf16 autocast (GPU).
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

from lightning_ltd.ltd import layer_tokens_per_step
from lightning_ltd.models import GPT, GPTConfig
from lightning_ltd.models.compile import compile_blocks
from lightning_ltd.modules.base import weight_decay_groups


def step_times(
    model: GPT, batch: torch.Tensor, keep: int | None, warmup: int, steps: int, bf16: bool = False
) -> list[float]:
    """Seconds per optimizer step (forward, backward, AdamW update)."""
    model.keep = keep
    model.train()
    optimizer = torch.optim.AdamW(weight_decay_groups(model, 0.1), lr=1e-4)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if batch.is_cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def cpu_name() -> str:
    """The CPU model (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-layer", type=int, default=8)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--keep", type=int, default=None, help="default: seq_len / 2")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="alternate baseline/LTD this many times")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time compiled blocks (inductor)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    args = parser.parse_args()
    keep = args.keep or args.seq_len // 2

    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=256, block_size=args.seq_len, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd
    )
    model = GPT(config).to(args.device)
    batch = torch.randint(0, 256, (args.batch_size, args.seq_len + 1), device=args.device)
    variants = {"eager": model}
    if args.compile:
        compiled = copy.deepcopy(model)
        compile_blocks(compiled)
        variants["compiled"] = compiled
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):  # interleave, so drift in machine speed hits all alike
        for name, variant in variants.items():
            for label, kept in (("full length", None), ("random-LTD", keep)):
                run = step_times(variant, batch, kept, args.warmup, args.steps, args.bf16)
                times.setdefault((name, label), []).extend(run)

    n_dropping = len(config.ltd_layers)
    theoretical = layer_tokens_per_step(1, args.seq_len, keep, args.n_layer, n_dropping) / (args.seq_len * args.n_layer)
    medians = {key: statistics.median(values) for key, values in times.items()}
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} threads, device {device}")
    print(f"torch {torch.__version__}, {'bf16 autocast' if args.bf16 else 'float32'}")
    print(
        f"GPT L={args.n_layer} C={args.n_embd} T={args.seq_len} B={args.batch_size}, "
        f"keep={keep} in layers {config.ltd_layers}"
    )
    for (name, label), median in medians.items():
        print(f"{name:>9} {label:<12}: {1000 * median:8.1f} ms (median of {len(times[name, label])})")
    print(f"theoretical ratio (layer-tokens): {theoretical:.3f}")
    for name in variants:
        measured = medians[name, "random-LTD"] / medians[name, "full length"]
        verdict = "met" if measured <= 1.10 * theoretical else "NOT met"
        print(
            f"{name:>9} measured ratio (time): {measured:.3f} ({measured / theoretical:.3f} x theoretical; {verdict})"
        )
    if args.compile:
        for label in ("full length", "random-LTD"):
            speedup = medians["eager", label] / medians["compiled", label]
            print(f"compiled speed-up, {label}: {speedup:.2f}x")


if __name__ == "__main__":
    main()
