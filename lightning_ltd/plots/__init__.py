"""Pictures of runs: one run's curves (``RunPlots`` writes them), several runs overlaid
(``lightning-ltd-plot``)."""

from lightning_ltd.plots.draw import SERIES, compare, draw_run, read_series

__all__ = ["SERIES", "compare", "draw_run", "read_series"]
