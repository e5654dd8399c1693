"""Lightning callbacks: the random-LTD schedule, throughput, the run summary, the final checkpoint and
the non-finite loss guard."""

from lightning_ltd.callbacks.checkpoint import FinalCheckpoint
from lightning_ltd.callbacks.guard import NonFiniteLossError, NonFiniteLossGuard
from lightning_ltd.callbacks.model_summary import ParameterSummary
from lightning_ltd.callbacks.schedule import RandomLTDScheduler
from lightning_ltd.callbacks.summary import RunSummary
from lightning_ltd.callbacks.throughput import TokenThroughputMonitor

__all__ = [
    "FinalCheckpoint",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "ParameterSummary",
    "RandomLTDScheduler",
    "RunSummary",
    "TokenThroughputMonitor",
]
