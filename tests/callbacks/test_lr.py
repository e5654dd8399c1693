"""``ScheduledLR``: the LR schedule is a torch ``LRScheduler`` in Lightning's hands."""

import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.ltd import LayerTokenLR, StepLR, layer_tokens_per_step, mslg_keep, warmup_decay_lr
from lightning_ltd.ltd.lr import LayerTokenLRScheduler
from lightning_ltd.modules import GPTModule
from tests.conftest import quiet_trainer


class LRs(Callback):
    """The LR each optimizer step ran with (read after every callback of ours has run)."""

    def __init__(self):
        self.by_step = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.by_step[trainer.global_step] = optimizer.param_groups[0]["lr"]


def fit(schedule, steps, tmp_path, ckpt_path=None, accumulate=1):
    torch.manual_seed(0)
    module = GPTModule(vocab_size=32, block_size=16, n_layer=4, n_head=2, n_embd=16)
    scheduler = RandomLTDScheduler(min_keep=4, ramp_steps=6, granularity=4, lr=schedule)
    lrs, saver = LRs(), ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1, filename="{step}")
    trainer = quiet_trainer(
        scheduler,
        lrs,
        saver,
        max_steps=steps,
        enable_checkpointing=True,
        limit_val_batches=0,
        accumulate_grad_batches=accumulate,
    )
    trainer.fit(module, DataLoader(torch.randint(0, 32, (64, 17)), batch_size=4), ckpt_path=ckpt_path)
    return trainer, lrs.by_step


def test_lightning_holds_steps_and_checkpoints_the_scheduler(tmp_path):
    schedule = LayerTokenLR(total_steps=8, warmup_steps=2, min_lr=1e-4)
    trainer, lrs = fit(schedule, 8, tmp_path / "a")
    (config,) = trainer.lr_scheduler_configs
    assert isinstance(config.scheduler, LayerTokenLRScheduler) and config.interval == "step"
    per_step = [layer_tokens_per_step(4, 16, mslg_keep(t, 4, 16, 6, 4), 4, 2) for t in range(8)]
    for step, lr in lrs.items():  # the closed form of the LayerToken LR, in layer-tokens
        assert lr == warmup_decay_lr(sum(per_step[:step]), 3e-3, schedule.warmup, schedule.total, 1e-4, "cosine")
    saved = torch.load(tmp_path / "a" / "step=4.ckpt", weights_only=True)
    assert saved["lr_schedulers"] == [{"last_epoch": 4}]  # plain data: weights_only loads it


def test_resume_continues_the_lr_exactly(tmp_path):
    _, straight = fit(StepLR(total_steps=8, warmup_steps=3), 8, tmp_path / "a")
    _, resumed = fit(StepLR(total_steps=8, warmup_steps=3), 8, tmp_path / "b", tmp_path / "a" / "step=4.ckpt")
    assert sorted(resumed) == [4, 5, 6, 7] and all(resumed[s] == straight[s] for s in resumed)
    assert straight[0] == 0.0 and straight[7] < straight[3]


def test_resume_with_another_global_batch_continues_from_the_recorded_layer_tokens(tmp_path):
    """Twice the global batch before the checkpoint (as with twice the GPUs): the resumed run's
    LR goes on from the layer-tokens consumed, not from every past step re-counted at its batch."""
    budget = dict(total_layer_tokens=40_000, warmup_layer_tokens=2_000, min_lr=1e-4)
    _, straight = fit(LayerTokenLR(**budget), 8, tmp_path / "a", accumulate=2)
    saved = torch.load(tmp_path / "a" / "step=4.ckpt", weights_only=True)["callbacks"]["RandomLTDScheduler"]
    assert saved["global_batch"] == 8 and saved["scheduled_step"] == 4
    schedule = LayerTokenLR(**budget)
    _, resumed = fit(schedule, 6, tmp_path / "b", tmp_path / "a" / "step=4.ckpt", accumulate=1)
    assert resumed[4] == straight[4]  # the same progress at the resume step
    tokens_at_4 = saved["scheduled_layer_tokens"]
    step_4_at_batch_4 = layer_tokens_per_step(4, 16, mslg_keep(4, 4, 16, 6, 4), 4, 2)
    expected = warmup_decay_lr(tokens_at_4 + step_4_at_batch_4, 3e-3, 2_000, 40_000, 1e-4, "cosine")
    assert resumed[5] == expected != straight[5]  # then at this run's batch
