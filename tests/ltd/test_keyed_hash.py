"""The keyed hash keeps the values it had when it lived in routing.py and loading.py: a resumed
run (or a checkpoint of an earlier version) draws the same plans, dropout and data order."""

import torch

from lightning_ltd.ltd import plan_counter, step_seed, stream_id
from lightning_ltd.ltd.keyed_hash import keyed_seed, mix32, permutation_keys, permuted_index, stream_key


def test_values_are_pinned():
    assert (stream_key(1234, 0), stream_key(1234, 1)) == (2718220490, 3802467056)
    assert keyed_seed(1234, 0, 5 << 16 | 2) == step_seed(1234, 0, 5, 2) == 1251528533945478632
    assert permutation_keys(7, 3) == (449547663, 2442315423, 3068842923, 3101483489)
    assert [permuted_index(i, 10, permutation_keys(7, 3)) for i in range(10)] == [9, 4, 5, 6, 8, 1, 2, 0, 3, 7]
    assert stream_id(1234, 1) == stream_key(1234, 1) and plan_counter(5, 2) == 5 << 16 | 2


def test_tensor_and_int_agree_and_permutations_are_permutations():
    values = torch.arange(0, 2**32, 2**20 + 7, dtype=torch.int64)
    assert mix32(values).tolist() == [mix32(int(v)) for v in values]
    for size in (1, 2, 7, 1000, 4097):
        keys = permutation_keys(3, 1)
        assert sorted(permuted_index(i, size, keys) for i in range(size)) == list(range(size))


def test_seeds_fit_manual_seed_and_differ_per_coordinate():
    seeds = {keyed_seed(s, stream, c) for s in (0, 2**40) for stream in (0, 1) for c in (0, 1, 2**40)}
    assert len(seeds) == 12 and all(0 <= seed < 2**63 for seed in seeds)
    torch.manual_seed(max(seeds))
