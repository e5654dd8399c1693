import pytest
import torch
from torch import nn

from lightning_ltd import RandomLTD, TokenRouter, next_plan
from lightning_ltd.ltd import gather_mask, gather_tokens
from lightning_ltd.models import Block

B, T, C = 3, 12, 16


def make_layer(keep=5, seed=0, **kwargs):
    torch.manual_seed(0)
    block = Block(C, 2, causal=kwargs.pop("causal", False), rotary_base=kwargs.pop("rotary_base", None))
    batched = {"attn_mask": gather_mask}  # Block's masks are batched ([B, T] is key padding)
    return RandomLTD(block, keep, seed=seed, token_kwargs=batched, **kwargs)


def first_draw(layer, batch, seq):
    """The indices a fresh standalone layer keeps on its first training call: its own row of
    its seed's first plan."""
    router = TokenRouter(1, keep=layer.keep, seed=layer.router.seed)
    return router.layer_plan(layer.plan_row, batch, seq)[0]


@pytest.mark.parametrize("setting", ["eval", "none", "full", "over"])
def test_equals_plain_block_when_not_dropping(setting):
    layer = make_layer()
    x = torch.randn(B, T, C)
    if setting == "eval":
        layer.eval()
    else:
        layer.keep = {"none": None, "full": T, "over": T + 5}[setting]
    assert torch.equal(layer(x), layer.block(x))


def test_dropped_tokens_unchanged_kept_tokens_equal_block_on_subset():
    layer = make_layer(keep=5, seed=11)
    x = torch.randn(B, T, C)
    indices = first_draw(layer, B, T)
    y = layer(x)
    kept = torch.zeros(B, T, dtype=torch.bool).scatter(1, indices, True)
    assert torch.equal(y[~kept], x[~kept])
    expected = layer.block(gather_tokens(x, indices))
    torch.testing.assert_close(gather_tokens(y, indices), expected, rtol=0, atol=0)


def test_gradients_identity_for_dropped_positions():
    layer = make_layer(keep=4, seed=2)
    x = torch.randn(B, T, C, requires_grad=True)
    indices = first_draw(layer, B, T)
    upstream = torch.randn(B, T, C)
    (layer(x) * upstream).sum().backward()
    kept = torch.zeros(B, T, dtype=torch.bool).scatter(1, indices, True)
    assert torch.equal(x.grad[~kept], upstream[~kept])
    # kept positions: exactly the gradient of the block on the subset
    sub = gather_tokens(x.detach(), indices).requires_grad_(True)
    (layer.block(sub) * gather_tokens(upstream, indices)).sum().backward()
    torch.testing.assert_close(gather_tokens(x.grad, indices), sub.grad)


def test_tuple_outputs_and_rotary_positions_are_original():
    seen = {}

    class Probe(nn.Module):
        def forward(self, x, position_ids=None):
            seen["position_ids"] = position_ids
            return x * 2, "extra"

    layer = RandomLTD(Probe(), 4, seed=3)
    positions = torch.arange(T).expand(B, -1) + 100
    _, extra = layer(torch.randn(B, T, C), position_ids=positions)
    indices = first_draw(layer, B, T)
    assert extra == "extra"
    assert torch.equal(seen["position_ids"], indices + 100)  # original positions, not 0..k-1


def test_rotary_block_sees_original_positions():
    layer = make_layer(keep=6, seed=4, causal=True, rotary_base=10000.0)
    x = torch.randn(B, T, C)
    positions = torch.arange(T).expand(B, -1)
    indices = first_draw(layer, B, T)
    y = layer(x, position_ids=positions)
    expected = layer.block(gather_tokens(x, indices), position_ids=indices)
    torch.testing.assert_close(gather_tokens(y, indices), expected)
    compacted = layer.block(gather_tokens(x, indices), position_ids=torch.arange(6).expand(B, -1))
    assert not torch.allclose(expected, compacted)  # DeepSpeed's compaction would differ


