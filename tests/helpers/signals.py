"""A callback that sends this process a signal at a given step, as a cluster scheduler would."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class SignalAt(Callback):
    """Sends ``signal_name`` (``SIGTERM``, ``SIGUSR1``) to this process at the start of the first
    micro-batch of optimizer step ``step``."""

    def __init__(self, step: int, signal_name: str = "SIGTERM") -> None:
        self.step = step
        self.signum = getattr(signal, signal_name)
        self.sent = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)
