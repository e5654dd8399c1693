"""LightningDataModules, with default data that needs no download."""

from lightning_ltd.data.images import DigitsDataModule, ImageFolderDataModule
from lightning_ltd.data.mlm import MLMDataModule
from lightning_ltd.data.text import TextDataModule, default_corpus
from lightning_ltd.data.tokens import TokensDataModule
from lightning_ltd.data.vocabulary import ByteVocabulary, HFVocabulary, Vocabulary
from lightning_ltd.errors import DataError

__all__ = [
    "ByteVocabulary",
    "DataError",
    "DigitsDataModule",
    "HFVocabulary",
    "ImageFolderDataModule",
    "MLMDataModule",
    "TextDataModule",
    "TokensDataModule",
    "Vocabulary",
    "default_corpus",
]
