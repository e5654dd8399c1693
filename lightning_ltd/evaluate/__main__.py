"""``python -m lightning_ltd.evaluate [key=value ...]``: the same as ``lightning-ltd-eval``."""

from lightning_ltd.evaluate.cli import eval_main

if __name__ == "__main__":
    eval_main()
