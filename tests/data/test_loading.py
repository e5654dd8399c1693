from itertools import chain

import torch
from torch.utils.data import TensorDataset

from lightning_ltd.data.loading import ResumableDataLoader, ResumableSampler


def loader(seed=0, size=40, batch=4):
    data = TensorDataset(torch.arange(size))
    return ResumableDataLoader(data, batch, ResumableSampler(size, seed=seed))


def epoch(dl, number):
    dl.sampler.set_epoch(number)
    return [b[0].tolist() for b in dl]


def test_epochs_are_permutations_reshuffled_per_epoch():
    dl = loader()
    first, second = epoch(dl, 0), epoch(dl, 1)
    assert sorted(chain(*first)) == list(range(40)) == sorted(chain(*second))
    assert first != second and first == epoch(loader(), 0)


def test_mid_epoch_state_resumes_exactly():
    straight = loader()
    straight.sampler.set_epoch(1)
    expected = [b[0].tolist() for b in straight]
    interrupted = loader()
    interrupted.sampler.set_epoch(1)
    iterator = iter(interrupted)
    seen = [next(iterator)[0].tolist() for _ in range(3)]
    state = interrupted.state_dict()
    assert state == {
        "epoch": 1,
        "batches_served": 3,
        "seed": 0,
        "samples_served": 12,
        "num_replicas": 1,
        "batch_size": 4,
    }
    resumed = loader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)  # what Lightning does at the (restarted) epoch start
    rest = [b[0].tolist() for b in resumed]
    assert seen + rest == expected
    assert resumed.state_dict()["batches_served"] == 10
    assert epoch(resumed, 2) == epoch(loader(), 2)  # and the next epoch is whole again


def test_ranks_take_disjoint_equal_shares():
    shares = [list(ResumableSampler(10, seed=3, num_replicas=3, rank=r)) for r in range(3)]
    assert all(len(s) == 3 for s in shares)
    assert len(set(chain(*shares))) == 9


class Progress:
    """The counters of Lightning's ``_BatchProgress.current`` a remap moves."""

    def __init__(self, batches):
        self.ready = self.started = self.processed = batches
        self.completed = batches - 1  # saved at batch end: that batch is not completed yet


def fake_trainer(batches):
    from types import SimpleNamespace

    return SimpleNamespace(
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(current=Progress(batches))))
    )


def rank_loaders(replicas, size, batch, epoch_number, batches_before=None):
    """One loader per rank, each with its own (fake) trainer when ``batches_before`` is given."""
    data = TensorDataset(torch.arange(size))
    loaders = []
    for rank in range(replicas):
        sampler = ResumableSampler(size, seed=7, num_replicas=replicas, rank=rank)
        sampler.set_epoch(epoch_number)
        trainer = None if batches_before is None else fake_trainer(batches_before)
        loaders.append(ResumableDataLoader(data, batch, sampler, trainer))
    return loaders


def remapped_epoch(size, batch, before, after, new_batch=None):
    """``before`` batches on each of ``before`` ranks... then the rest of the epoch on ``after``
    ranks (at ``new_batch``): every sample seen, and where the fit loop's count was moved."""
    old = rank_loaders(before[0], size, batch, 2)
    iterators = [iter(dl) for dl in old]
    seen = [x for it in iterators for _ in range(before[1]) for x in next(it)[0].tolist()]
    state = old[0].state_dict()
    new_batch = new_batch or batch
    new = rank_loaders(after, size, new_batch, 2, batches_before=before[1])
    for dl in new:
        dl.load_state_dict(state)
    rest = [x for dl in new for b in dl for x in b[0].tolist()]
    progress = {dl.trainer.fit_loop.epoch_loop.batch_progress.current.ready for dl in new}
    assert len(progress) == 1  # every rank moved to the same batch
    return seen, rest, new[0].trainer.fit_loop.epoch_loop.batch_progress.current, len(new[0])


def test_a_resume_on_fewer_ranks_continues_the_epoch_with_nothing_skipped_or_repeated():
    seen, rest, progress, length = remapped_epoch(size=64, batch=4, before=(2, 3), after=1)
    assert len(seen) == 24 and len(set(seen + rest)) == len(seen + rest) == 64  # the whole epoch, once
    assert progress.ready == 6 and progress.completed == 5  # 24 samples = 6 batches of the 1-rank epoch
    assert progress.ready + len(rest) // 4 == length  # the loop's count ends where the data does


def test_a_resume_on_more_ranks_or_another_batch_size_covers_the_rest_once():
    for after, new_batch in ((2, 4), (3, 4), (2, 2), (1, 8)):
        seen, rest, progress, length = remapped_epoch(size=70, batch=4, before=(1, 5), after=after, new_batch=new_batch)
        assert not set(seen) & set(rest) and len(set(rest)) == len(rest)
        assert 70 - len(seen) - len(rest) < after * new_batch  # only the drop_last tail of the epoch is left out
        assert progress.ready + len(rest) // (after * new_batch) == length


def test_a_same_world_resume_does_not_touch_the_loop_and_needs_no_trainer():
    old = rank_loaders(2, 64, 4, 0)
    iterators = [iter(dl) for dl in old]
    for it in iterators:
        next(it)
    state = old[1].state_dict()
    plain = rank_loaders(2, 64, 4, 0)  # no trainer: fine, nothing to move
    for dl in plain:
        dl.load_state_dict(state)
    assert [b[0].tolist() for b in plain[1]] == [b[0].tolist() for b in iterators[1]]


def test_a_remap_without_the_trainer_is_refused_naming_the_devices_key():
    import pytest

    state = rank_loaders(2, 64, 4, 0)[0].state_dict() | {"batches_served": 3, "samples_served": 24}
    with pytest.raises(ValueError, match=r"trainer.devices: the checkpoint's data position was written by 2 rank"):
        rank_loaders(1, 64, 4, 0)[0].load_state_dict(state)


def test_eval_shards_are_disjoint_equal_ordered_and_cover_all_but_the_tail():
    from lightning_ltd.data.loading import EvalShard

    for size, replicas in ((10, 1), (10, 2), (10, 3), (7, 4)):
        shares = [list(EvalShard(size, replicas, r)) for r in range(replicas)]
        assert len({len(s) for s in shares}) == 1 and all(s == sorted(s) for s in shares)
        assert sorted(chain(*shares)) == list(range(size // replicas * replicas))


def test_a_resume_at_the_end_of_an_epoch_starts_the_next_one_whole():
    old = rank_loaders(2, 64, 4, 0)
    for dl in old:
        assert len(list(dl)) == 8
    state = old[0].state_dict()
    assert state["batches_served"] == 8 and state["samples_served"] == 64
    new = rank_loaders(1, 64, 4, 0, batches_before=8)
    new[0].load_state_dict(state)
    assert list(new[0]) == []  # nothing left of epoch 0 on one rank either
    new[0].sampler.set_epoch(1)  # Lightning, at the next epoch
    batches = list(new[0])
    assert len(batches) == 16 and new[0].batches_served == 16  # the whole epoch 1, counted from 0
