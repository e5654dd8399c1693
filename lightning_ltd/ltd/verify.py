"""``verify_random_ltd``: prove on one small input that a wrapped model is exact, before a long run.

A wrapped layer is exact when its kept tokens' outputs equal what the unwrapped block computes
on the whole sequence with every dropped token hidden as a key, at the tokens' original
positions: the block then runs on the same tokens, sees the same pairs and the same positions.
The reference is computed another way than the wrapper computes it: the block runs on the full
sequence and its attention is masked where it happens (``KeyMask``: every
``scaled_dot_product_attention`` call and every softmax over a ``[.., T, T]`` score matrix), so a
block that keeps position state of its own (a window sliced by the kept length, a bias computed
for ``0..k-1``) differs, and is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from lightning_ltd.ltd.routing import find_routers
from lightning_ltd.ltd.tokens import gather_tokens
from lightning_ltd.ltd.wrapper import RandomLTD

SOFTMAX = (torch.softmax, F.softmax, torch.Tensor.softmax)
CACHES = frozenset({"cache", "past_key_value", "past_key_values", "layer_past"})
"""Key-value caches a block may be handed: the reference call starts without one."""


class VerificationError(ValueError):
    """A wrapped model that is not exact: one line naming the layer and what to declare."""


class KeyMask(TorchFunctionMode):
    """Hides the keys outside ``visible`` (``[B, T]``, True: a kept token) in every attention that
    runs inside it, by SDPA or by an explicit softmax over ``[.., T, T]`` scores."""

    def __init__(self, visible: torch.Tensor) -> None:
        super().__init__()
        self.visible = visible

    def allowed(self, lead: int, ndim: int) -> torch.Tensor:
        """The visible keys, shaped to broadcast over ``[lead, (H,) Tq, T]`` scores."""
        batch, seq_len = self.visible.shape
        rows = self.visible if lead == batch else self.visible.repeat_interleave(lead // batch, dim=0)
        return rows.view(lead, *([1] * (ndim - 2)), seq_len)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        seq_len = self.visible.shape[1]
        if func is F.scaled_dot_product_attention and args[1].shape[-2] == seq_len:
            query, key = args[0], args[1]
            mask = kwargs.pop("attn_mask", args[3] if len(args) > 3 else None)
            allowed = self.allowed(query.shape[0], query.ndim)
            if kwargs.pop("is_causal", args[5] if len(args) > 5 else False):
                allowed = allowed & torch.ones(query.shape[-2], seq_len, dtype=torch.bool, device=key.device).tril()
            if mask is None or mask.dtype == torch.bool:
                mask = allowed if mask is None else mask & allowed
            else:
                mask = mask.masked_fill(~allowed, float("-inf"))
            keyword = {k: v for k, v in kwargs.items() if k in ("scale", "enable_gqa")}
            return func(*args[:3], attn_mask=mask, dropout_p=0.0, is_causal=False, **keyword)
        if func in SOFTMAX and args and args[0].ndim >= 3 and args[0].shape[-1] == seq_len == args[0].shape[-2]:
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            if dim in (-1, args[0].ndim - 1):
                scores = args[0].masked_fill(~self.allowed(args[0].shape[0], args[0].ndim), float("-inf"))
                return func(scores, *args[1:], **kwargs)
        return func(*args, **kwargs)


def verify_random_ltd(
    model: nn.Module,
    example_inputs: Any,
    *,
    keep: int | None = None,
    causal: bool | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> dict[str, float]:
    """Check, on ``example_inputs`` (a dict of keyword arguments, a tuple of positional ones or
    one tensor, ``[B, T, ...]``), that ``model``'s random-LTD layers are exact:

    - in eval mode the model equals the unwrapped model;
    - each wrapped layer's kept outputs equal its unwrapped block on the full sequence with the
      dropped keys hidden, at the original positions; dropped tokens pass unchanged;
    - a causal model (``causal`` None: found out on the unwrapped model) stays causal.

    Raises ``VerificationError``, one line naming the layer and the argument and what to
    declare (``token_kwargs`` / ``static_kwargs`` / ``register_block_rules``). Returns each
    layer's largest difference. ``keep``: the kept length to test (None: half the sequence).
    Dropout is off and the model's state is as it was afterwards.
    """
    layers = {path: m for path, m in model.named_modules() if isinstance(m, RandomLTD)}
    if not layers:
        raise VerificationError(f"{type(model).__name__} has no RandomLTD layers: apply_random_ltd(model) first")
    with kept_state(model), torch.enable_grad():  # grad on: PyTorch's fused attention paths bypass SDPA
        model.eval()
        plain = unwrapped_output(model, layers, example_inputs)
        if not torch.equal(plain, output_of(model, example_inputs)):
            raise VerificationError("in eval mode the wrapped model differs from the unwrapped one")
        seq_len = plain.shape[1]
        keep = keep if keep is not None else max(1, seq_len // 2)
        for router in find_routers(model):
            router.keep = keep
            router.set_counter(0)
        for layer in layers.values():
            layer.training = True  # this wrapper drops; every block and dropout stays in eval mode
        calls = capture_calls(model, layers, example_inputs)
        differences = {path: layer_difference(path, layers[path], *calls[path], rtol, atol) for path in calls}
        if causal if causal is not None else is_causal(model, layers, example_inputs):
            check_causal(model, example_inputs, seq_len)
    return differences


def capture_calls(model: nn.Module, layers: dict[str, RandomLTD], inputs: Any) -> dict[str, tuple]:
    """One dropping forward: each layer's (args, kwargs, output), or the error named by its layer."""
    calls: dict[str, tuple] = {}
    running: list[str] = []
    handles = []

    def record(path: str, args: tuple, kwargs: dict, output: Any) -> None:  # returns None: the output stays
        calls.setdefault(path, (args, kwargs, output))
        running.remove(path)

    for path, layer in layers.items():
        handles.append(layer.register_forward_pre_hook(lambda m, a, p=path: running.append(p)))
        handles.append(layer.register_forward_hook(lambda m, a, k, o, p=path: record(p, a, k, o), with_kwargs=True))
    try:
        output_of(model, inputs)
    except (ValueError, TypeError, RuntimeError, IndexError) as err:
        where = f"layer {running[-1]!r}" if running else type(model).__name__  # the layer that raised, if one
        raise VerificationError(f"{where}: {str(err).splitlines()[0]}") from err
    finally:
        for handle in handles:
            handle.remove()
    return calls


