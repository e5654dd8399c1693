import pytest
import torch
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.errors import InvalidFieldsError
from lightning_ltd.ltd import LayerTokenLR, layer_tokens_per_step, mslg_keep, warmup_decay_lr
from lightning_ltd.modules import GPTModule
from tests.conftest import quiet_trainer


class Recording(GPTModule):
    def training_step(self, batch, batch_idx):
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.seen.append((self.trainer.global_step, self.keep, tuple(batch.shape)))
        self.lrs.append((self.trainer.global_step, lr, self.flops_per_batch))
        return super().training_step(batch, batch_idx)


def fit(scheduler, steps=12, accumulate=1):
    torch.manual_seed(0)
    module = Recording(vocab_size=32, block_size=24, n_layer=4, n_head=2, n_embd=16)
    module.seen, module.lrs, module.ledger = [], [], scheduler
    data = torch.randint(0, 32, (72, 25))  # 18 batches: whole accumulation windows
    trainer = quiet_trainer(scheduler, max_steps=steps, accumulate_grad_batches=accumulate, limit_val_batches=0)
    trainer.fit(module, DataLoader(data, batch_size=4))
    return module


@pytest.mark.parametrize("accumulate", [1, 3])
def test_keep_follows_mslg_per_optimizer_step_and_tokens_are_counted(accumulate):
    scheduler = RandomLTDScheduler(min_keep=4, max_keep=24, ramp_steps=8, granularity=4)
    module = fit(scheduler, accumulate=accumulate)
    assert len(module.seen) == 12 * accumulate
    expected_tokens = 0
    for step, keep, (rows, width) in module.seen:
        scheduled = mslg_keep(step, 4, 24, 8, 4)
        assert keep == (scheduled if scheduled < width - 1 else None)  # None: the batch is not longer
        keep = scheduled
        expected_tokens += layer_tokens_per_step(rows, width - 1, keep, 4, 2)
    assert scheduler.ledger.consumed == expected_tokens
    assert scheduler.ledger.full == 12 * accumulate * 4 * 24 * 4
    assert 0 < scheduler.ledger.saving < 0.5


def test_disabled_runs_the_plain_model():
    scheduler = RandomLTDScheduler(enabled=False)
    module = fit(scheduler, steps=3)
    assert {keep for _, keep, _ in module.seen} == {None}
    assert scheduler.ledger.saving == 0.0


def test_state_round_trip():
    scheduler = RandomLTDScheduler(min_keep=4, max_keep=24, ramp_steps=8, granularity=4)
    fit(scheduler, steps=3)
    restored = RandomLTDScheduler()
    restored.load_state_dict(scheduler.state_dict())
    assert restored.state_dict() == scheduler.state_dict()


def test_arguments_named_in_errors():
    with pytest.raises(InvalidFieldsError) as err:
        RandomLTDScheduler(min_keep=0, granularity=-2, ramp_steps=-1)
    assert err.value.problems == [
        "min_keep=0 must be a positive integer",
        "ramp_steps=-1 must be an integer >= 0",
        "granularity=-2 must be a positive integer",
    ]


@pytest.mark.parametrize("accumulate", [1, 3])
def test_lr_follows_scheduled_layer_tokens_in_closed_form(accumulate):
    schedule = LayerTokenLR(total_steps=12, warmup_steps=2, min_lr=1e-4)
    scheduler = RandomLTDScheduler(min_keep=4, max_keep=24, ramp_steps=8, granularity=4, lr=schedule)
    module = fit(scheduler, accumulate=accumulate)
    assert schedule.total == scheduler.ledger.consumed  # decays exactly over what the run consumed
    per_step = [accumulate * layer_tokens_per_step(4, 24, mslg_keep(t, 4, 24, 8, 4), 4, 2) for t in range(12)]
    for step, lr, _ in module.lrs:
        expected = warmup_decay_lr(sum(per_step[:step]), 3e-3, schedule.warmup, schedule.total, 1e-4, "cosine")
        assert lr == expected
    assert module.lrs[-1][1] < module.lrs[3][1]
    assert module.lrs[0][1] == 0.0


