"""Lightning callbacks: the random-LTD schedule, throughput and the run summary."""

from lightning_ltd.callbacks.schedule import RandomLTDScheduler
from lightning_ltd.callbacks.summary import RunSummary
from lightning_ltd.callbacks.throughput import TokenThroughputMonitor

__all__ = ["RandomLTDScheduler", "RunSummary", "TokenThroughputMonitor"]
