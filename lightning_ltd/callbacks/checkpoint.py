"""``FinalCheckpoint``: ``last.ckpt`` always holds the state the run ended in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class FinalCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose ``save_last`` also covers the end of training.

    Lightning writes ``last.ckpt`` at the end of ``fit`` only if it wrote none before: a run of
    600 steps with a checkpoint every 250 keeps step 500 as "last", the model behind the final
    validation is lost, and resuming from it retrains steps 501-600 without a word. Here, when
    training ends at a step no checkpoint holds yet, ``last.ckpt`` is written once more (through
    the trainer's checkpoint IO, atomic in our trainer configs). A run stopped by a non-finite
    loss still writes nothing (``NonFiniteLossGuard`` refuses the save).
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.save_last and trainer.global_step > 0 and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_global_step_saved = trainer.global_step
            return
        super().on_train_end(trainer, pl_module)


def idle_checkpoint_problems(callbacks: Mapping[str, Any]) -> list[str]:
    """Each ``callbacks.<name>`` checkpoint that would never write a file (no ``last.ckpt``, no
    top-k): the run would look checkpointed and leave nothing to resume from."""
    return [
        f"callbacks.{name} saves nothing (save_last=false, save_top_k=0): save one of them, or "
        f"callbacks.{name}=null for no checkpoints"
        for name, callback in callbacks.items()
        if isinstance(callback, ModelCheckpoint) and not callback.save_last and callback.save_top_k == 0
    ]
