"""Training-step time of a GPT with and without random-LTD: eager, compiled, CUDA graphs.

Prints each mode's median step time at full length and at a fixed kept length, the measured
time ratio next to the theoretical layer-token ratio
``(keep * n_dropping + T * (L - n_dropping)) / (T * L)``, and the compiled speed-ups.

``--schedule MIN:MAX:GRANULARITY`` also times a sample of the MSLG schedule's kept lengths and
integrates over a whole run (``--ramp-steps``, ``--total-steps``): wall-clock saving, layer-token
saving and their ratio, the realization (the paper's 25.6 / 33.3 = 0.77). On CUDA it reports
peak memory per kept length, and ``--sync-check`` runs steady-state steps under
``torch.cuda.set_sync_debug_mode("error")`` (any host synchronisation raises).

One step = ``router.set_counter`` and the step seed (what the schedule callback does), forward, loss, backward
and the AdamW update (fused on CUDA). Run: ``python benchmarks/step_time.py`` (CPU defaults);
``benchmarks/gpu_step_time.sh`` for the GPU shapes.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lightning_ltd.ltd import layer_tokens_per_step, mslg_keep, step_seed
from lightning_ltd.models import GPT, GPTConfig
from lightning_ltd.models.compile import recompile_limits
from lightning_ltd.modules.optim import weight_decay_groups

MODES = {"eager": None, "compile": "default", "cudagraphs": "reduce-overhead"}


class Runner:
    """One model in one mode (eager or compiled) with its optimizer; counts the steps it ran."""

    def __init__(self, model: GPT, mode: str, bf16: bool) -> None:
        self.model = model
        self.bf16 = bf16
        compile_mode = MODES[mode]
        self.forward: Callable[[torch.Tensor], torch.Tensor] = (
            model
            if compile_mode is None
            else torch.compile(
                model, fullgraph=True, dynamic=False, mode=None if compile_mode == "default" else compile_mode
            )
        )
        fused = next(model.parameters()).is_cuda
        self.optimizer = torch.optim.AdamW(weight_decay_groups(model, 0.1), lr=1e-4, fused=fused or None)
        self.steps = 0

    def step(self, batch: torch.Tensor) -> None:
        self.model.router.set_counter(self.steps)  # what RandomLTDScheduler does per micro-batch
        torch.manual_seed(step_seed(0, 0, self.steps))
        with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.forward(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1

    def times(self, batch: torch.Tensor, keep: int | None, warmup: int, steps: int) -> list[float]:
        """Seconds per step at ``keep`` after ``warmup`` untimed steps."""
        self.model.keep = keep if keep is not None and keep < batch.shape[1] - 1 else None  # as the callback does
        self.model.train()
        result = []
        for i in range(warmup + steps):
            synchronize(batch.device)
            start = time.perf_counter()
            self.step(batch)
            synchronize(batch.device)
            if i >= warmup:
                result.append(time.perf_counter() - start)
        return result


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_name() -> str:
    """The CPU model (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-layer", type=int, default=8)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--vocab-size", type=int, default=256)
    parser.add_argument("--keep", type=int, default=None, help="default: seq_len / 2")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="alternate full length / random-LTD this many times")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--modes", default="eager", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--schedule", default=None, help="MIN:MAX:GRANULARITY of an MSLG schedule to integrate")
    parser.add_argument("--schedule-points", type=int, default=12, help="kept lengths of the schedule to time")
    parser.add_argument("--schedule-mode", default="eager", help="the mode that times the schedule")
    parser.add_argument("--ramp-steps", type=int, default=200_000)
    parser.add_argument("--total-steps", type=int, default=286_102)
    parser.add_argument("--sync-check", action="store_true", help="steps under cuda sync debug mode 'error'")
    return parser.parse_args()


def layer_token_ratio(keep: int | None, args: argparse.Namespace, n_dropping: int) -> float:
    return layer_tokens_per_step(1, args.seq_len, keep, args.n_layer, n_dropping) / (args.seq_len * args.n_layer)


def compare_modes(runners: dict[str, Runner], batch: torch.Tensor, keep: int, args: argparse.Namespace) -> None:
    """Full length vs ``keep`` in every mode, interleaved so drift in machine speed hits all alike."""
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for name, runner in runners.items():
            for label, kept in (("full length", None), ("random-LTD", keep)):
                times.setdefault((name, label), []).extend(runner.times(batch, kept, args.warmup, args.steps))
    theoretical = layer_token_ratio(keep, args, len(next(iter(runners.values())).model.config.ltd_layers or []))
    medians = {key: statistics.median(values) for key, values in times.items()}
    for (name, label), median in medians.items():
        print(f"{name:>10} {label:<12}: {1000 * median:8.1f} ms (median of {len(times[name, label])})")
    print(f"theoretical ratio (layer-tokens): {theoretical:.3f}")
    for name in runners:
        measured = medians[name, "random-LTD"] / medians[name, "full length"]
        print(f"{name:>10} measured ratio (time): {measured:.3f} ({measured / theoretical:.3f} x theoretical)")
    for name in runners:
        if name != "eager" and "eager" in runners:
            for label in ("full length", "random-LTD"):
                print(f"{name} speed-up over eager, {label}: {medians['eager', label] / medians[name, label]:.2f}x")
    best = min(medians[name, "random-LTD"] for name in runners)
    print(f"best random-LTD time / eager full length: {best / medians.get(('eager', 'full length'), best):.3f}")


