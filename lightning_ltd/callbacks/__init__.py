"""Lightning callbacks: the random-LTD schedule (and its pieces), throughput, the run summary, the
final checkpoint and the non-finite loss guard."""

from lightning_ltd.callbacks.budget import LayerTokenBudget
from lightning_ltd.callbacks.checkpoint import FinalCheckpoint
from lightning_ltd.callbacks.curriculum import Curriculum
from lightning_ltd.callbacks.guard import NonFiniteLossError, NonFiniteLossGuard
from lightning_ltd.callbacks.ledger import LayerTokenLogger
from lightning_ltd.callbacks.lr import ScheduledLR
from lightning_ltd.callbacks.model_summary import ParameterSummary
from lightning_ltd.callbacks.plots import RunPlots
from lightning_ltd.callbacks.preemption import PreemptionCheckpoint
from lightning_ltd.callbacks.progress import TrainingProgress
from lightning_ltd.callbacks.routing import RoutingDriver
from lightning_ltd.callbacks.schedule import RandomLTDScheduler
from lightning_ltd.callbacks.summary import RunSummary
from lightning_ltd.callbacks.throughput import TokenThroughputMonitor
from lightning_ltd.callbacks.validate_first import ValidateFirst
from lightning_ltd.callbacks.zero_shot import ZeroShotEvaluation

__all__ = [
    "Curriculum",
    "FinalCheckpoint",
    "LayerTokenBudget",
    "LayerTokenLogger",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "ParameterSummary",
    "PreemptionCheckpoint",
    "RandomLTDScheduler",
    "RoutingDriver",
    "RunPlots",
    "RunSummary",
    "ScheduledLR",
    "TokenThroughputMonitor",
    "TrainingProgress",
    "ValidateFirst",
    "ZeroShotEvaluation",
]
