"""Image classification data: scikit-learn's bundled digits (no download) and image folders.

Both hold the whole dataset in memory as float tensors ``[N, C, H, W]`` (normalised with the
training set's mean and standard deviation) and labels ``[N]``; batches are ``(images, labels)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_ltd.data.loading import ResumableDataLoader, resumable_train_loader, sharded_eval_loader
from lightning_ltd.errors import DataError
from lightning_ltd.schema import HoldOut, PositiveInt, checked


def split_per_class(labels: torch.Tensor, val_every: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stratified split: within each class, every ``val_every``-th item is val."""
    rank_in_class = torch.zeros_like(labels)
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        rank_in_class[members] = torch.arange(len(members))
    is_val = rank_in_class % val_every == 0
    return (~is_val).nonzero().flatten(), is_val.nonzero().flatten()


class ImageDataModule(L.LightningDataModule):
    """Shared split, normalisation and loaders; subclasses implement ``load``.

    Args:
        image_size: images are resized to ``image_size x image_size``.
        batch_size: images per batch.
        val_every: within each class, every ``val_every``-th image is held out for validation.
        seed: shuffling seed.
    """

    @checked
    def __init__(
        self, image_size: PositiveInt = 32, batch_size: PositiveInt = 64, val_every: HoldOut = 5, seed: int = 0
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.batch_size = batch_size
        self.val_every = val_every
        self.seed = seed
        self.classes: list[str] = []
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def load(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """All images ``[N, C, H, W]`` in [0, 1] at ``image_size``, labels ``[N]``, class names."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        images, labels, self.classes = self.load()
        train, val = split_per_class(labels, self.val_every)
        mean, std = images[train].mean(), images[train].std().clamp_min(1e-6)
        images = (images - mean) / std
        self.train_set = TensorDataset(images[train], labels[train])
        self.val_set = TensorDataset(images[val], labels[val])
        if len(self.train_set) < self.batch_size:
            raise DataError(f"batch_size={self.batch_size} is more than the {len(self.train_set)} training images")

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.train_set is not None, "call setup() first"
        return resumable_train_loader(self.train_set, self.batch_size, self.seed, self.trainer)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        assert self.val_set is not None, "call setup() first"
        return sharded_eval_loader(self.val_set, self.batch_size, self.trainer)


class DigitsDataModule(ImageDataModule):
    """scikit-learn's handwritten digits: 1,797 real 8x8 grey images of 10 classes, bundled with
    the package (no download), upscaled bilinearly to ``image_size``."""

    def load(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        try:
            from sklearn.datasets import load_digits
        except ImportError as err:  # pragma: no cover - the [vision] extra installs it
            raise DataError("data=digits needs scikit-learn: pip install 'lightning-ltd[vision]'") from err
        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return images, torch.tensor(digits.target, dtype=torch.long), [str(d) for d in range(10)]


class ImageFolderDataModule(ImageDataModule):
    """One sub-folder per class (``path/cat/1.png``, ``path/dog/2.jpg``), read with Pillow.

    Args:
        path: the root folder.
        channels: 1 (grey) or 3 (RGB); images are converted.
        **kwargs: as ``ImageDataModule``.
    """

    @checked
    def __init__(self, path: str, channels: Literal[1, 3] = 3, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.channels = channels

    def load(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise DataError(f"path={self.path!r}: no such directory")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files = [(f, label) for label, name in enumerate(classes) for f in sorted((root / name).rglob("*"))]
        files = [(f, label) for f, label in files if f.is_file() and not f.name.startswith(".")]
        if not files:
            raise DataError(f"path={self.path!r}: no images (expected one sub-folder of images per class)")
        empty = [name for label, name in enumerate(classes) if not any(lab == label for _, lab in files)]
        if empty:
            raise DataError(f"path={self.path!r}: class folder(s) {', '.join(map(repr, empty))} hold no images")
        found = sorted({label for _, label in files})
        if len(found) < 2:
            raise DataError(f"path={self.path!r}: images of only one class ({classes[found[0]]!r}); need at least 2")
        images = torch.stack([self.read(f) for f, _ in files])
        return images, torch.tensor([label for _, label in files]), classes

    def read(self, file: Path) -> torch.Tensor:
        """One image as ``[C, H, W]`` floats in [0, 1]; an unreadable file is an error naming it."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(file) as image:
                image = image.convert("L" if self.channels == 1 else "RGB")
                image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
                data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"path={str(file)!r}: not a readable image ({type(err).__name__})") from err
        size = self.image_size
        return data.view(size, size, self.channels).permute(2, 0, 1).float() / 255.0
