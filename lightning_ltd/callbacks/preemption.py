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

from lightning_ltd.callbacks.ledger import is_logging_step
from lightning_ltd.checks.schema import checked

LAST = "last.ckpt"


class PreemptionCheckpoint(Callback):
    """Turns a cluster scheduler's SIGTERM (or SIGUSR1, sent ahead of it by SLURM's
    ``--signal``) into a checkpoint and an exit code, so a preempted job is neither recorded as a
    success nor loses the steps since its last save.

    The handler only records the signal (and forwards it to the local ranks, as Lightning's
    does): a collective inside a signal handler could pair with the gradient all-reduce. At the
    end of the micro-batch that completes the optimizer step in progress (under gradient
    accumulation the micro-batches of a step are never split), the ranks agree on whether any of
    them was signalled (with several ranks: one ``reduce_boolean_decision`` on logging steps, where
    the ranks synchronise anyway, so a signal waits at most ``log_every_n_steps``) and every rank
    writes the checkpoint together (``trainer.save_checkpoint``, atomic with our checkpoint IO) to
    ``checkpoints/last.ckpt``, in the state a ``ModelCheckpoint`` save at that point has. The next
    micro-batch raises Lightning's ``SIGTERMException`` (a ``SystemExit``), which carries the exit
    code ``128 + signal`` (143 for SIGTERM, 138 for SIGUSR1: what a shell reports for a process
    ended by that signal) and a one-line message naming the checkpoint; ``train.py`` prints it.
    A signal during the run's last step lets it finish. Resuming from the checkpoint is
    bit-exact. Public Lightning API only: the loop stops on the exception it already handles.

    Args:
        usr1: also take SIGUSR1 as a preemption notice (False: leave SIGUSR1 alone; SLURM's
            auto-requeue handler, when set, keeps it either way).
    """

    @checked
    def __init__(self, usr1: bool = True) -> None:
        self.usr1 = usr1
        self.signum: int | None = None
        self.saved: Path | None = None  # the checkpoint written for the signal
        self._step_at_batch_start = 0
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After Lightning registered its handlers: ours replace them for the fit and are undone
        at its end. SIGUSR1 only where nothing else (SLURM auto-requeue) handles it already."""
        notice = functools.partial(self._request, trainer)
        signals = [signal.SIGTERM]
        if self.usr1 and hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            signals.append(signal.SIGUSR1)
        for signum in signals:
            self._previous[signum] = signal.signal(signum, lambda signum, frame: notice(signum))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _request(self, trainer: L.Trainer, signum: int) -> None:
        """The launching process passes the signal on to its local ranks, once."""
        launcher = trainer.strategy.launcher
        if self.signum is None and launcher is not None:
            launcher.kill(signum)
        self.signum = signum

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.saved is not None:
            raise SIGTERMException
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        last_step = trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps
        if trainer.global_step == self._step_at_batch_start or last_step:  # mid-accumulation, or done anyway
            return
        stop = self.signum is not None
        if trainer.world_size > 1:  # ranks agree where they sync anyway: on logging steps (no sync per step)
            if not is_logging_step(trainer, trainer.global_step):
                return
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self.saved = self.checkpoint_path(trainer)
            trainer.save_checkpoint(self.saved)  # every rank: the save is collective

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        self._restore()
        if self.saved is None:  # raised by something else than this callback: save where the loop stands
            self.saved = self.checkpoint_path(trainer)
            trainer.save_checkpoint(self.saved)
        signum = self.signum or signal.SIGTERM
        exception.code = 128 + signum  # Lightning re-raises this same exception
        exception.args = (
            f"stopped by {signal.Signals(signum).name} at optimizer step {trainer.global_step}: checkpoint "
            f"written, resume with ckpt_path={self.saved}",
        )

    @staticmethod
    def checkpoint_path(trainer: L.Trainer) -> Path:
        """``last.ckpt`` in the checkpoint callback's folder (a resume starts from there)."""
        folder = getattr(trainer.checkpoint_callback, "dirpath", None)
        return Path(folder or Path(trainer.default_root_dir) / "checkpoints") / LAST