def test_stop_at_layer_token_budget():
    budget = 5_000
    schedule = LayerTokenLR(total_layer_tokens=budget, stop_at_budget=True)
    scheduler = RandomLTDScheduler(min_keep=4, max_keep=24, ramp_steps=8, granularity=4, lr=schedule)
    module = fit(scheduler, steps=1000)
    per_step = [layer_tokens_per_step(4, 24, keep, 4, 2) for _, keep, _ in module.seen]
    assert scheduler.ledger.consumed == sum(per_step) >= budget
    assert sum(per_step[:-1]) < budget  # stopped at the first step that reached it


def test_flops_per_batch_follows_keep():
    scheduler = RandomLTDScheduler(min_keep=4, max_keep=24, ramp_steps=8, granularity=4)
    module = fit(scheduler, steps=10)
    flops = [f for *_, f in module.lrs]
    for (_, keep, _), f in zip(module.seen, flops, strict=True):
        assert f == module.model.training_flops(4, 24, keep)
    assert flops == sorted(flops) and flops[0] < flops[-1]


def test_ledger_syncs_only_on_logging_steps_and_at_the_end(monkeypatch):
    scheduler = RandomLTDScheduler(min_keep=4, max_keep=24, ramp_steps=8, granularity=4)
    syncs = []
    original = scheduler.ledger.sync
    monkeypatch.setattr(scheduler.ledger, "sync", lambda *a: (syncs.append(1), original(*a)))
    torch.manual_seed(0)
    module = GPTModule(vocab_size=32, block_size=24, n_layer=4, n_head=2, n_embd=16)
    trainer = quiet_trainer(scheduler, max_steps=20, log_every_n_steps=5)
    trainer.fit(module, DataLoader(torch.randint(0, 32, (80, 25)), batch_size=4))
    assert len(syncs) == 20 // 5 + 1  # four logging steps and the end of the run
    expected = sum(layer_tokens_per_step(4, 24, mslg_keep(t, 4, 24, 8, 4), 4, 2) for t in range(20))
    assert scheduler.ledger.consumed == expected and scheduler.ledger.full == 20 * 4 * 24 * 4


def test_lr_in_steps_means_steps_whatever_the_padded_widths():
    """Issue 12: with per-batch padding a 12-step decay used to end at 2.3e-4 instead of min_lr."""
    from lightning.pytorch.callbacks import Callback

    from lightning_ltd.data import MLMDataModule
    from lightning_ltd.modules import BERTModule

    class LRs(Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    def run(multiple):
        torch.manual_seed(0)
        schedule = LayerTokenLR(total_steps=12, warmup_steps=2, min_lr=1e-4)
        scheduler = RandomLTDScheduler(min_keep=16, ramp_steps=8, granularity=8, lr=schedule)
        data = MLMDataModule(max_bytes=60_000, block_size=64, batch_size=8, pad_to_multiple_of=multiple)
        module = BERTModule(block_size=64, n_layer=3, n_head=2, n_embd=16, lr=1e-3)
        lrs = LRs()
        quiet_trainer(scheduler, lrs, max_steps=12, limit_val_batches=0).fit(module, datamodule=data)
        return lrs.seen, schedule

    tight, schedule = run(1)
    bucketed, _ = run(64)
    assert tight == bucketed  # the LR is a function of the step, not of the widths
    assert tight[1] < tight[2] == max(tight)  # warmup over 2 steps
    per_step = [layer_tokens_per_step(8, 64, mslg_keep(t, 16, 64, 8, 8), 3, 1) for t in range(12)]
    assert schedule.total == sum(per_step)  # 12 steps at the data's block size, whatever the widths
    expected = [
        warmup_decay_lr(sum(per_step[:t]), 1e-3, sum(per_step[:2]), sum(per_step), 1e-4, "cosine") for t in range(12)
    ]
    assert tight == expected
    assert schedule.lr(schedule.total, 1e-3) == pytest.approx(1e-4)  # min_lr once the 12th step is done