def layer_difference(path: str, layer: RandomLTD, args: tuple, kwargs: dict, out: Any, rtol: float, atol: float):
    """The kept outputs against the block on the full sequence with the dropped keys hidden."""
    kwargs = dict(kwargs)
    kept = kwargs.pop("kept_indices", None)
    x = args[0] if args else kwargs[layer.parameter_names[0]]
    batch, seq_len = x.shape[:2]
    if kept is None:
        kept = layer.router.layer_plan(layer.plan_row, batch, seq_len)[0]  # the plan the forward drew
    visible = torch.zeros(batch, seq_len, dtype=torch.bool, device=x.device).scatter(1, kept, True)
    kwargs = {k: None if k in CACHES else v for k, v in kwargs.items()}  # the forward filled it already
    with KeyMask(visible):
        reference = first_tensor(layer.block(*args, **kwargs))
    got = first_tensor(out)
    if not torch.equal(got.masked_select(~visible.unsqueeze(-1)), x.masked_select(~visible.unsqueeze(-1))):
        raise VerificationError(f"layer {path!r}: dropped tokens do not pass unchanged")
    expected, kept_out = gather_tokens(reference, kept), gather_tokens(got, kept)
    difference = float((expected - kept_out).detach().abs().max())
    if difference > atol + rtol * float(expected.detach().abs().max()):
        raise VerificationError(
            f"layer {path!r} ({type(layer.block).__name__}): kept outputs differ by {difference:.3g} from the block "
            "on the full sequence with the dropped keys hidden; it reads positions of its own (a window or a bias "
            "sized by its input) or an argument no rule gathers: declare it in token_kwargs, or do not wrap it"
        )
    return difference


def is_causal(model: nn.Module, layers: dict[str, RandomLTD], inputs: Any) -> bool:
    """Whether the unwrapped model's first outputs ignore the last token (eval mode, no dropping)."""
    training = {path: layer.training for path, layer in layers.items()}
    for layer in layers.values():
        layer.training = False
    try:
        first = output_of(model, inputs)[:, :1]
        return torch.allclose(first, output_of(model, changed_last_token(inputs))[:, :1], rtol=1e-5, atol=1e-6)
    finally:
        for path, layer in layers.items():
            layer.training = training[path]


