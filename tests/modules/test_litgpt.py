"""``model=litgpt`` through ``train.py``: in the LitGPT environment (``litgpt_module_checks.py``),
and here, where LitGPT is absent, as one line that says so."""

import os
import subprocess
from pathlib import Path

import pytest

from lightning_ltd.cli import ConfigError, build
from tests.conftest import compose_train
from tests.helpers.second_env import ROOT, second_python
from tests.ltd.test_litgpt import needs_litgpt

SCRIPT = Path(__file__).with_name("litgpt_module_checks.py")


@pytest.mark.slow  # a second Python: about 20 s
@needs_litgpt
def test_litgpt_trains_resumes_exactly_and_counts_flops_through_train_py(tmp_path):
    """Config names and checkpoint folders, exact resume, model FLOPs, bad input in one line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    python = second_python("litgpt", "LTD_LITGPT_PYTHON", ".venv-litgpt")
    done = subprocess.run([python, str(SCRIPT), str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "litgpt module checks passed" in done.stdout


def test_without_litgpt_it_is_one_line(tmp_path):
    pytest.importorskip("transformers")  # this environment: litgpt cannot live beside transformers 5
    try:
        import litgpt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("litgpt is installed here")
    with pytest.raises(ConfigError, match=r"^model.config='pythia-14m': LitGPT models need litgpt: pip install litgpt"):
        build(compose_train(tmp_path, "model=litgpt", "model.config=pythia-14m", tiny=False))
