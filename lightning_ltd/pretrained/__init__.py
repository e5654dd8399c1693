"""Pretrained weights: Hugging Face GPT-2 and BERT directories, timm ViT state dicts."""

from lightning_ltd.pretrained.io import PretrainedError, load_hf_directory, load_weight_file

__all__ = ["PretrainedError", "load_hf_directory", "load_weight_file"]
