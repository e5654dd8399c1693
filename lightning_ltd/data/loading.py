"""A training DataLoader that resumes mid-epoch exactly, also on another number of ranks.

Lightning saves and restores a train loader's position when the loader has ``state_dict`` /
``load_state_dict`` (otherwise a resumed run re-reads its epoch from the start). The order of
epoch ``e`` is a pure function of ``(seed, e)``, computed index by index in O(1) memory, and the
ranks share it (rank ``r`` of ``R`` takes positions ``r, r + R, ...``), so the whole data
position is one number: how many positions of the shared order the epoch has served. That
number means the same at any world size or batch size, which is what lets a resume on another
GPU count continue the epoch with no sample skipped or repeated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from lightning_ltd.ltd.keyed_hash import permutation_keys, permuted_index


class ResumableSampler(Sampler[Any]):
    """Shuffled indices, reshuffled per epoch from ``(seed, epoch)``; can start part-way in.

    The order is a pseudo-random permutation computed index by index (``keyed_hash.permuted_index``), so
    memory stays flat whatever the dataset size. With ``num_replicas > 1`` rank ``r`` takes every
    ``num_replicas``-th position of the shared permutation (truncated to equal length), as
    ``DistributedSampler`` does. ``served`` (positions of the shared order already consumed by all
    ranks) makes the next pass start after them. With ``with_epoch`` it yields ``(epoch, index)``
    pairs, so a dataset can make per-sample randomness (MLM masks) a pure function of both.
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
        self.served = 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at every epoch start; a new epoch starts at its beginning."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.served = 0

    def __iter__(self) -> Iterator[Any]:
        served, self.served = self.served, 0  # a resume offset applies to one pass only
        epoch = self.epoch
        round_keys = permutation_keys(self.seed, epoch)
        for position in range(self.remaining(served)):
            index = self.index_at(served + self.rank + position * self.num_replicas, epoch, round_keys)
            yield (epoch, index) if self.with_epoch else index

    def index_at(self, shared: int, epoch: int, round_keys: tuple[int, ...]) -> int:
        """The sample at position ``shared`` of epoch ``epoch``'s shared order (a subclass may
        draw from another order: the rarity curriculum's easiest blocks)."""
        return permuted_index(shared, self.size, round_keys) if self.shuffle else shared

    def remaining(self, served: int) -> int:
        """Indices this rank yields after ``served`` shared positions (equal on every rank)."""
        return max(self.size - served, 0) // self.num_replicas

    def __len__(self) -> int:
        return self.remaining(0)


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``ResumableSampler`` whose state is the shared data position.

    Batches are counted as they leave the loader, i.e. as the training loop receives them
    (Lightning does not prefetch from loaders of known length), so the count is exact whatever
    the number of workers. A checkpoint written at another world size or batch size is remapped
    on load: the epoch continues after the positions already served, and (``trainer`` given) the
    fit loop's batch count is moved to the equivalent point of the new epoch, so the epoch ends
    exactly when its data does.
    """

    def __init__(
        self, dataset: Dataset[Any], batch_size: int, sampler: ResumableSampler, trainer: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, **kwargs)
        self.trainer = trainer
        self.batches_served = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        self.batches_served = self.batches_before(sampler.served)  # 0 unless resuming (set_epoch resets it)
        for batch in super().__iter__():
            self.batches_served += 1
            yield batch

    @property
    def samples_served(self) -> int:
        """Positions of the shared order this epoch has served, on all ranks together."""
        assert self.batch_size is not None
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        return self.batches_served * self.batch_size * sampler.num_replicas

    def state_dict(self) -> dict[str, Any]:
        """The data position (epoch, shared positions served), the seed that orders it, and the
        world and batch size that served it (so a resume can tell a remap from a continuation)."""
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        return {
            "epoch": sampler.epoch,
            "batches_served": self.batches_served,
            "seed": sampler.seed,
            "samples_served": self.samples_served,
            "num_replicas": sampler.num_replicas,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        if state.get("seed", sampler.seed) != sampler.seed:
            raise ValueError(f"checkpoint data order has seed {state['seed']}, this loader has {sampler.seed}")
        assert self.batch_size is not None
        saved_batches = int(state["batches_served"])
        served = int(state.get("samples_served", saved_batches * self.batch_size * sampler.num_replicas))
        sampler.epoch = int(state["epoch"])
        sampler.served = served
        resumed_batches = self.batches_before(served)
        if resumed_batches != saved_batches:
            self._move_loop_position(resumed_batches - saved_batches, state)

    def batches_before(self, served: int) -> int:
        """This epoch's batch (at this world and batch size) after which the data left starting
        at shared position ``served`` fills the rest: the loop's count ends where the data does."""
        assert self.batch_size is not None
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        return len(self) - sampler.remaining(served) // self.batch_size if served else 0

    def _move_loop_position(self, shift: int, state: dict[str, Any]) -> None:
        """Tell Lightning's epoch loop (restored before the loader, reset after it) that the epoch
        is ``shift`` batches further on, so its count and the loader's end agree."""
        if self.trainer is None:
            raise ValueError(
                f"trainer.devices: the checkpoint's data position was written by {state.get('num_replicas')} "
                f"rank(s) at batch size {state.get('batch_size')}; remapping it needs the loader's trainer"
            )
        current = self.trainer.fit_loop.epoch_loop.batch_progress.current
        current.ready += shift
        current.started += shift
        current.processed += shift
        current.completed += shift


def resumable_train_loader(
    dataset: Dataset[Any],
    batch_size: int,
    seed: int,
    trainer: Any = None,
    with_epoch: bool = False,
    sampler_class: Callable[..., ResumableSampler] | None = None,
    **kwargs: Any,
) -> ResumableDataLoader:
    """The training loader of our DataModules: shuffled per epoch, sharded over the trainer's
    data-parallel ranks (so run with ``use_distributed_sampler=False``), resumable mid-epoch and
    across world sizes; ``with_epoch``: the dataset is indexed by ``(epoch, index)``;
    ``sampler_class`` (called with the sampler's keyword arguments) orders it another way."""
    replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
    settings = {"seed": seed, "num_replicas": replicas, "rank": rank, "with_epoch": with_epoch}
    make = sampler_class or functools.partial(ResumableSampler, len(dataset))  # type: ignore[arg-type]
    sampler = make(**settings)
    return ResumableDataLoader(dataset, batch_size, sampler, trainer, **kwargs)


class EvalShard(Sampler[int]):
    """Rank ``r``'s share of an evaluation set: indices ``r, r + R, ...`` of its first
    ``floor(N / R) * R`` samples, in order.

    Every rank gets the same number of samples, so sharded strategies (FSDP, ZeRO-3), whose
    every forward is a collective, run the same number of batches on each rank; and no sample
    is repeated (``DistributedSampler`` pads with repeats), so the metrics the ranks reduce are
    those of the whole set, less at most ``R - 1`` samples at its end.
    """

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank={rank} must be in [0, num_replicas={num_replicas})")
        self.size, self.num_replicas, self.rank = size, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self) * self.num_replicas, self.num_replicas))

    def __len__(self) -> int:
        return self.size // self.num_replicas


def sharded_eval_loader(dataset: Dataset[Any], batch_size: int, trainer: Any = None, **kwargs: Any) -> DataLoader:
    """The validation loader of our DataModules: each data-parallel rank evaluates its own share
    (``EvalShard``); torchmetrics reduces the metrics over ranks."""
    replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
    sampler = EvalShard(len(dataset), replicas, rank)  # type: ignore[arg-type]
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **kwargs)
