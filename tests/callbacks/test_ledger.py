"""``LayerTokenLogger`` decides its logging steps with public APIs only, as Lightning does."""

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.callbacks.ledger import is_logging_step
from lightning_ltd.modules import GPTModule
from tests.conftest import quiet_trainer


class Compare(Callback):
    """Lightning's private decision (the reference) against ours, at batch start and end."""

    def __init__(self):
        self.pairs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step = trainer.global_step + 1
        self.pairs.append((trainer._logger_connector.should_update_logs, is_logging_step(trainer, step)))
        self._step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.pairs.append((trainer._logger_connector.should_update_logs, is_logging_step(trainer, self._step)))


@pytest.mark.parametrize("accumulate, every", [(1, 1), (1, 3), (3, 2)])
def test_logging_steps_match_lightnings(accumulate, every):
    compare = Compare()
    module = GPTModule(vocab_size=32, block_size=16, n_layer=3, n_head=2, n_embd=8)
    trainer = quiet_trainer(
        RandomLTDScheduler(min_keep=4, ramp_steps=4, granularity=4),
        compare,
        max_steps=7,
        accumulate_grad_batches=accumulate,
        log_every_n_steps=every,
    )
    trainer.fit(module, DataLoader(torch.randint(0, 32, (96, 17)), batch_size=4))
    assert len(compare.pairs) == 2 * 7 * accumulate
    assert all(lightning == ours for lightning, ours in compare.pairs)
    decisions = [ours for _, ours in compare.pairs]
    assert all(decisions) if every == 1 else any(decisions) and not all(decisions)
