"""Train a random-LTD transformer: ``python train.py [group=option] [key=value ...]``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lightning_ltd.cli import run_hydra_job
from lightning_ltd.entry import launch


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    sys.exit(run_hydra_job(cfg))


if __name__ == "__main__":
    launch(main)  # a bad override is one line, exit 2; the run folder is locked before Hydra writes
