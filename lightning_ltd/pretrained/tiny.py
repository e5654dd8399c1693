"""Write small randomly initialised checkpoints in the reference formats, to try the
finetuning recipes without a network:

    python -m lightning_ltd.pretrained.tiny gpt2 DIR      # a Hugging Face GPT-2 directory (byte vocab)
    python -m lightning_ltd.pretrained.tiny vit FILE      # a timm ViT state dict (.safetensors or .pth)

They are written by our own exporters, which the test suite checks against transformers and timm.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning_ltd.modules import GPTModule, ViTModule


def tiny_gpt2(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 64, 128 positions, 256 byte tokens: fits ``data=text`` as is."""
    import torch

    torch.manual_seed(seed)
    return GPTModule(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=64).save_pretrained(path)


def tiny_vit(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 128 (2 heads of 64), 32x32 grey images in 4x4 patches, 10 classes: fits ``data=digits``."""
    import torch

    torch.manual_seed(seed)
    module = ViTModule(image_size=32, patch_size=4, in_channels=1, num_classes=10, n_layer=4, n_head=2, n_embd=128)
    return module.save_pretrained(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["gpt2", "vit"])
    parser.add_argument("path")
    args = parser.parse_args()
    written = tiny_gpt2(args.path) if args.kind == "gpt2" else tiny_vit(args.path)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
