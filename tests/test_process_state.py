"""``train(cfg)`` called from Python leaves the process as it found it: warning display and
filters, logging handlers and filters, signal handlers, dynamo's graph limits, matmul precision
(the command line, ``python train.py``, may set such things for its own process)."""

import logging
import signal
import warnings

import torch

from lightning_ltd.cli import train
from tests.conftest import compose_train

LOGGERS = ("", "lightning", "lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "transformers")
DYNAMO = ("recompile_limit", "cache_size_limit", "fail_on_recompile_limit_hit")


def process_state() -> dict:
    loggers = {name: logging.getLogger(name or None) for name in LOGGERS}
    return {
        "formatwarning": warnings.formatwarning,
        "showwarning": warnings.showwarning,
        "filters": list(warnings.filters),
        "handlers": {name: list(lg.handlers) for name, lg in loggers.items()},
        "log filters": {name: list(lg.filters) for name, lg in loggers.items()},
        "propagate": {name: lg.propagate for name, lg in loggers.items()},
        "signals": {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)},
        "dynamo": {name: getattr(torch._dynamo.config, name) for name in DYNAMO if hasattr(torch._dynamo.config, name)},
        "matmul": torch.get_float32_matmul_precision(),
    }


def test_a_run_from_python_changes_no_process_wide_state(tmp_path):
    before = process_state()
    train(compose_train(tmp_path, "trainer.max_steps=2", "lr.warmup_steps=5"))  # warns: held, then shown
    after = process_state()
    assert {key: value for key, value in after.items() if value != before[key]} == {}
