"""``ParameterSummary``: Lightning's model summary without its FLOPs column."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table
from lightning.pytorch.utilities.rank_zero import rank_zero_info

FLOPS_COLUMN = "FLOPs"


class ParameterSummary(ModelSummary):
    """The layer table and parameter counts of ``ModelSummary``, without FLOPs.

    Lightning counts FLOPs on an ``example_input_array``, which our modules do not have, so its
    table shows 0 for every layer and ``Total Flops 0``. Training FLOPs at the current kept
    length are what ``TokenThroughputMonitor`` logs, from each module's exact count.
    """

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        columns = [column for column in summary_data if column[0] != FLOPS_COLUMN]
        table = _format_summary_table(
            total_parameters, trainable_parameters, model_size, total_training_modes, 0, *columns
        )
        rank_zero_info("\n" + table.rsplit("\n", 1)[0])  # the last line is "Total Flops"
