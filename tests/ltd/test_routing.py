import itertools
import math

import pytest
import torch

from lightning_ltd.ltd import TokenRouter, draw_plan, plan_counter, step_seed, stream_id


def plan_at(step, micro=0, seed=0, rank=0, n_layers=3, batch=4, seq=32, keep=8, protected=0):
    position = torch.tensor(plan_counter(step, micro))
    return draw_plan(position, stream_id(seed, rank), n_layers, batch, seq, keep, protected)


def test_plan_is_sorted_unique_in_range_and_one_slice_per_layer():
    plan = plan_at(5, n_layers=4, batch=64, seq=50, keep=17)
    assert plan.shape == (4, 64, 17) and plan.dtype == torch.long
    assert (plan[..., 1:] > plan[..., :-1]).all()  # strictly increasing: sorted and unique
    assert plan.min() >= 0 and plan.max() < 50


def test_plan_is_a_pure_function_of_seed_rank_step_micro_batch():
    assert torch.equal(plan_at(7, 1, seed=3, rank=2), plan_at(7, 1, seed=3, rank=2))
    base = plan_at(7, 1, seed=3, rank=2)
    for other in (plan_at(8, 1, seed=3, rank=2), plan_at(7, 0, seed=3, rank=2), plan_at(7, 1, seed=4, rank=2)):
        assert not torch.equal(base, other)
    assert not torch.equal(base, plan_at(7, 1, seed=3, rank=1))
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    plan_at(1)
    assert torch.equal(before, torch.random.get_rng_state())  # the global RNG is not touched


def test_each_position_and_pair_kept_with_the_uniform_frequency():
    seq, keep, rows = 40, 10, 20000
    indices = plan_at(3, n_layers=1, batch=rows, seq=seq, keep=keep)[0]
    counts = torch.bincount(indices.flatten(), minlength=seq).double()
    p = keep / seq
    expected, std = rows * p, math.sqrt(rows * p * (1 - p))
    assert ((counts - expected).abs() < 5 * std).all(), counts
    both = ((indices == 0).any(1) & (indices == seq - 1).any(1)).double().sum()  # a pair: k(k-1)/(T(T-1))
    p_pair = keep * (keep - 1) / (seq * (seq - 1))
    assert abs(both - rows * p_pair) < 5 * math.sqrt(rows * p_pair * (1 - p_pair))


def membership(plan: torch.Tensor, seq: int) -> torch.Tensor:
    """``[..., keep]`` indices -> ``[..., seq]`` 0/1 membership."""
    return torch.zeros(*plan.shape[:-1], seq).scatter(-1, plan, 1.0)


@pytest.mark.parametrize("axis", ["layers", "rows", "steps", "micro-batches", "ranks"])
def test_draws_are_independent_across_layers_rows_steps_and_ranks(axis):
    """Two independent uniform k-subsets of T share k*k/T tokens on average (hypergeometric);
    correlated draws (the same subset, a shift) would share far more or far fewer."""
    seq, keep, pairs = 64, 16, 3000
    if axis == "layers":
        plan = plan_at(2, n_layers=2, batch=pairs, seq=seq, keep=keep)
        a, b = plan[0], plan[1]
    elif axis == "rows":
        plan = plan_at(2, n_layers=1, batch=2 * pairs, seq=seq, keep=keep)[0]
        a, b = plan[0::2], plan[1::2]
    else:
        other = {"steps": {"step": 3}, "micro-batches": {"micro": 1}, "ranks": {"rank": 1}}[axis]
        a = plan_at(2, n_layers=1, batch=pairs, seq=seq, keep=keep)[0]
        b = plan_at(**{"step": 2, **other}, n_layers=1, batch=pairs, seq=seq, keep=keep)[0]
    overlap = (membership(a, seq) * membership(b, seq)).sum(-1)
    mean = keep * keep / seq
    var = keep * (keep / seq) * (1 - keep / seq) * (seq - keep) / (seq - 1)
    assert abs(overlap.mean().item() - mean) < 5 * math.sqrt(var / pairs), overlap.mean()
    # and positions are not paired up: token i in a says nothing about token i in b
    joint = (membership(a, seq) * membership(b, seq)).mean(0)
    p = keep / seq
    assert (joint - p * p).abs().max() < 5 * math.sqrt(p * p * (1 - p * p) / pairs) + 0.01


def test_successive_steps_are_not_permutations_of_each_other():
    plans = [plan_at(step, n_layers=1, batch=1, seq=1024, keep=512)[0, 0] for step in range(50)]
    distinct = {tuple(p.tolist()) for p in plans}
    assert len(distinct) == 50


def test_protected_prefix_always_kept():
    plan = plan_at(1, n_layers=2, batch=100, seq=20, keep=5, protected=2)
    assert (plan[..., :2] == torch.tensor([0, 1])).all()
    assert (plan[..., 1:] > plan[..., :-1]).all()
    free = plan[..., 2:].flatten()
    assert set(free.tolist()) == set(range(2, 20))  # every free token can be drawn


@pytest.mark.parametrize("keep", [0, 21])
def test_bad_keep_rejected(keep):
    with pytest.raises(ValueError, match="keep"):
        draw_plan(torch.tensor(0), 0, 1, 2, 20, keep)


def test_drawing_never_moves_the_router_advance_does_and_set_counter_rewinds():
    router = TokenRouter(num_layers=2, keep=4, seed=9)
    first = router.plan(3, 12)
    assert torch.equal(router.plan(3, 12), first)  # a forward only reads the plan (recomputation keeps it)
    router.advance()
    second = router.plan(3, 12)
    assert not torch.equal(first, second)  # the driver's call between steps gives a fresh plan
    router.set_counter(0)
    assert torch.equal(router.plan(3, 12), first)
    router.set_counter(11, 2)
    expected = draw_plan(torch.tensor(plan_counter(11, 2)), stream_id(9, 0), 2, 3, 12, 4)
    assert torch.equal(router.plan(3, 12), expected)
    router.rank = 1
    router.set_counter(11, 2)
    assert not torch.equal(router.plan(3, 12), expected)


