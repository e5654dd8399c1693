"""Our ViT against live timm. timm cannot be imported beside this project's CPU torch wheel
(it needs torchvision), so the reference runs in a second environment, found through
``LTD_TIMM_PYTHON`` or at ``.venv-timm/`` (``.ci/run`` creates it), and talks through files."""

import subprocess
from pathlib import Path

import pytest
import torch

from lightning_ltd.modules import ViTModule
from lightning_ltd.pretrained import PretrainedError
from tests.helpers.second_env import second_python

SCRIPT = Path(__file__).with_name("timm_reference.py")


PYTHON = second_python("timm", "LTD_TIMM_PYTHON", ".venv-timm")
needs_timm = pytest.mark.skipif(
    PYTHON is None,
    reason="no timm environment: set LTD_TIMM_PYTHON or create .venv-timm "
    "(pip install torch==2.14.1 torchvision==0.29.1 timm), as .ci/run does",
)


def run_reference(*args: str) -> None:
    subprocess.run([PYTHON, str(SCRIPT), *args], check=True, timeout=300)


@pytest.mark.slow  # a second Python with its own torch: about 9 s each
@needs_timm
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_vit_logits_equal_timm_and_export_loads_back(tmp_path, suffix):
    run_reference("make", str(tmp_path), suffix)
    reference = torch.load(tmp_path / "reference.pt", weights_only=True)
    ours = ViTModule.from_pretrained(tmp_path / f"timm{suffix}").eval()
    config = ours.model.config
    assert (config.image_size, config.patch_size, config.n_layer, config.n_head, config.num_classes) == (32, 8, 3, 2, 7)
    ours.keep = 3  # configured, but eval mode is the plain model
    torch.testing.assert_close(ours(reference["images"]), reference["logits"])

    with torch.no_grad():  # as if finetuned, then handed back to timm
        for p in ours.parameters():
            p.add_(0.01 * torch.randn_like(p))
    exported = ours.save_pretrained(tmp_path / f"finetuned{suffix}")
    run_reference("check", str(tmp_path), str(exported))
    torch.testing.assert_close(torch.load(tmp_path / "check_logits.pt", weights_only=True), ours(reference["images"]))


def test_not_a_vit_state_dict_named(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"something": torch.zeros(2)}, path)
    with pytest.raises(PretrainedError, match="not a timm ViT state dict"):
        ViTModule.from_pretrained(path)
    with pytest.raises(PretrainedError, match="no such file"):
        ViTModule.from_pretrained(tmp_path / "missing.pth")