def check_causal(model: nn.Module, inputs: Any, seq_len: int) -> None:
    """With the same plan, changing the last token changes no earlier output."""
    before = output_of(model, inputs)[:, : seq_len - 1]
    after = output_of(model, changed_last_token(inputs))[:, : seq_len - 1]
    if not torch.allclose(before, after, rtol=1e-5, atol=1e-6):
        difference = float((before - after).detach().abs().max())
        raise VerificationError(
            f"the model is causal, but dropping lets earlier outputs see the last token ({difference:.3g})"
        )


def changed_last_token(inputs: Any) -> Any:
    """``inputs`` with the token input's last position changed (ids: another id of the input)."""

    def change(tensor: torch.Tensor) -> torch.Tensor:
        changed = tensor.clone()
        if tensor.is_floating_point():
            changed[:, -1] += 1.0
        else:
            changed[:, -1] = torch.where(
                tensor[:, -1] == tensor[:, 0], (tensor[:, 0] + 1) % (tensor.max() + 1), tensor[:, 0]
            )
        return changed

    if isinstance(inputs, torch.Tensor):
        return change(inputs)
    if isinstance(inputs, Mapping):
        name = next((k for k in ("input_ids", "inputs_embeds", "idx", "x") if k in inputs), next(iter(inputs)))
        return {**inputs, name: change(inputs[name])}
    return (change(inputs[0]), *inputs[1:])


def output_of(model: nn.Module, inputs: Any) -> torch.Tensor:
    """The model's main output; a Hugging Face model fills no KV cache (each forward is a new sequence)."""
    if isinstance(inputs, Mapping):
        no_cache = {"use_cache": False} if hasattr(getattr(model, "config", None), "use_cache") else {}
        return first_tensor(model(**{**no_cache, **inputs}))
    if isinstance(inputs, torch.Tensor):
        return first_tensor(model(inputs))
    return first_tensor(model(*inputs))


def first_tensor(out: Any) -> torch.Tensor:
    """The main output: the tensor itself, a model output's first field, a tuple's first item."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):  # a model output: its logits or last hidden states, not a scalar loss
        main = [out.get(k) for k in ("logits", "last_hidden_state") if out.get(k) is not None]
        return first_tensor(main[0] if main else next(v for v in out.values() if getattr(v, "ndim", 0) >= 2))
    return first_tensor(out[0])


def unwrapped_output(model: nn.Module, layers: dict[str, RandomLTD], inputs: Any) -> torch.Tensor:
    """The model's output with every wrapper replaced by its block."""
    for path, layer in layers.items():
        model.set_submodule(path, layer.block)
    try:
        return output_of(model, inputs)
    finally:
        for path, layer in layers.items():
            model.set_submodule(path, layer)


@contextmanager
def kept_state(model: nn.Module):
    """Training flags and every router's kept length and counter, as they were."""
    modes = {m: m.training for m in model.modules()}
    routers = [(r, r.keep, r.counter.clone(), r.fresh) for r in find_routers(model)]
    try:
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode
        for router, keep, counter, fresh in routers:
            router.keep = keep
            router.counter.copy_(counter)
            router.fresh = fresh


def example_inputs(model: nn.Module) -> Any:
    """A small input from the model's config (``apply_random_ltd(..., verify=True)``): two rows
    of 32 token ids (or fewer, within its position limit), or two images."""
    config = getattr(model, "config", None)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    vocab = getattr(config, "vocab_size", None)
    if isinstance(vocab, int):
        limits = [getattr(config, k, None) for k in ("max_position_embeddings", "n_positions", "block_size")]
        seq_len = min([32, *(n for n in limits if isinstance(n, int) and n > 1)])
        ids = torch.randint(0, vocab, (2, seq_len), generator=generator).to(device)
        return {"input_ids": ids} if hasattr(config, "to_dict") else ids  # Hugging Face's, else LitGPT's call
    size, channels = getattr(config, "image_size", None), getattr(config, "num_channels", 3)
    if isinstance(size, int):
        return {"pixel_values": torch.randn(2, channels, size, size, generator=generator).to(device)}
    raise VerificationError(
        f"verify=True: no example input can be made for {type(model).__name__}; "
        "call verify_random_ltd(model, example_inputs) with one"
    )
