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
    assert state == {"epoch": 1, "batches_served": 3, "seed": 0}
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
