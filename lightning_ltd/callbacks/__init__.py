"""Lightning callbacks: the random-LTD schedule and the run summary."""

from lightning_ltd.callbacks.schedule import RandomLTDScheduler
from lightning_ltd.callbacks.summary import RunSummary

__all__ = ["RandomLTDScheduler", "RunSummary"]
