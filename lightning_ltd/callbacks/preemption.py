"""``PreemptionCheckpoint``: on SIGTERM or SIGUSR1, a checkpoint at the last whole optimizer step,
then a non-zero exit."""

from __future__ import annotations

import functools
import signal
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_ltd.checks.schema import checked

LAST = "last.ckpt"


class PreemptionCheckpoint(Callback):
    """Turns a cluster scheduler's SIGTERM (or SIGUSR1, sent ahead of it by SLURM's
    ``--signal``) into a checkpoint and an exit code, so a preempted job is neither recorded as a
    success nor loses the steps since its last save.

    Lightning notices SIGTERM and stops the loop at the next micro-batch boundary
    (``SIGTERMException``, which would exit 0), on every rank at once. Here the stop waits for
    the end of the optimizer step in progress (under gradient accumulation the micro-batches
    of a step are never split), then every rank writes the checkpoint together
    (``trainer.save_checkpoint``, atomic with our checkpoint IO) to ``checkpoints/last.ckpt``.
    Lightning's ``SIGTERMException`` (a ``SystemExit``) then carries the exit code ``128 +
    signal`` (143 for SIGTERM, 138 for SIGUSR1: what a shell reports for a process ended by that
    signal) and a one-line message naming the checkpoint; ``train.py`` prints it. Resuming from
    the checkpoint is bit-exact.

    Args:
        usr1: also take SIGUSR1 as a preemption notice (False: leave SIGUSR1 alone; SLURM's
            auto-requeue handler, when set, keeps it either way).
    """

    @checked
    def __init__(self, usr1: bool = True) -> None:
        self.usr1 = usr1
        self.signum: int | None = None
        self._pending = False
        self._step_at_batch_start = 0
        self._previous_usr1: Any = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After Lightning registered its handlers (it restores what it found at its teardown).

        SIGTERM's handler replaces Lightning's, which broadcasts to the other ranks from inside
        the handler: a collective at an arbitrary point of the step, which under DDP can pair
        with the gradient all-reduce and corrupt it. Here the handler only raises the flag (and
        forwards the signal to the local ranks, as Lightning's does); the loop's own broadcast
        at the next batch start shares rank 0's flag. SIGUSR1 the same, unless something else
        (SLURM auto-requeue) handles it already."""
        notice = functools.partial(self._request, trainer)
        signal.signal(signal.SIGTERM, lambda signum, frame: notice(signum))
        if self.usr1 and hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            self._previous_usr1 = signal.signal(signal.SIGUSR1, lambda signum, frame: notice(signum))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_usr1()

    def _restore_usr1(self) -> None:
        if self._previous_usr1 is not None:
            signal.signal(signal.SIGUSR1, self._previous_usr1)
            self._previous_usr1 = None

    def _request(self, trainer: L.Trainer, signum: int) -> None:
        """Both signals take SIGTERM's path through Lightning's loop (rank 0's flag is broadcast
        at each batch start); the launching process passes the signal on to its local ranks."""
        connector = trainer._signal_connector
        launcher = trainer.strategy.launcher
        if not connector.received_sigterm and not self._pending and launcher is not None:
            launcher.kill(signum)
        self.signum = signum
        connector.received_sigterm = True

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        connector = trainer._signal_connector
        stepped = trainer.global_step != self._step_at_batch_start
        if connector.received_sigterm and not stepped:  # mid-accumulation: finish the step first
            self._pending, connector.received_sigterm = True, False
        elif self._pending and stepped:
            self._pending, connector.received_sigterm = False, True

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        self._restore_usr1()
        path = self.checkpoint_path(trainer)
        trainer.save_checkpoint(path)  # every rank: the save is collective
        signum = self.signum or signal.SIGTERM
        exception.code = 128 + signum  # Lightning re-raises this same exception
        exception.args = (
            f"stopped by {signal.Signals(signum).name} at optimizer step {trainer.global_step}: checkpoint "
            f"written, resume with ckpt_path={path}",
        )

    @staticmethod
    def checkpoint_path(trainer: L.Trainer) -> Path:
        """``last.ckpt`` in the checkpoint callback's folder (a resume starts from there)."""
        folder = getattr(trainer.checkpoint_callback, "dirpath", None)
        return Path(folder or Path(trainer.default_root_dir) / "checkpoints") / LAST
