"""Runs under an interpreter that has timm (see test_timm.py): builds or loads a tiny timm ViT.

    python timm_reference.py make  DIR SUFFIX   # random timm ViT -> DIR/timm{SUFFIX}, input, logits
    python timm_reference.py check DIR FILE     # load FILE into the same timm ViT -> DIR/check_logits.pt

Kept free of lightning_ltd imports: that environment has torch, torchvision and timm only.
"""

import sys
from pathlib import Path

import timm
import torch
from timm.models.vision_transformer import VisionTransformer

ARCH = {"img_size": 32, "patch_size": 8, "in_chans": 3, "num_classes": 7, "embed_dim": 128, "depth": 3, "num_heads": 2}


def make(out: Path, suffix: str) -> None:
    torch.manual_seed(0)
    model = VisionTransformer(**ARCH).eval()
    with torch.no_grad():  # timm zero-initialises the head: give it weights worth comparing
        model.head.weight.normal_(std=0.2)
        model.head.bias.normal_(std=0.2)
    images = torch.randn(4, 3, 32, 32)
    state = model.state_dict()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(out / f"timm{suffix}"))
    else:
        torch.save(state, out / f"timm{suffix}")
    with torch.no_grad():
        torch.save({"images": images, "logits": model(images), "timm": timm.__version__}, out / "reference.pt")


def check(out: Path, weights: Path) -> None:
    model = VisionTransformer(**ARCH).eval()
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        state = torch.load(weights, weights_only=True)
    model.load_state_dict(state, strict=True)
    images = torch.load(out / "reference.pt", weights_only=True)["images"]
    with torch.no_grad():
        torch.save(model(images), out / "check_logits.pt")


if __name__ == "__main__":
    command, directory, argument = sys.argv[1:4]
    if command == "make":
        make(Path(directory), argument)
    else:
        check(Path(directory), Path(argument))
