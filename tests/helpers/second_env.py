"""Interpreters of second environments, for libraries that cannot share this one (timm needs
torchvision; litgpt pins a huggingface-hub that breaks transformers 5)."""

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def second_python(module: str, env_var: str, folder: str) -> str | None:
    """This interpreter if it can import ``module``, else ``$env_var``, else ``ROOT/folder/bin/python``."""
    if importlib.util.find_spec(module) is not None:
        return sys.executable
    candidates = [os.environ.get(env_var), str(ROOT / folder / "bin" / "python")]
    return next((c for c in candidates if c and Path(c).is_file()), None)
