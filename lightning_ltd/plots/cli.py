"""``lightning-ltd-plot RUN_DIR [RUN_DIR ...]``: several runs' validation loss on one figure,
against layer-tokens and wall time (``ltd=on`` against ``ltd=off`` is the comparison the method
is judged by)."""

from __future__ import annotations

import sys
from pathlib import Path

from lightning_ltd.console import CommandParser, boundary
from lightning_ltd.errors import writing
from lightning_ltd.plots.draw import compare, read_series


@boundary
def main(argv: list[str] | None = None) -> int:
    parser = CommandParser("lightning_ltd.plots.cli", __doc__)
    parser.add_argument("runs", nargs="+", help="run folders (each with plots/series.json)")
    parser.add_argument("--labels", nargs="+", help="one label per run (default: the folders' names)")
    parser.add_argument("-o", "--out", default="ltd_comparison.png", help="the figure (PNG)")
    args = parser.parse_args(argv)
    labels = args.labels or [Path(run).resolve().name for run in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"--labels: {len(labels)} labels for {len(args.runs)} runs")
    runs = {label: read_series(run) for label, run in zip(labels, args.runs, strict=True)}
    with writing(args.out):
        compare(runs, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
