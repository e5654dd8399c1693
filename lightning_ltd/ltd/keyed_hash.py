"""The keyed integer hash that every random choice of a run derives from: routing plans, step
seeds (dropout), masked-LM masks and the training data order.

Counter-based instead of a ``torch.Generator`` stream: a value is a pure function of its key and
counter, so nothing needs saving for an exact resume, data workers cannot change it, and CPU and
CUDA compute the same integers. Integers stay below 2**32 and multipliers below 2**31, so no
int64 product overflows.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
_MULTIPLIERS = (0x7FEB352D, 0x5BD1E995)  # odd and < 2**31: x * m < 2**63 for any x < 2**32
_GOLDEN = 0x9E3779B9


def mix32(x: torch.Tensor | int) -> torch.Tensor | int:
    """A 32-bit avalanche hash (lowbias32's shape) of int64 tensors or Python ints below 2**32."""
    for multiplier in _MULTIPLIERS:
        x = x ^ (x >> 16)
        x = (x * multiplier) & MASK32
    return x ^ (x >> 15)


def stream_key(seed: int, stream: int) -> int:
    """The 32-bit key of one stream of a seed (a data-parallel rank, an epoch): streams of one
    seed are independent."""
    return int(mix32(mix32(seed & MASK32) ^ mix32((seed >> 32) & MASK32 ^ _GOLDEN) ^ (stream & MASK32)))


def keyed_seed(seed: int, stream: int, counter: int) -> int:
    """A 63-bit seed (for ``torch.manual_seed`` or a ``Generator``) of (seed, stream, counter),
    with a counter below 2**64."""
    low = mix32(stream_key(seed, stream) ^ mix32(counter & MASK32) ^ 0x85EBCA6B)
    high = mix32(int(low) ^ mix32((counter >> 32) & MASK32) ^ 0xC2B2AE35)
    return (int(high) & 0x7FFFFFFF) << 32 | int(low)


def permutation_keys(seed: int, epoch: int) -> tuple[int, ...]:
    """The four round keys of ``permuted_index`` for the order of one epoch."""
    key = int(mix32(seed & MASK32) ^ mix32(epoch & MASK32 ^ _MULTIPLIERS[1]))
    return tuple(int(mix32(key ^ round_key * _GOLDEN & MASK32)) for round_key in range(4))


def permuted_index(position: int, size: int, round_keys: tuple[int, ...]) -> int:
    """The ``position``-th element of a pseudo-random permutation of ``range(size)``.

    A 4-round Feistel network on the smallest even power of two >= ``size``, walked until it
    lands inside the range (fewer than 4 steps on average), so an epoch of any length is
    shuffled in O(1) memory: a 300B-token corpus has ~1.5e8 blocks, whose ``randperm`` would
    take 1.2 GB per rank.
    """
    half_bits = max(1, ((size - 1).bit_length() + 1) // 2)
    half_mask = (1 << half_bits) - 1
    value = position
    while True:
        left, right = value >> half_bits, value & half_mask
        for round_key in round_keys:
            left, right = right, left ^ (int(mix32(right ^ round_key)) & half_mask)
        value = left << half_bits | right
        if value < size:
            return value
