"""Graphs a compiled random-LTD run builds, and the compile time of each.

For the MSLG schedule ``--schedule MIN:MAX:GRANULARITY`` over ``--ramp-steps`` it prints the
kept lengths with and without ``--buckets`` (``ltd.compile_buckets``) and the graph bound of
each (``count_graphs``); then it compiles a GPT of the given shape with inductor and runs one
training step (forward, backward) at each of the first ``--max-graphs`` bucketed lengths: the
first step at a length compiles its graph, a second one is steady, and their difference is the
compile time of that graph. Dynamo's own count of compiled frames is printed beside it.

    python benchmarks/compile_graphs.py --device cuda --bf16 --n-layer 24 --n-embd 2048 --n-head 16 \\
        --seq-len 2048 --batch-size 8 --schedule 128:2048:16 --ramp-steps 133333 --max-graphs 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lightning_ltd.ltd.schedule import KeptLengthSchedule
from lightning_ltd.models import GPT, GPTConfig
from lightning_ltd.models.compile import compile_model, count_graphs, recompile_limits


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_seconds(model: GPT, batch: torch.Tensor, keep: int, bf16: bool) -> float:
    """One forward and backward at ``keep`` (gradients dropped), timed to completion."""
    model.keep = keep if keep < batch.shape[1] - 1 else None
    synchronize(batch.device)
    start = time.perf_counter()
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(batch[:, :-1])
    F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten()).backward()
    model.zero_grad(set_to_none=True)
    synchronize(batch.device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--schedule", default="16:128:8", help="MIN:MAX:GRANULARITY of the MSLG kept length")
    parser.add_argument("--ramp-steps", type=int, default=1000)
    parser.add_argument("--buckets", type=int, default=16, help="ltd.compile_buckets")
    parser.add_argument("--max-graphs", type=int, default=4, help="graphs to compile and time")
    args = parser.parse_args()
    low, high, granularity = (int(v) for v in args.schedule.split(":"))
    exact = KeptLengthSchedule(True, low, high, args.ramp_steps, granularity)
    bucketed = KeptLengthSchedule(True, low, high, args.ramp_steps, granularity, args.buckets)
    for name, schedule in (("MSLG", exact), (f"{args.buckets} buckets", bucketed)):
        keeps = schedule.distinct_keeps()
        print(f"{name:>11}: {len(keeps)} kept lengths, {count_graphs([args.seq_len], keeps)} graphs per rank")
    print(f"buckets: {bucketed.distinct_keeps()}")

    device = torch.device(args.device)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=args.vocab_size,
        block_size=args.seq_len,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        dropout=0.0,
    )
    model = GPT(config).to(device).train()
    recompile_limits(count_graphs([args.seq_len], bucketed.distinct_keeps())).__enter__()  # for this process
    torch._dynamo.reset()
    compile_model(model)
    batch = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len + 1), device=device)
    compile_seconds = []
    for keep in [k for k in bucketed.distinct_keeps() if k is not None][: args.max_graphs]:
        first = step_seconds(model, batch, keep, args.bf16)
        steady = statistics.median(step_seconds(model, batch, keep, args.bf16) for _ in range(3))
        compile_seconds.append(first - steady)
        timing = f"first step {first:8.2f} s, steady {steady * 1e3:9.1f} ms"
        print(f"keep {keep:>5}: {timing} -> compile {first - steady:7.2f} s")
    frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{name}: {len(compile_seconds)} graphs compiled (dynamo: {frames} unique graphs), "
        f"median {statistics.median(compile_seconds):.2f} s per graph (forward + backward)"
    )


if __name__ == "__main__":
    main()