def sampled_keeps(low: int, high: int, granularity: int, points: int) -> list[int]:
    """``points`` kept lengths spread over the schedule's grid, both ends included."""
    grid = sorted({mslg_keep(t, low, high, 1000, granularity) for t in range(1001)})
    if len(grid) <= points:
        return grid
    return sorted({grid[round(i * (len(grid) - 1) / (points - 1))] for i in range(points)})


def interpolate(samples: dict[int, float], keep: int) -> float:
    """Step time at ``keep``, linear between the nearest timed kept lengths."""
    keys = sorted(samples)
    if keep in samples:
        return samples[keep]
    upper = next(k for k in keys if k > keep)
    lower = max(k for k in keys if k < keep)
    weight = (keep - lower) / (upper - lower)
    return samples[lower] + weight * (samples[upper] - samples[lower])


def integrate_schedule(runner: Runner, batch: torch.Tensor, args: argparse.Namespace, n_dropping: int) -> None:
    """Realization over a whole MSLG run: time per kept length, weighted by the steps spent there."""
    low, high, granularity = (int(v) for v in args.schedule.split(":"))
    samples, memory = {}, {}
    for keep in sampled_keeps(low, high, granularity, args.schedule_points):
        if batch.is_cuda:
            torch.cuda.reset_peak_memory_stats()
        samples[keep] = statistics.median(runner.times(batch, keep, args.warmup, args.steps))
        if batch.is_cuda:
            memory[keep] = torch.cuda.max_memory_allocated() / 2**30
    full_time = (
        samples[high] if high >= args.seq_len else statistics.median(runner.times(batch, None, args.warmup, args.steps))
    )
    print(f"schedule {low} -> {high} (granularity {granularity}) over {args.ramp_steps} of {args.total_steps} steps")
    for keep, seconds in samples.items():
        peak = f", peak memory {memory[keep]:.1f} GiB" if keep in memory else ""
        ratio = layer_token_ratio(keep, args, n_dropping)
        print(
            f"  keep {keep:>5}: {1000 * seconds:8.1f} ms, time ratio {seconds / full_time:.3f}, "
            f"layer-token ratio {ratio:.3f}{peak}"
        )
    counts: dict[int, int] = {}
    for t in range(args.total_steps):
        keep = mslg_keep(t, low, high, args.ramp_steps, granularity)
        counts[keep] = counts.get(keep, 0) + 1
    time_ltd = sum(n * interpolate(samples, keep) for keep, n in counts.items())
    tokens_ltd = sum(n * layer_token_ratio(keep, args, n_dropping) for keep, n in counts.items())
    wall_saving = 1 - time_ltd / (args.total_steps * full_time)
    token_saving = 1 - tokens_ltd / args.total_steps
    print(f"whole-run wall-clock saving {100 * wall_saving:.1f} %, layer-token saving {100 * token_saving:.1f} %")
    print(f"realization (wall / layer-token saving): {wall_saving / token_saving:.3f}")


def sync_check(runner: Runner, batch: torch.Tensor, keep: int) -> None:
    """Steady-state steps with every host synchronisation turned into an error."""
    runner.times(batch, keep, 2, 0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            runner.step(batch)
        verdict = "no host synchronisation in 3 steady-state steps"
    except RuntimeError as err:
        verdict = f"SYNC: {str(err).splitlines()[0]}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    print(f"sync check ({'compiled' if runner.forward is not runner.model else 'eager'}): {verdict}")


def main() -> None:
    args = parse_args()
    keep = args.keep or args.seq_len // 2
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    torch.manual_seed(0)
    sizes = {"n_layer": args.n_layer, "n_head": args.n_head, "n_embd": args.n_embd}
    config = GPTConfig(vocab_size=args.vocab_size, block_size=args.seq_len, **sizes)
    base = GPT(config).to(device)
    batch = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len + 1), device=device)
    n_dropping = len(config.ltd_layers or [])
    recompile_limits(args.schedule_points * 2 + 4).__enter__()  # for this process
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"machine: {device_name}, {torch.get_num_threads()} CPU threads; torch {torch.__version__}")
    print(
        f"GPT L={args.n_layer} C={args.n_embd} H={args.n_head} T={args.seq_len} V={args.vocab_size} "
        f"B={args.batch_size}, keep={keep} in layers {config.ltd_layers}, "
        f"{'bf16 autocast' if args.bf16 else 'float32'}, modes {args.modes}"
    )
    modes = [m for m in args.modes.split(",") if m]
    runners = {mode: Runner(base if mode == "eager" else copy.deepcopy(base), mode, args.bf16) for mode in modes}
    if args.repeats > 0:
        compare_modes(runners, batch, keep, args)
    if args.sync_check and device.type == "cuda":
        for runner in runners.values():
            sync_check(runner, batch, keep)
    if args.schedule:
        integrate_schedule(runners.get(args.schedule_mode) or runners[modes[0]], batch, args, n_dropping)


if __name__ == "__main__":
    main()
