"""``RandomLTDScheduler``: the one-line way to drive random-LTD (routing, LR, budget, ledger)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_ltd.callbacks.budget import LayerTokenBudget
from lightning_ltd.callbacks.ledger import LayerTokenLogger
from lightning_ltd.callbacks.lr import ScheduledLR
from lightning_ltd.callbacks.routing import RoutingDriver
from lightning_ltd.checks.fingerprint import data_source
from lightning_ltd.checks.schema import Count, PositiveInt, checked
from lightning_ltd.errors import raise_if
from lightning_ltd.ltd.ledger import LayerTokenLedger, saved_state_problems
from lightning_ltd.ltd.lr import LRSchedule


def driver_setting(name: str) -> property:
    """The ``RoutingDriver``'s setting of that name, read through (it is the one owner)."""
    return property(lambda self: getattr(self.driver, name), doc=f"The ``{name}`` argument.")


class RandomLTDScheduler(Callback):
    """Drive random-LTD with one callback: its pieces, each a callback with one job, run in order.

    - ``RoutingDriver``: the MSLG kept length, the plan counter and the step seed of every
      training micro-batch (``keep_at``, ``distinct_keeps``);
    - ``ScheduledLR`` (with ``lr``): the schedule as a torch ``LRScheduler`` that Lightning steps,
      logs and checkpoints, its progress in scheduled layer-tokens (``LayerTokenLR``) or steps;
    - ``LayerTokenBudget`` (with a schedule that has a budget): stop at the first optimizer step
      that reaches it;
    - ``LayerTokenLogger``: the layer-token ledger, summed over ranks only on logging steps, at
      checkpoints and at the end, and its ``train/...`` metrics.

    Logged on logging steps: ``train/keep``, ``train/layer_tokens``, ``train/effective_tokens``
    (layer-tokens / layers, Megatron's count), ``train/schedule_saving`` (layer-tokens skipped so
    far against the same batches at full length) and, with ``lr``, ``train/lr``.

    Args:
        enabled: False runs the plain baseline but still counts layer-tokens and drives the LR.
        min_keep: kept length at step 0.
        max_keep: kept length at the end of the ramp; None: the model's sequence length.
        ramp_steps: optimizer steps over which the kept length grows.
        granularity: kept lengths are multiples of this (the paper's "step", 8 or 16).
        lr: learning-rate schedule; None leaves the optimizer's LR alone.
        step_seeding: reseed the global RNG before every training micro-batch.
        compile_buckets: with a compiled module (``compile=True``), the schedule uses at most
            this many kept lengths (each rounded up to the next of them; ``KeptLengthSchedule``),
            since each is a compiled graph; None: every MSLG length.
    """

    @checked
    def __init__(
        self,
        enabled: bool = True,
        min_keep: PositiveInt = 32,
        max_keep: PositiveInt | None = None,
        ramp_steps: Count = 1000,
        granularity: PositiveInt = 8,
        lr: LRSchedule | None = None,
        step_seeding: bool = True,
        compile_buckets: PositiveInt | None = 16,
    ) -> None:
        if max_keep is not None and min_keep > max_keep:
            raise_if([f"min_keep={min_keep} must be <= max_keep={max_keep}"])
        self.driver = RoutingDriver(enabled, min_keep, max_keep, ramp_steps, granularity, step_seeding, compile_buckets)
        self.logger = LayerTokenLogger(self.driver)
        self.scheduled_lr = None if lr is None else ScheduledLR(lr, self.driver)
        self.budget = None if lr is None else LayerTokenBudget(lr, self.driver)
        pieces = (self.driver, self.scheduled_lr, self.budget, self.logger)
        self.parts: list[Callback] = [piece for piece in pieces if piece is not None]

    # ---- hooks: each runs that hook of every piece, in order ---------------------------------

    def _each(self, hook: str, *args: Any) -> None:
        for part in self.parts:
            getattr(part, hook)(*args)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._each("setup", trainer, pl_module, stage)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._each("teardown", trainer, pl_module, stage)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._each("on_fit_start", trainer, pl_module)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._each("on_train_batch_start", trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._each("on_train_batch_end", trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._each("on_train_end", trainer, pl_module)

    # ---- what the run's settings and totals read ---------------------------------------------

    enabled = driver_setting("enabled")
    min_keep = driver_setting("min_keep")
    max_keep = driver_setting("max_keep")
    ramp_steps = driver_setting("ramp_steps")
    granularity = driver_setting("granularity")
    step_seeding = driver_setting("step_seeding")
    compile_buckets = driver_setting("compile_buckets")

    @property
    def lr_schedule(self) -> LRSchedule | None:
        """The ``lr`` argument."""
        return None if self.scheduled_lr is None else self.scheduled_lr.schedule

    def keep_at(self, step: int) -> int | None:
        """The kept length for optimizer step ``step`` (None when dropping is disabled)."""
        return self.driver.keep_at(step)

    def distinct_keeps(self) -> list[int | None]:
        """Every kept length the whole schedule uses, ascending (each is one compiled graph)."""
        return self.driver.distinct_keeps()

    @property
    def ledger(self) -> LayerTokenLedger:
        """The layer-token ledger (``LayerTokenLogger`` owns it): ``consumed`` and ``full``
        layer-tokens over all ranks as of the last sync, and their ``saving``."""
        return self.logger.ledger

    @property
    def budget_stop_step(self) -> int | None:
        """The step at which the layer-token budget stopped training (None: it did not)."""
        return None if self.budget is None else self.budget.stop_step

    def sync(self, trainer: L.Trainer) -> None:
        """Sum every rank's pending counts into the ledger (a collective: every rank calls it)."""
        self.logger.sync(trainer)

    # ---- checkpoints -------------------------------------------------------------------------

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Every rank runs this when a checkpoint is written: sync, then store the synced totals
        (Lightning collected ``state_dict`` just before, possibly with counts still pending) and
        what the data module reads (a resume checks it is the same)."""
        self.sync(trainer)
        state = {**self.state_dict(), "data_source": data_source(trainer.datamodule)}
        scheduled = self.driver.scheduled
        if scheduled is not None:  # where the LR and the budget stand, whatever the next run's batch
            state["scheduled_step"] = trainer.global_step
            state["scheduled_layer_tokens"] = scheduled.before(trainer.global_step)
            state["global_batch"] = scheduled.shape.global_batch
        checkpoint.setdefault("callbacks", {})[self.state_key] = state

    def state_dict(self) -> dict[str, Any]:
        return self.ledger.state_dict()

    @classmethod
    def saved_state_problems(cls, state: dict[str, Any], global_step: int | None = None) -> list[str]:
        """What of a checkpoint's saved state this callback could not resume from (``ltd.ledger``)."""
        return saved_state_problems(cls.__name__, state, global_step)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The ledger's totals, and the scheduled layer-tokens the resumed run continues from."""
        self.ledger.load_state_dict(state_dict)
        if "scheduled_layer_tokens" in state_dict:
            self.driver.anchor = (int(state_dict["scheduled_step"]), int(state_dict["scheduled_layer_tokens"]))
