"""Training-step time of a Hugging Face Llama with ``apply_random_ltd`` against the unwrapped model.

Prints the median step time of both (forward, loss, backward, AdamW, ``next_plan``), the measured
ratio next to two theoretical ones, and measured / theoretical (the target: within 1.10x):

- the FLOP ratio, counted by ``torch.utils.flop_counter`` over forward and backward of each model
  at its shapes (projections, attention and the LM head: what the step actually computes);
- the layer-token ratio ``(keep * n_dropping + T * (L - n_dropping)) / (T * L)`` (blocks only).

Runs use randomly initialised weights (no download). Run: ``python benchmarks/hf_step_time.py``.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch
import torch.nn.functional as F
import transformers
from torch.utils.flop_counter import FlopCounterMode

from lightning_ltd import apply_random_ltd, next_plan
from lightning_ltd.ltd import default_dropping_layers, layer_tokens_per_step


def build(args: argparse.Namespace) -> transformers.LlamaForCausalLM:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.n_layer,
        num_attention_heads=args.n_head,
        num_key_value_heads=args.n_kv_head,
        max_position_embeddings=args.seq_len,
        use_cache=False,
    )
    config._attn_implementation = "sdpa"
    return transformers.LlamaForCausalLM(config).train()


def loss_of(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=batch[:, :-1]).logits
    return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())


def training_flops(model: torch.nn.Module, batch: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        loss_of(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


class Runner:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(self, batch: torch.Tensor) -> float:
        start = time.perf_counter()
        loss_of(self.model, batch).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        next_plan(self.model)  # a no-op for the unwrapped model (it has no router)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-layer", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--intermediate-size", type=int, default=688)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-kv-head", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--keep", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    plain = build(args)
    layers = default_dropping_layers(args.n_layer)
    wrapped = apply_random_ltd(copy.deepcopy(plain), layers, keep=args.keep)
    batch = torch.randint(
        0, args.vocab_size, (args.batch_size, args.seq_len + 1), generator=torch.Generator().manual_seed(1)
    )

    flops_plain, flops_wrapped = training_flops(plain, batch), training_flops(wrapped, batch)
    n_layer, n_drop, seq = args.n_layer, len(layers), args.seq_len
    token_ratio = layer_tokens_per_step(1, seq, args.keep, n_layer, n_drop) / (seq * n_layer)

    runners = {"unwrapped": Runner(plain), "random-LTD": Runner(wrapped)}
    for runner in runners.values():
        for _ in range(args.warmup):
            runner.step(batch)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.steps):  # interleaved, so drift in the machine's speed hits both alike
        for name, runner in runners.items():
            times[name].append(runner.step(batch))
    median = {name: statistics.median(values) for name, values in times.items()}
    measured = median["random-LTD"] / median["unwrapped"]
    flop_ratio = flops_wrapped / flops_plain

    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(
        f"Llama L{n_layer} C{args.hidden_size} H{args.n_head}/{args.n_kv_head} V{args.vocab_size}, "
        f"B{args.batch_size} T{seq}, dropping layers {layers[0]}..{layers[-1]} at keep {args.keep}"
    )
    for name in runners:
        spread = max(times[name]) - min(times[name])
        print(
            f"{name:>11}: median step {median[name] * 1000:8.1f} ms (spread {spread * 1000:.1f} ms, {args.steps} steps)"
        )
    print(f"measured time ratio        {measured:.3f}")
    counted = f"forward + backward, flop_counter: {flops_wrapped:.3e} / {flops_plain:.3e}"
    print(f"theoretical FLOP ratio     {flop_ratio:.3f}  ({counted})")
    print(f"layer-token ratio          {token_ratio:.3f}  (blocks only)")
    print(f"measured / theoretical     {measured / flop_ratio:.3f}x  (target <= 1.10x)")


if __name__ == "__main__":
    main()
