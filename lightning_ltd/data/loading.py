"""A training DataLoader that resumes mid-epoch exactly, with no extra dependency.

Lightning saves and restores a train loader's position when the loader has ``state_dict`` /
``load_state_dict`` (otherwise a resumed run re-reads its epoch from the start). The order of
epoch ``e`` is a pure function of ``(seed, e)``, computed index by index in O(1) memory, so the
state is just (epoch, batches served).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from lightning_ltd.keyed_hash import permutation_keys, permuted_index


class ResumableSampler(Sampler[Any]):
    """Shuffled indices, reshuffled per epoch from ``(seed, epoch)``; can start part-way in.

    The order is a pseudo-random permutation computed index by index (``keyed_hash.permuted_index``), so
    memory stays flat whatever the dataset size. With ``num_replicas > 1`` rank ``r`` takes every
    ``num_replicas``-th position of the shared permutation (truncated to equal length), as
    ``DistributedSampler`` does. With ``with_epoch`` it yields ``(epoch, index)`` pairs, so a
    dataset can make per-sample randomness (MLM masks) a pure function of both.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        with_epoch: bool = False,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank={rank} must be in [0, num_replicas={num_replicas})")
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.with_epoch = with_epoch
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at every epoch start; a new epoch starts at its beginning."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.start = 0

    def __iter__(self) -> Iterator[Any]:
        start, self.start = self.start, 0  # a resume offset applies to one pass only
        epoch = self.epoch
        round_keys = permutation_keys(self.seed, epoch)
        for position in range(start, len(self)):
            shared = self.rank + position * self.num_replicas
            index = permuted_index(shared, self.size, round_keys) if self.shuffle else shared
            yield (epoch, index) if self.with_epoch else index

    def __len__(self) -> int:
        return self.size // self.num_replicas


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``ResumableSampler`` whose state is (epoch, batches served).

    Batches are counted as they leave the loader, i.e. as the training loop receives them
    (Lightning does not prefetch from loaders of known length), so the count is exact whatever
    the number of workers.
    """

    def __init__(self, dataset: Dataset[Any], batch_size: int, sampler: ResumableSampler, **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, **kwargs)
        self.batches_served = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        assert self.batch_size is not None
        self.batches_served = sampler.start // self.batch_size
        for batch in super().__iter__():
            self.batches_served += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Position in the data: (epoch, batches served) and the seed that orders it."""
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        return {"epoch": sampler.epoch, "batches_served": self.batches_served, "seed": sampler.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        if state.get("seed", sampler.seed) != sampler.seed:
            raise ValueError(f"checkpoint data order has seed {state['seed']}, this loader has {sampler.seed}")
        assert self.batch_size is not None
        sampler.epoch = int(state["epoch"])
        sampler.start = int(state["batches_served"]) * self.batch_size
        self.batches_served = int(state["batches_served"])


def resumable_train_loader(
    dataset: Dataset[Any], batch_size: int, seed: int, trainer: Any = None, with_epoch: bool = False, **kwargs: Any
) -> ResumableDataLoader:
    """The training loader of our DataModules: shuffled per epoch, sharded over the trainer's
    data-parallel ranks (so run with ``use_distributed_sampler=False``), resumable mid-epoch;
    ``with_epoch``: the dataset is indexed by ``(epoch, index)``."""
    replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
    sampler = ResumableSampler(
        len(dataset),  # type: ignore[arg-type]
        seed=seed,
        num_replicas=replicas,
        rank=rank,
        with_epoch=with_epoch,
    )
    return ResumableDataLoader(dataset, batch_size, sampler, **kwargs)
