"""Draws the method's two pictures for the docs from the package's own code (no hand-drawn data):
``docs/method_plan.png``, the tokens each layer of the default GPT keeps for one row at one step
(``TokenRouter``), and ``docs/method_mslg.png``, the default MSLG kept length per step
(``KeptLengthSchedule``).

    python benchmarks/draw_method.py [OUT_DIR]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from lightning_ltd.ltd import TokenRouter
from lightning_ltd.ltd.schedule import KeptLengthSchedule

N_LAYER, SEQ, KEEP, STEP = 6, 128, 48, 150  # the default run (conf/model/gpt_small.yaml, conf/ltd/on.yaml)


def plan_picture(out: Path) -> None:
    router = TokenRouter(N_LAYER - 2, keep=KEEP)
    router.set_counter(STEP)
    kept = router.plan(1, SEQ)[:, 0]  # [dropping layers, keep] for row 0
    grid = torch.ones(N_LAYER, SEQ)  # outer layers see every token
    grid[1:-1] = 0
    for layer, indices in enumerate(kept, start=1):
        grid[layer, indices] = 1
    figure, axes = plt.subplots(figsize=(10, 2.6))
    axes.imshow(grid.flip(0), aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1.4)
    axes.set(xlabel="token position", ylabel="layer", yticks=range(N_LAYER), yticklabels=reversed(range(N_LAYER)))
    axes.set_title(f"tokens each layer computes (dark), one row, step {STEP}: {KEEP} of {SEQ} in layers 1-4")
    figure.savefig(out / "method_plan.png", dpi=100, bbox_inches="tight")


def mslg_picture(out: Path) -> None:
    schedule = KeptLengthSchedule(True, 32, SEQ, 400, 8)
    steps = range(600)
    figure, axes = plt.subplots(figsize=(5, 3))
    axes.plot(steps, [schedule.keep_at(s) for s in steps])
    axes.set(xlabel="optimizer step", ylabel="kept tokens per row", title="MSLG: 32 -> 128 over 400 steps")
    figure.savefig(out / "method_mslg.png", dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    plan_picture(target)
    mslg_picture(target)
    print(f"wrote {target}/method_plan.png and {target}/method_mslg.png")
