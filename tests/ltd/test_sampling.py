import math

import pytest
import torch

from lightning_ltd.ltd import TokenSampler, sample_kept_indices


def test_indices_sorted_unique_in_range():
    g = torch.Generator().manual_seed(0)
    idx = sample_kept_indices(64, 50, 17, generator=g)
    assert idx.shape == (64, 17) and idx.dtype == torch.long
    assert (idx[:, 1:] > idx[:, :-1]).all()  # strictly increasing: sorted and unique
    assert idx.min() >= 0 and idx.max() < 50


def test_each_position_kept_with_frequency_keep_over_t():
    seq, keep, rows = 40, 10, 20000
    idx = sample_kept_indices(rows, seq, keep, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(idx.flatten(), minlength=seq).double()
    p = keep / seq
    expected, std = rows * p, math.sqrt(rows * p * (1 - p))
    assert ((counts - expected).abs() < 5 * std).all(), counts
    # pairs are uniform too (without-replacement inclusion probability k(k-1)/(T(T-1)))
    both = ((idx == 0).any(1) & (idx == seq - 1).any(1)).double().sum()
    p_pair = keep * (keep - 1) / (seq * (seq - 1))
    assert abs(both - rows * p_pair) < 5 * math.sqrt(rows * p_pair * (1 - p_pair))


def test_rows_and_successive_draws_differ():
    sampler = TokenSampler(seed=3)
    first = sampler.sample(8, 64, 16, "cpu")
    second = sampler.sample(8, 64, 16, "cpu")  # the next layer's draw
    assert len({tuple(r) for r in first.tolist()}) == 8
    assert not torch.equal(first, second)


def test_same_seed_same_indices_and_global_rng_untouched():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    a = TokenSampler(seed=5).sample(4, 32, 8, "cpu")
    b = TokenSampler(seed=5).sample(4, 32, 8, "cpu")
    assert torch.equal(a, b)
    assert torch.equal(before, torch.random.get_rng_state())
    assert not torch.equal(a, TokenSampler(seed=6).sample(4, 32, 8, "cpu"))


def test_state_round_trip_continues_the_stream():
    sampler = TokenSampler(seed=7)
    sampler.sample(4, 32, 8, "cpu")
    state = sampler.state_dict()
    expected = sampler.sample(4, 32, 8, "cpu")
    restored = TokenSampler(seed=0)
    restored.load_state_dict(state)
    assert torch.equal(restored.sample(4, 32, 8, "cpu"), expected)
    assert restored.state_dict()["seed"] == 7


def test_protected_prefix_always_kept():
    idx = sample_kept_indices(100, 20, 5, generator=torch.Generator().manual_seed(0), num_protected=2)
    assert (idx[:, :2] == torch.tensor([0, 1])).all()
    assert (idx[:, 1:] > idx[:, :-1]).all()


@pytest.mark.parametrize("keep", [0, 21])
def test_bad_keep_rejected(keep):
    with pytest.raises(ValueError, match="keep"):
        sample_kept_indices(2, 20, keep)
