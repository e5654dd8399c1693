"""Figures from a run's series (``plots/series.json``): validation loss against layer-tokens
(the compute random-LTD saves) and against wall time, the kept length and LR against step.

matplotlib draws them (the ``bench`` extra); each function returns its figure so a test reads
the axes' data, and writes a PNG when given a path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning_ltd.errors import ConfigError, DataError

SERIES = "series.json"
"""The file in a run's ``plots/`` folder that holds its curves."""


def read_series(run_dir: str | Path) -> dict[str, Any]:
    """A run's series: ``RUN/plots/series.json`` (or the file itself), one line naming the path if not."""
    path = Path(run_dir)
    path = path if path.suffix == ".json" else path / "plots" / SERIES
    try:
        series = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise DataError([f"path={str(path)!r}: no such file (a run folder that trained with callbacks.plots)"]) from err
    except (OSError, ValueError) as err:
        raise DataError([f"path={str(path)!r}: not a run's series ({err})"]) from err
    if not isinstance(series, dict) or not {"train", "val"} <= series.keys():
        raise DataError([f"path={str(path)!r}: not a run's series (no train and val curves)"])
    return series


def pyplot() -> Any:
    """matplotlib's pyplot drawing to files, or one line naming the extra that installs it."""
    try:
        import matplotlib
    except ImportError as err:
        raise ConfigError("plots need matplotlib: pip install 'lightning-ltd[bench]'") from err

    matplotlib.use("Agg")  # files only: no display
    import matplotlib.pyplot as plt

    return plt


def draw_run(series: dict[str, Any], out_dir: str | Path | None = None) -> dict[str, Any]:
    """The run's three figures (``val_loss``, ``keep``, ``lr``), written as PNGs into ``out_dir``."""
    plt = pyplot()
    val, train = series["val"], series["train"]
    figures = {}
    figure, (by_tokens, by_time) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    by_tokens.plot(val["layer_tokens"], val["loss"], marker="o")
    by_tokens.set(xlabel="layer-tokens", ylabel="validation loss", title="against compute")
    by_time.plot(val["wall_time_s"], val["loss"], marker="o")
    by_time.set(xlabel="wall time (s)", title="against time")
    figures["val_loss"] = figure
    for name, label in (("keep", "kept tokens per row"), ("lr", "learning rate")):
        figure, axes = plt.subplots(figsize=(5, 4))
        axes.plot(train["step"], train[name])
        axes.set(xlabel="optimizer step", ylabel=label)
        figures[name] = figure
    save(figures, out_dir)
    return figures


def compare(runs: dict[str, dict[str, Any]], out: str | Path | None = None) -> Any:
    """Validation loss of several runs (label -> series) against layer-tokens and wall time."""
    plt = pyplot()
    figure, (by_tokens, by_time) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for label, series in runs.items():
        val = series["val"]
        by_tokens.plot(val["layer_tokens"], val["loss"], marker="o", label=label)
        by_time.plot(val["wall_time_s"], val["loss"], marker="o", label=label)
    by_tokens.set(xlabel="layer-tokens", ylabel="validation loss", title="against compute")
    by_time.set(xlabel="wall time (s)", title="against time")
    by_tokens.legend()
    if out is not None:
        figure.savefig(out, dpi=100, bbox_inches="tight")
    return figure


def save(figures: dict[str, Any], out_dir: str | Path | None) -> None:
    if out_dir is None:
        return
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(Path(out_dir) / f"{name}.png", dpi=100, bbox_inches="tight")
