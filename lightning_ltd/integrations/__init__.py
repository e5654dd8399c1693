"""Random-LTD in other training loops: Hugging Face ``Trainer`` and TRL (``RandomLTDCallback``)."""

from lightning_ltd.integrations.hf_trainer import RandomLTDCallback

__all__ = ["RandomLTDCallback"]