@pytest.mark.parametrize("full_mask", [False, True])
def test_padded_keys_stay_masked(full_mask):
    layer = make_layer(keep=8, seed=5)
    x = torch.randn(B, T, C)
    valid = torch.ones(B, T, dtype=torch.bool)
    valid[:, 9:] = False  # last three tokens are padding
    mask = valid[:, None, None, :].expand(B, 1, T, T) if full_mask else valid
    indices = first_draw(layer, B, T)
    y = layer(x, attn_mask=mask)
    kept_valid = valid.gather(1, indices)
    expected = layer.block(gather_tokens(x, indices), attn_mask=kept_valid)
    torch.testing.assert_close(gather_tokens(y, indices), expected)
    # and padding content does not leak into real tokens
    x2 = x.clone()
    x2[:, 9:] = torch.randn(B, 3, C) * 100
    layer.router.set_counter(0)
    y2 = layer(x2, attn_mask=mask)
    torch.testing.assert_close(y2[:, :9], y[:, :9])


def test_undeclared_per_token_tensor_is_an_error_and_declared_is_gathered():
    class Bias(nn.Module):
        def forward(self, x, bias):
            return x + bias

    x, bias = torch.randn(B, T, C), torch.randn(B, T, C)
    with pytest.raises(ValueError, match="'bias'"):
        RandomLTD(Bias(), 4)(x, bias=bias)
    layer = RandomLTD(Bias(), 4, seed=0, token_kwargs={"bias": 1})
    y = layer(x, bias=bias)
    indices = first_draw(layer, B, T)
    torch.testing.assert_close(gather_tokens(y, indices), gather_tokens(x + bias, indices))
    static = RandomLTD(Bias(), 4, static_kwargs=["bias"])
    assert static(x, bias=torch.zeros(1, 1, C)).shape == x.shape


def test_state_dict_keeps_block_names_both_ways():
    block = Block(C, 2)
    layer = RandomLTD(block)
    assert set(layer.state_dict()) == set(block.state_dict())
    fresh = RandomLTD(Block(C, 2))
    fresh.load_state_dict(block.state_dict())
    for name, value in block.state_dict().items():
        assert torch.equal(fresh.block.state_dict()[name], value)
    fresh.load_state_dict({f"block.{k}": v for k, v in block.state_dict().items()})  # prefixed accepted too
    with pytest.raises(RuntimeError, match="Unexpected"):
        fresh.load_state_dict({**block.state_dict(), "nonsense": torch.zeros(1)})


@pytest.mark.parametrize("keep", [0, -3, 2.5, True])
def test_bad_keep_rejected(keep):
    with pytest.raises(ValueError, match="keep"):
        RandomLTD(nn.Identity(), keep)


def test_given_indices_are_used_and_shared_router_holds_one_keep():
    router = TokenRouter(num_layers=2, keep=5, seed=1)
    first, second = RandomLTD(Block(C, 2), router=router), RandomLTD(Block(C, 2), router=router)
    second.keep = 7
    assert first.keep == router.keep == 7  # the kept length lives in the router only
    x = torch.randn(B, T, C)
    indices = torch.tensor([[0, 3, 4], [1, 2, 11], [5, 6, 7]])
    y = first(x, kept_indices=indices)
    torch.testing.assert_close(gather_tokens(y, indices), first.block(gather_tokens(x, indices)))
    before = router.counter.clone()
    first(x, kept_indices=indices)
    assert torch.equal(router.counter, before)  # given indices draw nothing


def test_standalone_layer_draws_a_new_plan_per_forward_unless_a_driver_set_it():
    layer = RandomLTD(nn.Identity(), 4, seed=0)
    seen = []
    layer.block.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    x = torch.arange(T, dtype=torch.float).expand(B, T).unsqueeze(-1)
    layer(x)
    layer(x)  # no call between: a plan of its own anyway
    layer.router.set_counter(0)
    layer(x)  # the first plan again, as a driver (or a resume) points it
    next_plan(layer)
    layer(x)
    layer.eval()
    layer(x)  # eval: no plan drawn, nothing moves
    layer.train()
    layer(x)
    assert not torch.equal(seen[0], seen[1]) and torch.equal(seen[0], seen[2])
    assert not torch.equal(seen[2], seen[3]) and len(seen) == 6 and not torch.equal(seen[3], seen[5])