def test_router_keeps_everything_when_keep_reaches_the_width():
    router = TokenRouter(keep=None)
    assert router.plan(2, 8) is None
    router.keep = 8
    assert router.plan(2, 8) is None and router.plan(2, 9).shape == (1, 2, 8)
    with pytest.raises(ValueError, match="keep"):
        router.keep = 0


def test_step_seed_differs_per_coordinate_and_fits_manual_seed():
    seeds = {step_seed(s, r, t, m) for s in (0, 1) for r in (0, 1) for t in (0, 1, 2**20) for m in (0, 1)}
    assert len(seeds) == 24 and all(0 <= s < 2**63 for s in seeds)
    torch.manual_seed(step_seed(0, 0, 5))


def test_plan_equals_a_plain_python_reference():
    """The tensor hash, computed again one element at a time with Python integers."""
    from lightning_ltd.ltd.routing import mix32

    step, seed, rank, n_layers, batch, seq, keep = 12, 5, 1, 2, 3, 10, 4
    position = plan_counter(step)
    key = mix32(mix32((position & 0xFFFFFFFF) ^ stream_id(seed, rank)) ^ (position >> 32))
    second_key = mix32(key ^ 0x27D4EB2F)
    expected = []
    for layer in range(n_layers):
        rows = []
        for row in range(batch):
            counters = [(layer * batch + row) * seq + token for token in range(seq)]
            scores = [mix32(mix32(c ^ key) ^ second_key) for c in counters]
            rows.append(sorted(sorted(range(seq), key=lambda t: scores[t], reverse=True)[:keep]))
        expected.append(rows)
    assert plan_at(step, seed=seed, rank=rank, n_layers=n_layers, batch=batch, seq=seq, keep=keep).tolist() == expected


class Blocks(torch.nn.Module):
    """A model of one's own: four blocks that record the tokens each training forward keeps."""

    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(4))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def kept_positions(model: torch.nn.Module, steps: int, seq_len: int = 64) -> list[torch.Tensor]:
    """The positions the first wrapped layer keeps at each of ``steps`` training forwards of a
    plain loop (no call between them): the router's plan after each forward, the one it drew."""
    from lightning_ltd.ltd import find_ltd_layers

    layer, seen = find_ltd_layers(model)[0], []
    x = torch.randn(2, seq_len, 4)
    for _ in range(steps):
        model(x)
        seen.append(layer.router.layer_plan(layer.plan_row, 2, seq_len)[0])
    return seen


def coverage_chi2(plans: list[torch.Tensor], seq_len: int) -> float:
    counts = torch.bincount(torch.cat([p.flatten() for p in plans]), minlength=seq_len).double()
    expected = counts.sum() / seq_len
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("how", ["apply_random_ltd", "a RandomLTD of its own"])
def test_a_plain_loop_draws_a_new_uniform_plan_every_training_forward(how):
    """400 forwards with no call between them: consecutive plans differ and every position is
    kept equally often (chi-squared over 63 degrees of freedom: 20,800 when the plan never moved;
    below 120 has probability above 0.99999 for uniform draws)."""
    from lightning_ltd.ltd import RandomLTD, apply_random_ltd

    if how == "apply_random_ltd":
        model = apply_random_ltd(Blocks(), layers=[1, 2], keep=16, seed=3).train()
    else:
        model = Blocks().train()
        model.blocks[1] = RandomLTD(model.blocks[1], keep=16, seed=3)
    plans = kept_positions(model, 400)
    assert sum(not torch.equal(a, b) for a, b in itertools.pairwise(plans)) == 399
    assert coverage_chi2(plans, 64) < 120
    assert all(p.shape == (2, 16) and bool((p.diff(dim=-1) > 0).all()) for p in plans)  # sorted, distinct


def test_a_plain_loop_resumes_its_plans_exactly_from_the_forward_count():
    from lightning_ltd.ltd import apply_random_ltd

    def model():
        return apply_random_ltd(Blocks(), layers=[1, 2], keep=16, seed=3).train()

    straight = kept_positions(model(), 10)
    resumed = model()
    resumed.ltd_router.set_counter(6)  # 6 forwards done before the restart
    assert all(torch.equal(a, b) for a, b in zip(kept_positions(resumed, 4), straight[6:], strict=True))


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_a_layer_of_its_own_recomputed_by_checkpointing_keeps_the_tokens_of_its_forward(use_reentrant):
    from torch.utils.checkpoint import checkpoint

    from lightning_ltd.ltd import RandomLTD

    torch.manual_seed(0)
    layer = RandomLTD(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU()), keep=5).train()
    x = torch.randn(3, 12, 8, requires_grad=True)

    def gradients(recompute: bool) -> list[torch.Tensor]:
        layer.zero_grad()
        x.grad = None
        for _ in range(3):  # some forwards first: the plan has moved on
            layer(x)
        out = checkpoint(layer, x, use_reentrant=use_reentrant) if recompute else layer(x)
        (out * torch.arange(8.0)).square().sum().backward()
        return [x.grad.clone(), *(p.grad.clone() for p in layer.parameters())]

    layer.router.set_counter(0)
    plain = gradients(recompute=False)
    layer.router.set_counter(0)
    recomputed = gradients(recompute=True)  # the recompute, in backward, must not draw a new plan
    for a, b in zip(plain, recomputed, strict=True):
        torch.testing.assert_close(a, b)
