"""LightningDataModules, with default data that needs no download."""

from lightning_ltd.data.text import ByteTokenizer, DataError, TextDataModule, default_corpus

__all__ = ["ByteTokenizer", "DataError", "TextDataModule", "default_corpus"]
