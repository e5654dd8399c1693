"""LightningDataModules, with default data that needs no download."""

from lightning_ltd.data.images import DigitsDataModule, ImageFolderDataModule
from lightning_ltd.data.mlm import MLMDataModule
from lightning_ltd.data.text import ByteTokenizer, DataError, HFTokenizer, TextDataModule, default_corpus

__all__ = [
    "ByteTokenizer",
    "DataError",
    "DigitsDataModule",
    "HFTokenizer",
    "ImageFolderDataModule",
    "MLMDataModule",
    "TextDataModule",
    "default_corpus",
]
