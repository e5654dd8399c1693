"""A callback that sends this process a signal at a given step, as a cluster scheduler would."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class SignalAt(Callback):
    """Sends ``signal_name`` (``SIGTERM``, ``SIGUSR1``) to this process at the start of the first
    micro-batch of optimizer step ``step`` (on rank ``rank`` only, when given: a scheduler
    signalling the launching process, which forwards it to the other ranks)."""

    def __init__(self, step: int, signal_name: str = "SIGTERM", rank: int | None = None) -> None:
        self.step = step
        self.rank = rank
        self.signum = getattr(signal, signal_name)
        self.sent = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and not self.sent and self.rank in (None, trainer.global_rank):
            self.sent = True
            os.kill(os.getpid(), self.signum)


class SignalInSave(Callback):
    """Sends ``signal_name`` to this process from inside the first checkpoint save (the state is
    being gathered; the file is written next), as a scheduler's SIGTERM may land mid-save."""

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        self.signum = getattr(signal, signal_name)
        self.sent = False

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)
