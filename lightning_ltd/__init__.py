"""lightning-ltd: random and layerwise token dropping (random-LTD) for Lightning transformers."""

from lightning_ltd.ltd import RandomLTD, TokenRouter, apply_random_ltd, layer_tokens_per_step, mslg_keep

__all__ = ["RandomLTD", "TokenRouter", "apply_random_ltd", "layer_tokens_per_step", "mslg_keep"]
__version__ = "0.1.0"
