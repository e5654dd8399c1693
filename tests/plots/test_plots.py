"""``plots/`` after every run, read back through the figures' own data, and ``lightning-ltd-plot``."""

import csv
import json

import pytest

from lightning_ltd.cli import train
from lightning_ltd.plots import compare, draw_run, read_series
from lightning_ltd.plots.cli import main as plot_main
from tests.conftest import compose_train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny run with dropping and one without, 30 steps each, validating every 10."""
    out = {}
    for name, ltd in (("on", "ltd=on"), ("off", "ltd=off")):
        folder = tmp_path_factory.mktemp(name)
        train(compose_train(folder, ltd, "trainer.val_check_interval=10"))
        out[name] = folder
    return out


@pytest.mark.slow  # two runs, shared
def test_every_run_leaves_its_curves_and_figures(runs):
    folder = runs["on"]
    assert {p.name for p in (folder / "plots").iterdir()} == {"series.json", "val_loss.png", "keep.png", "lr.png"}
    assert all((folder / "plots" / name).stat().st_size > 10_000 for name in ("val_loss.png", "keep.png", "lr.png"))
    series = read_series(folder)
    with open(next(folder.rglob("metrics.csv"))) as metrics:
        rows = list(csv.DictReader(metrics))
    logged_val = [float(r["val/loss"]) for r in rows if r["val/loss"]]
    assert series["val"]["loss"] == pytest.approx(logged_val)  # the same validations the logger saw
    keeps = {int(r["step"]): float(r["train/keep"]) for r in rows if r["train/keep"]}
    assert all(series["train"]["keep"][step] == keep for step, keep in keeps.items())  # the logger's step s: batch s
    figures = draw_run(series)
    tokens_axes, time_axes = figures["val_loss"].axes
    assert list(tokens_axes.lines[0].get_xdata()) == series["val"]["layer_tokens"]
    assert list(time_axes.lines[0].get_ydata()) == series["val"]["loss"]
    assert list(figures["keep"].axes[0].lines[0].get_ydata()) == series["train"]["keep"]
    assert series["val"]["layer_tokens"] == sorted(series["val"]["layer_tokens"])  # compute only grows


@pytest.mark.slow  # two runs, shared
def test_dropping_reaches_each_validation_with_fewer_layer_tokens(runs):
    on, off = read_series(runs["on"]), read_series(runs["off"])
    assert on["val"]["step"] == off["val"]["step"]
    assert all(a < b for a, b in zip(on["val"]["layer_tokens"][1:], off["val"]["layer_tokens"][1:], strict=True))


@pytest.mark.slow  # two runs, shared
def test_lightning_ltd_plot_overlays_runs(runs, tmp_path):
    out = tmp_path / "cmp.png"
    assert plot_main([str(runs["on"]), str(runs["off"]), "--labels", "ltd=on", "ltd=off", "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000
    figure = compare({"ltd=on": read_series(runs["on"]), "ltd=off": read_series(runs["off"])})
    axes = figure.axes[0]
    assert [line.get_label() for line in axes.lines] == ["ltd=on", "ltd=off"]
    assert list(axes.lines[1].get_xdata()) == read_series(runs["off"])["val"]["layer_tokens"]


def test_bad_plot_inputs_are_one_line(tmp_path, capsys):
    (tmp_path / "broken" / "plots").mkdir(parents=True)
    (tmp_path / "broken" / "plots" / "series.json").write_text(json.dumps({"train": {}}))
    cases = [
        ([str(tmp_path / "nope")], "no such file"),
        ([str(tmp_path / "broken")], "not a run's series"),
        ([str(tmp_path / "broken"), "--labels", "a", "b"], "--labels: 2 labels for 1 runs"),
        ([], "the following arguments are required: runs"),
    ]
    for argv, message in cases:
        assert plot_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
