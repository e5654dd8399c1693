"""``apply_random_ltd`` on LitGPT's ``GPT``. litgpt pins ``huggingface-hub<1.4``, which breaks
transformers 5's import, so the checks (``litgpt_checks.py``) run in a second environment,
found through ``LTD_LITGPT_PYTHON`` or at ``.venv-litgpt/`` (``.ci/run`` creates it)."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.second_env import ROOT, second_python

SCRIPT = Path(__file__).with_name("litgpt_checks.py")
PYTHON = second_python("litgpt", "LTD_LITGPT_PYTHON", ".venv-litgpt")


needs_litgpt = pytest.mark.skipif(
    PYTHON is None,
    reason="no litgpt environment: set LTD_LITGPT_PYTHON or create .venv-litgpt "
    "(pip install torch==2.13.0 litgpt==0.5.13 hydra-core 'omegaconf<2.4'), as .ci/run does",
)


@pytest.mark.slow  # a second Python: about 10 s
@needs_litgpt
def test_litgpt_gpt_in_one_call_matches_the_unwrapped_model():
    """Kept widths, eval equality, causality by Jacobian, rotary rows of the original positions,
    20 AdamW steps, and gradients equal with checkpointing around the wrapper (both kinds)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([PYTHON, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "litgpt checks passed" in done.stdout


@pytest.mark.slow  # a second Python: about 8 s
@needs_litgpt
def test_the_readme_litgpt_example_runs_there():
    from tests.test_readme import FAMILIES, python_blocks, uses_litgpt

    (block,) = [b for b in python_blocks(FAMILIES) if uses_litgpt(b)]
    check = "\nassert logits.shape == (2, 32, 64) and model.ltd_router.keep == 16\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([PYTHON, "-c", block + check], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
