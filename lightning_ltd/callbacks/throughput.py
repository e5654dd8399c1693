"""Lightning's ``ThroughputMonitor`` wired to a ``RandomLTDModule``'s batches."""

from __future__ import annotations

from typing import Annotated, Any

import lightning as L
from lightning.pytorch.callbacks import ThroughputMonitor

from lightning_ltd.modules.base import RandomLTDModule
from lightning_ltd.schema import Bounds, checked


class TokenThroughputMonitor(ThroughputMonitor):
    """``ThroughputMonitor`` that reads rows and tokens from ``pl_module.token_shape``.

    FLOPs come from the module's ``flops_per_batch``, derived from the batch in flight and the
    routers' kept length, so FLOP/s stay honest while the kept length ramps up. Config
    files cannot hold lambdas, hence this subclass.

    Logs what ``ThroughputMonitor`` logs, every ``log_every_n_steps`` once ``window_size``
    batches are in: ``train/device/batches_per_sec``, ``train/device/samples_per_sec``,
    ``train/device/items_per_sec`` (tokens), ``train/device/flops_per_sec``,
    ``train/device/mfu`` (when the device's peak is known) and the ``train/time``,
    ``train/batches``, ``train/samples`` counters.
    """

    @checked
    def __init__(self, window_size: Annotated[int, Bounds(2)] = 100, **kwargs: Any) -> None:  # two points at least
        super().__init__(batch_size_fn=self._rows, length_fn=self._tokens, window_size=window_size, **kwargs)
        self._module: RandomLTDModule | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RandomLTDModule):
            raise TypeError(f"TokenThroughputMonitor needs a RandomLTDModule, got {type(pl_module).__name__}")
        self._module = pl_module
        super().setup(trainer, pl_module, stage)

    def _rows(self, batch: Any) -> int:
        assert self._module is not None
        return self._module.token_shape(batch)[0]

    def _tokens(self, batch: Any) -> int:
        assert self._module is not None
        rows, seq_len = self._module.token_shape(batch)
        return rows * seq_len
