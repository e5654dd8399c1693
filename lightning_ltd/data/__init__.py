"""LightningDataModules, with default data that needs no download."""

from lightning_ltd.data.images import DigitsDataModule, ImageFolderDataModule
from lightning_ltd.data.mlm import MLMDataModule
from lightning_ltd.data.text import ByteTokenizer, HFTokenizer, TextDataModule, default_corpus
from lightning_ltd.data.tokens import TokensDataModule
from lightning_ltd.errors import DataError

__all__ = [
    "ByteTokenizer",
    "DataError",
    "DigitsDataModule",
    "HFTokenizer",
    "ImageFolderDataModule",
    "MLMDataModule",
    "TextDataModule",
    "TokensDataModule",
    "default_corpus",
]
