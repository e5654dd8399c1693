"""Runs under an interpreter that has litgpt (see test_litgpt.py): ``apply_random_ltd`` alone on
a tiny random LitGPT ``GPT`` (Llama-shaped: RMSNorm, SwiGLU, rotary, grouped-query attention),
checked against the unwrapped model. Exits non-zero on the first failed check.

    PYTHONPATH=REPO python litgpt_checks.py
"""

import copy

import torch
from litgpt import Config
from litgpt.model import GPT
from torch import nn

from lightning_ltd import RandomLTD, apply_random_ltd, next_plan
from tests.helpers.recompute import Recomputed

B, T, KEEP = 3, 32, 16
CONFIG = {
    "n_layer": 4,
    "n_embd": 32,
    "n_head": 4,
    "n_query_groups": 2,
    "block_size": 64,
    "vocab_size": 64,
    "padded_vocab_size": 64,
    "bias": False,
    "rotary_percentage": 1.0,
    "parallel_residual": False,
    "norm_class_name": "RMSNorm",
    "mlp_class_name": "LLaMAMLP",
    "intermediate_size": 64,
}


def build() -> tuple[GPT, GPT]:
    torch.manual_seed(0)
    plain = GPT(Config(**CONFIG))
    return plain, apply_random_ltd(copy.deepcopy(plain), layers=[1, 2], keep=KEEP)


def check_widths_and_eval(plain: GPT, model: GPT, idx: torch.Tensor) -> None:
    widths = []
    for layer in model.transformer.h:
        if isinstance(layer, RandomLTD):
            layer.block.register_forward_pre_hook(lambda m, args: widths.append(args[0].shape[1]))
    model.train()
    model(idx)
    assert widths == [KEEP, KEEP], widths
    model.eval()
    plain.eval()
    assert torch.equal(model(idx), plain(idx)), "eval differs from the unwrapped model"


def check_causality(model: GPT, idx: torch.Tensor) -> None:
    model.train()
    x = model.transformer.wte(idx).detach().requires_grad_()
    handle = model.transformer.wte.register_forward_hook(lambda m, args, out: x)
    logits = model(idx)
    handle.remove()
    for position in (5, 20):
        (grad,) = torch.autograd.grad(logits[:, position].sum(), x, retain_graph=True)
        assert grad[:, position + 1 :].abs().max() == 0.0, f"position {position} sees later tokens"
        assert grad[:, :position].abs().sum(-1).gt(0).all(), f"position {position} misses earlier tokens"


def check_rotary_positions(model: GPT, idx: torch.Tensor) -> float:
    """Layer 1 against its block on the gathered subset with the cos/sin rows of the original
    positions; returns how far 0..k-1 positions would have been off."""
    layer = model.transformer.h[1]
    with torch.no_grad():
        layer.block.attn.qkv.weight.mul_(40)  # sharp attention: positions matter
    seen = {}
    layer.register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out))
    model.train()
    model(idx)
    x, out = seen["x"], seen["out"]
    kept = model.ltd_router.layer_plan(0, B, T)[0]
    subset = x.gather(1, kept.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    kept_out = out.gather(1, kept.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    torch.testing.assert_close(kept_out, layer.block(subset, model.cos[kept], model.sin[kept]))
    renumbered = torch.arange(KEEP).expand_as(kept)
    wrong = (kept_out - layer.block(subset, model.cos[renumbered], model.sin[renumbered])).abs().max().item()
    assert wrong > 0.01, wrong
    return wrong


def loss_of(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    logits = model(idx[:, :-1])
    return nn.functional.cross_entropy(logits.flatten(0, 1), idx[:, 1:].flatten())


def check_training(model: GPT, idx: torch.Tensor) -> tuple[float, float]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = loss_of(model, idx)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        next_plan(model)
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    return losses[0], losses[-1]


def gradients(model: GPT, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    model.ltd_router.set_counter(0)  # both runs under the same plan (each forward draws a new one)
    model.zero_grad()
    loss_of(model, idx).backward()
    return {n.replace(".inner.", "."): p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def check_checkpointing(idx: torch.Tensor) -> None:
    for use_reentrant in (True, False):
        _, model = build()
        model.train()
        plain = gradients(model, idx)
        for i in (1, 2):
            model.transformer.h[i] = Recomputed(model.transformer.h[i], use_reentrant)
        recomputed = gradients(model, idx)
        assert recomputed.keys() == plain.keys()
        for key, grad in plain.items():
            torch.testing.assert_close(recomputed[key], grad, msg=key)


def check_verification_and_sliding_windows(idx: torch.Tensor) -> None:
    """verify_random_ltd proves the plain config; sliding-window layers are refused, and without
    the rule the proof finds them."""
    from lightning_ltd import verify_random_ltd
    from lightning_ltd.ltd import families
    from lightning_ltd.ltd.verify import VerificationError

    assert set(verify_random_ltd(build()[1], idx)) == {"transformer.h.1", "transformer.h.2"}
    windowed = Config(**CONFIG, sliding_window_size=4, sliding_window_indices=[1, 1, 1, 1])
    try:
        apply_random_ltd(GPT(windowed), layers=[1, 2])
    except ValueError as err:
        assert "its sliding window is built inside the block" in str(err), err
    else:
        raise AssertionError("a sliding-window LitGPT block was wrapped")
    rules = families.BLOCK_RULES.pop("litgpt.model.Block")
    try:
        families.register_block_rules("litgpt.model.Block", rules.token_kwargs)
        try:
            verify_random_ltd(apply_random_ltd(GPT(windowed), layers=[1, 2]), idx)
        except VerificationError as err:
            assert "layer 'transformer.h.1' (Block): kept outputs differ" in str(err), err
        else:
            raise AssertionError("verify_random_ltd missed the sliding window")
    finally:
        families.BLOCK_RULES["litgpt.model.Block"] = rules


def main() -> None:
    idx = torch.randint(0, 64, (B, T + 1), generator=torch.Generator().manual_seed(1))
    plain, model = build()
    check_widths_and_eval(plain, model, idx[:, :-1])
    check_causality(build()[1], idx[:, :-1])
    wrong = check_rotary_positions(build()[1], idx[:, :-1])
    first, last = check_training(build()[1], idx)
    check_checkpointing(idx)
    check_verification_and_sliding_windows(idx[:, :-1])
    print(f"litgpt checks passed: 0..k-1 positions off by {wrong:.3f}; loss {first:.3f} -> {last:.3f}")


if __name__ == "__main__":
    main()
