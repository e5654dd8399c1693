"""Train a random-LTD transformer: ``python train.py [group=option] [key=value ...]``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lightning_ltd.callbacks import NonFiniteLossError
from lightning_ltd.cli import ConfigError, train


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
