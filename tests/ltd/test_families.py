"""``apply_random_ltd(model, layers, keep=...)`` alone on every Hugging Face family, against the
unwrapped model: eval equality, causality, rotary positions, padding, training, checkpointing."""

import copy
import functools

import pytest
import torch
from torch import nn

from lightning_ltd import RandomLTD, apply_random_ltd, next_plan, register_block_rules
from lightning_ltd.ltd import rules_for
from lightning_ltd.ltd.families import BLOCK_RULES
from tests.helpers.hf_models import BY_NAME, FAMILIES, decoder_layers, outputs
from tests.helpers.recompute import Recomputed

KEEP = 16
NAMES = [family.name for family in FAMILIES]
CAUSAL = [family.name for family in FAMILIES if family.kind == "causal"]
ROTARY = [family.name for family in FAMILIES if family.rotary]


def wrapped(name: str, dropout: float = 0.0, **build):
    family = BY_NAME[name]
    plain = family.build(dropout, **build)
    model = apply_random_ltd(copy.deepcopy(plain), layers=[1, 2], keep=KEEP if family.kind != "image" else 8)
    return family, plain, model


def record_widths(model: nn.Module) -> list[int]:
    """Token counts that the wrapped blocks' own forwards receive."""
    seen: list[int] = []
    for layer in decoder_layers(model):
        if isinstance(layer, RandomLTD):
            layer.block.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    return seen


@pytest.mark.parametrize("name", NAMES)
def test_one_call_trains_on_the_kept_tokens_and_eval_is_the_unwrapped_model(name):
    family, plain, model = wrapped(name)
    widths = record_widths(model)
    inputs = family.inputs(padded=family.kind != "image")
    model.train()
    out = outputs(model, inputs)
    assert widths == [model.ltd_router.keep] * 2  # layers 1 and 2 ran on the kept tokens only
    assert torch.isfinite(out).all()
    model.eval()
    plain.eval()
    assert torch.equal(outputs(model, inputs), outputs(plain, inputs))  # eval: exactly the plain model
    assert set(model.state_dict()) == set(plain.state_dict())  # checkpoints load either way


@pytest.mark.parametrize("name", CAUSAL)
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_causal_with_dropping_by_jacobian(name, attention):
    family, _, model = wrapped(name, attn_implementation=attention)
    model.train()
    embed = model.get_input_embeddings()
    ids = family.inputs(batch=2)["input_ids"]
    x = embed(ids).detach().requires_grad_()
    logits = model(inputs_embeds=x).logits
    for position in (5, 20):
        (grad,) = torch.autograd.grad(logits[:, position].sum(), x, retain_graph=True)
        assert grad[:, position + 1 :].abs().max() == 0.0  # nothing from later tokens
        assert grad[:, :position].abs().sum(-1).gt(0).all()  # every earlier token reaches it


@pytest.mark.parametrize("name", ROTARY)
def test_kept_tokens_are_rotated_by_their_original_positions(name):
    """The wrapped layer against its block run on the gathered subset, with the model's own
    rotary table at the kept tokens' original positions (and not at 0..k-1)."""
    family, _, model = wrapped(name)
    model.train()
    layer = decoder_layers(model)[1]
    with torch.no_grad():  # sharp attention, so that positions matter well above rounding
        layer.block.self_attn.q_proj.weight.mul_(40)
        layer.block.self_attn.k_proj.weight.mul_(40)
    seen = {}
    layer.register_forward_hook(lambda m, args, kwargs, out: seen.update(x=args[0], out=out), with_kwargs=True)
    outputs(model, family.inputs(batch=2))
    x, out = seen["x"], seen["out"]
    kept = model.ltd_router.layer_plan(0, 2, family.seq_len())[0]  # layer 1 is row 0 of the plan
    rotary = model.model.rotary_emb

    def block_at(positions):
        subset = x.gather(1, kept.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        return layer.block(subset, position_embeddings=rotary(subset, positions), position_ids=positions)

    kept_out = out.gather(1, kept.unsqueeze(-1).expand(-1, -1, out.shape[-1]))
    torch.testing.assert_close(kept_out, block_at(kept))
    renumbered = torch.arange(kept.shape[1]).expand_as(kept)  # DeepSpeed's 0..k-1
    assert (kept_out - block_at(renumbered)).abs().max() > 0.01
    dropped = torch.ones_like(x[..., 0], dtype=torch.bool).scatter(1, kept, False)
    assert torch.equal(out[dropped], x[dropped])  # dropped tokens pass unchanged


@pytest.mark.parametrize("name", [n for n in NAMES if BY_NAME[n].kind != "image"])
def test_padding_has_no_influence_on_real_tokens(name):
    family, _, model = wrapped(name)
    model.train()
    inputs = family.inputs(padded=True)
    mask = inputs["attention_mask"].bool()
    other = dict(inputs, input_ids=torch.where(mask, inputs["input_ids"], (inputs["input_ids"] + 7) % 64))
    first, second = outputs(model, inputs), outputs(model, other)  # the same plan: no step between
    assert torch.isfinite(first[mask]).all()
    torch.testing.assert_close(first[mask], second[mask], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(first[~mask], second[~mask])  # the padding itself did change


def loss_of(family, model, inputs):
    logits = outputs(model, inputs)
    if family.kind == "image":
        return nn.functional.cross_entropy(logits, torch.arange(logits.shape[0]) % 3)
    targets = inputs["input_ids"]
    if family.kind == "causal":
        logits, targets = logits[:, :-1], targets[:, 1:]
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


@pytest.mark.slow  # about 1.8 s
@pytest.mark.parametrize("name", NAMES)
def test_twenty_adamw_steps_with_dropout_lower_the_loss(name):
    family, _, model = wrapped(name, dropout=0.1)
    model.train()
    inputs = family.inputs(batch=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = loss_of(family, model, inputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        next_plan(model)  # the one call of a loop of one's own
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def gradients(model, family, inputs, seed=0):
    torch.manual_seed(seed)  # dropout draws the same masks in both runs
    model.zero_grad()
    loss_of(family, model, inputs).backward()
    named = model.named_parameters()
    return {name.replace(".inner.", "."): p.grad.clone() for name, p in named if p.grad is not None}


@pytest.mark.parametrize("name", ["llama-gqa", "gpt2", "bert"])
@pytest.mark.parametrize("how", ["around-reentrant", "around", "hf-reentrant", "hf"])  # hf: transformers' switch
def test_gradients_with_and_without_activation_checkpointing_are_equal(name, how):
    family, _, model = wrapped(name, dropout=0.1)
    model.train()
    inputs = family.inputs(padded=True)
    plain = gradients(model, family, inputs)
    reentrant = how.endswith("reentrant")
    if how.startswith("hf"):  # what transformers' own switch does: checkpoints inside the wrapper
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": reentrant})
    else:
        layers = decoder_layers(model)
        for i in (1, 2):
            layers[i] = Recomputed(layers[i], reentrant)
    recomputed = gradients(model, family, inputs)
    assert recomputed.keys() == plain.keys()
    for key, grad in plain.items():
        torch.testing.assert_close(recomputed[key], grad, msg=key)


def test_a_positional_integer_tensor_reaches_the_block_not_the_kept_indices():
    class Offset(nn.Module):
        def forward(self, x, offsets):  # offsets [B, 4]: per row, not per token
            return x + offsets.sum(-1)[:, None, None].float()

    layer = RandomLTD(Offset(), keep=4).train()
    offsets = torch.ones(2, 4, dtype=torch.long)  # [B, k] integers, the second positional argument
    out = layer(torch.zeros(2, 10, 3), offsets)
    kept = layer.router.layer_plan(layer.plan_row, 2, 10)[0]
    assert torch.equal(out.sum(-1).gt(0), torch.zeros(2, 10, dtype=torch.bool).scatter(1, kept, True))
    assert out.max() == 4.0  # the block received it
    with pytest.raises(ValueError, match=r"argument 'offsets' of Offset has shape \(2, 10\)"):
        layer(torch.zeros(2, 10, 3), torch.ones(2, 10, dtype=torch.long))  # [B, T]: undeclared, refused


def test_axis_zero_tables_are_gathered_or_refused_by_name():
    class SlicesItsTable(nn.Module):
        """A block that slices a [T_max, hs] table to its own length: wrong on a kept subset."""

        def forward(self, x, table):
            return x + table[: x.shape[1]]

    layer = RandomLTD(SlicesItsTable(), keep=4).train()
    table = torch.arange(10.0).unsqueeze(-1).expand(10, 3)
    with pytest.raises(ValueError, match=r"argument 'table' of SlicesItsTable has shape \(10, 3\)"):
        layer(torch.zeros(2, 10, 3), table)
    with pytest.raises(ValueError, match=r"argument 'table\[1\]'"):
        layer(torch.zeros(2, 10, 3), (torch.zeros(3), torch.zeros(10)))  # inside tuples too
    gathering = RandomLTD(SlicesItsTable(), keep=4, token_kwargs={"table": functools.partial(_rows, 0)}).train()
    out = gathering(torch.zeros(2, 10, 3), table)
    kept = gathering.router.layer_plan(gathering.plan_row, 2, 10)[0]
    expected = torch.zeros(2, 10, 3).scatter(
        1, kept.unsqueeze(-1).expand(-1, -1, 3), kept.unsqueeze(-1).float().expand(-1, -1, 3)
    )
    assert torch.equal(out, expected)  # each kept token got its own row of the table


def _rows(axis, table, indices):
    return table[indices]


def test_rules_follow_the_class_hierarchy_and_can_be_extended():
    class Base(nn.Module):
        def forward(self, x, lengths):
            return x

    class Derived(Base):
        pass

    assert "lengths" not in rules_for(Derived()).token_kwargs
    register_block_rules(Base, static_kwargs=["lengths"])
    try:
        assert "lengths" in rules_for(Derived()).static_kwargs  # a base class's rules apply to subclasses
        layer = RandomLTD(Derived(), keep=2).train()
        assert layer(torch.zeros(1, 5, 2), torch.ones(5)).shape == (1, 5, 2)  # passed through as declared
    finally:
        BLOCK_RULES.pop(f"{Base.__module__}.{Base.__qualname__}")


@pytest.mark.slow  # dynamo on CPU: ~5 s a family
@pytest.mark.parametrize("name", NAMES)
def test_fullgraph_compile_of_the_wrapped_model_agrees_with_eager(name):
    family, plain, model = wrapped(name)
    inputs = family.inputs(padded=family.kind != "image")
    try:
        torch.compile(copy.deepcopy(plain).train(), fullgraph=True, backend="aot_eager")(**inputs)
    except Exception as err:  # only where the unwrapped model compiles
        pytest.skip(f"the unwrapped {name} does not compile with fullgraph=True: {type(err).__name__}")
    model.train()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(outputs(compiled, inputs), outputs(model, inputs))
    next_plan(model)
    torch.testing.assert_close(outputs(compiled, inputs), outputs(model, inputs))  # a new plan, same graph


@pytest.mark.parametrize("name", ["llama-gqa", "bert"])
def test_bf16_weights_train_and_eval_equals_the_unwrapped_model(name):
    family, plain, model = wrapped(name)
    plain, model = plain.bfloat16(), model.bfloat16()
    inputs = family.inputs(padded=True)
    model.train()
    loss = loss_of(family, model, inputs)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    plain.eval()
    assert torch.equal(outputs(model, inputs), outputs(plain, inputs))


def test_bloom_blocks_gather_their_alibi_bias_and_keep_the_kept_tokens_exact():
    """A BLOOM block on the kept tokens equals the unwrapped block on the whole row with the
    dropped keys masked, at the kept positions: the ALiBi bias keeps each key's own position."""
    import transformers

    torch.manual_seed(0)
    config = transformers.BloomConfig(vocab_size=64, hidden_size=32, n_layer=4, n_head=4)
    config._attn_implementation = "eager"  # BLOOM has no sdpa path in transformers 5
    model = apply_random_ltd(transformers.BloomForCausalLM(config), layers=[1], keep=10).train()
    seen = {}
    layer = model.transformer.h[1]
    layer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(args=args, kwargs=kwargs), with_kwargs=True
    )
    layer.register_forward_hook(lambda module, args, kwargs, out: seen.update(out=out), with_kwargs=True)
    model(input_ids=torch.randint(0, 64, (2, 24)))
    kept = model.ltd_router.layer_plan(0, 2, 24)[0]
    dropped = torch.ones(2, 24, dtype=torch.bool).scatter(1, kept, False)
    kwargs = {k: v for k, v in seen["kwargs"].items() if k != "layer_past"}
    mask = kwargs["attention_mask"]
    kwargs["attention_mask"] = mask.masked_fill(dropped[:, None, None, :], torch.finfo(mask.dtype).min)
    whole = layer.block(seen["args"][0], **kwargs)
    at_kept = kept.unsqueeze(-1).expand(-1, -1, 32)
    ours = seen["out"][0] if isinstance(seen["out"], tuple) else seen["out"]
    whole = whole[0] if isinstance(whole, tuple) else whole
    torch.testing.assert_close(ours.gather(1, at_kept), whole.gather(1, at_kept), atol=1e-6, rtol=1e-6)
    renumbered = seen["kwargs"]["alibi"][..., :10]  # DeepSpeed's slice: the positions 0..k-1
    assert not torch.allclose(
        renumbered.view(2, 4, 1, 10),
        seen["kwargs"]["alibi"].view(2, 4, 1, 24).gather(-1, kept[:, None, None, :].expand(2, 4, 1, 10)),
    )
