"""Image classification data: scikit-learn's bundled digits (no download) and image folders.

Batches are ``(images [B, C, H, W], labels [B])``, normalised with the training set's mean and
standard deviation. The digits (1,797 of 8x8) are held in memory; an image folder keeps only its
file names and decodes each image when a batch needs it (in the data workers), so memory does
not grow with the number of images.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_ltd.checks.schema import Count, HoldOut, PositiveInt, Seed, checked
from lightning_ltd.data.loading import ResumableDataLoader, resumable_train_loader, sharded_eval_loader
from lightning_ltd.errors import DataError


def split_per_class(labels: torch.Tensor, val_every: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stratified split: within each class, every ``val_every``-th item is val."""
    rank_in_class = torch.zeros_like(labels)
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        rank_in_class[members] = torch.arange(len(members))
    is_val = rank_in_class % val_every == 0
    if bool(is_val.all()):  # every class too small to give one image to training
        raise DataError(
            f"val_every={val_every}: all {len(labels)} images go to validation (each class's 1st image, and every "
            f"{val_every}th after it, is held out); give each class at least 2 images"
        )
    return (~is_val).nonzero().flatten(), is_val.nonzero().flatten()


def max_image_pixels() -> int:
    """Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``): the size bound for the
    images a folder holds and for the size they are resized to alike."""
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 2**31)


class ImageDataModule(L.LightningDataModule):
    """Shared split, normalisation and loaders; subclasses implement ``load``.

    Args:
        image_size: images are resized to ``image_size x image_size``.
        batch_size: images per batch.
        val_every: within each class, every ``val_every``-th image is held out for validation.
        seed: shuffling seed.
    """

    produces = "images"  # the batches it serves, against the module's ``objective`` (checked at start)
    channels = 1

    @checked
    def __init__(
        self, image_size: PositiveInt = 32, batch_size: PositiveInt = 64, val_every: HoldOut = 5, seed: Seed = 0
    ) -> None:
        super().__init__()
        if image_size**2 > max_image_pixels():
            raise DataError(f"image_size={image_size} makes images of more than Pillow's {max_image_pixels():,} pixels")
        self.image_size = image_size
        self.batch_size = batch_size
        self.val_every = val_every
        self.seed = seed
        self.num_workers = 0
        self.classes: list[str] = []
        self.train_set: Dataset[Any] | None = None
        self.val_set: Dataset[Any] | None = None

    def load(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """All images ``[N, C, H, W]`` in [0, 1] at ``image_size``, labels ``[N]``, class names."""
        raise NotImplementedError

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        """The normalised training and validation sets (here: from ``load``, in memory)."""
        images, labels, self.classes = self.load()
        train, val = split_per_class(labels, self.val_every)
        mean, std = images[train].mean(), images[train].std().clamp_min(1e-6)
        images = (images - mean) / std
        return TensorDataset(images[train], labels[train]), TensorDataset(images[val], labels[val])

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set, self.val_set = self.datasets()
        if len(self.train_set) < self.batch_size:  # type: ignore[arg-type]
            raise DataError(f"batch_size={self.batch_size} is more than the {len(self.train_set)} training images")  # type: ignore[arg-type]

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.train_set is not None, "call setup() first"
        return resumable_train_loader(
            self.train_set, self.batch_size, self.seed, self.trainer, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        assert self.val_set is not None, "call setup() first"
        return sharded_eval_loader(self.val_set, self.batch_size, self.trainer, num_workers=self.num_workers)


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


class ImageFiles(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images decoded when indexed: ``(normalised [C, H, W], label)``. Holds file names only."""

    def __init__(self, files: list[Path], labels: list[int], decode: Any, mean: float = 0.0, std: float = 1.0) -> None:
        self.files = [str(f) for f in files]
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.decode = decode  # Path -> [C, H, W] in [0, 1]
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.decode(Path(self.files[index])) - self.mean) / self.std, self.labels[index]


NORMALISATION_SAMPLE = 1024
"""Training images (evenly spaced) whose pixels give an image folder's mean and std."""


class ImageFolderDataModule(ImageDataModule):
    """One sub-folder per class (``path/cat/1.png``, ``path/dog/2.jpg``), read with Pillow when a
    batch needs it (``num_workers`` processes decode in parallel); the normalisation comes from
    up to 1,024 evenly spaced training images, read once at setup.

    Args:
        path: the root folder.
        channels: 1 (grey) or 3 (RGB); images are converted.
        num_workers: DataLoader workers (they decode the images).
        **kwargs: as ``ImageDataModule``.
    """

    @checked
    def __init__(self, path: str, channels: Literal[1, 3] = 3, num_workers: Count = 0, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.channels = channels
        self.num_workers = num_workers

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        files, labels, self.classes = self.find()
        train, val = (split.tolist() for split in split_per_class(torch.tensor(labels), self.val_every))
        decode = functools.partial(read_image, channels=self.channels, size=self.image_size)
        train_set = ImageFiles([files[i] for i in train], [labels[i] for i in train], decode)
        mean, std = self.normalisation(train_set)
        train_set.mean, train_set.std = mean, std
        return train_set, ImageFiles([files[i] for i in val], [labels[i] for i in val], decode, mean, std)

    @staticmethod
    def normalisation(images: ImageFiles) -> tuple[float, float]:
        """Mean and std of the pixels of an evenly spaced sample, accumulated image by image."""
        step = max(1, len(images) // NORMALISATION_SAMPLE)
        total = squares = count = 0.0
        for index in range(0, len(images), step):
            pixels = images[index][0].double()
            total, squares, count = (
                total + float(pixels.sum()),
                squares + float((pixels**2).sum()),
                count + pixels.numel(),
            )
        mean = total / count
        return mean, max((squares / count - mean**2) * count / max(count - 1, 1), 1e-12) ** 0.5

    def find(self) -> tuple[list[Path], list[int], list[str]]:
        """Every image file, its label and the class names; folder problems name the path."""
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise DataError(f"path={self.path!r}: no such directory")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files = [(f, label) for label, name in enumerate(classes) for f in sorted((root / name).rglob("*"))]
        files = [(f, label) for f, label in files if is_image_name(f) and f.is_file()]
        if not files:
            found = skipped([root / name for name in classes], root)
            raise DataError(f"path={self.path!r}: no images (expected one sub-folder of images per class){found}")
        empty = [name for label, name in enumerate(classes) if not any(lab == label for _, lab in files)]
        if empty:
            raise DataError(f"path={self.path!r}: class folder(s) {', '.join(map(repr, empty))} hold no images")
        found = sorted({label for _, label in files})
        if len(found) < 2:
            raise DataError(f"path={self.path!r}: images of only one class ({classes[found[0]]!r}); need at least 2")
        for file, _ in files:
            self.check_header(file)
        return [f for f, _ in files], [label for _, label in files], classes

    @staticmethod
    def check_header(file: Path) -> None:
        """Open ``file``'s header only (no decoding): a file that is no image, or one too large
        to decode safely, is an error naming it before any training."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(file):
                pass
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            raise DataError(f"path={str(file)!r}: not a readable image ({type(err).__name__})") from err

    def read(self, file: Path) -> torch.Tensor:
        """One image as ``[C, H, W]`` floats in [0, 1]; an unreadable file is an error naming it."""
        return read_image(file, self.channels, self.image_size)


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
"""torchvision's ``ImageFolder`` extensions and GIF (Pillow reads its first frame): a class
folder's notes (``README.txt``) and the files an OS leaves (``.DS_Store``, ``Thumbs.db``) are
skipped as it skips them; a file that has such a name but is no image is still an error."""


def skipped(class_folders: list[Path], root: Path) -> str:
    """What a folder without images holds instead, for its error: images outside any class
    folder, or the kinds of file the class folders hold."""
    if not class_folders and any(is_image_name(f) for f in root.iterdir()):
        return "; its images lie in the folder itself: put each class's images in a sub-folder of its own"
    files = [f for folder in class_folders for f in folder.rglob("*") if f.is_file() and not f.name.startswith(".")]
    kinds = sorted({f.suffix.lower() or f.name for f in files})
    if not kinds:
        return ""
    shown = ", ".join(kinds[:5]) + (", ..." if len(kinds) > 5 else "")
    return f"; its class folders hold {shown} files, and images end in {', '.join(IMAGE_EXTENSIONS)}"


def is_image_name(file: Path) -> bool:
    """Whether ``file``'s name is an image's (an image extension, not hidden)."""
    return file.suffix.lower() in IMAGE_EXTENSIONS and not file.name.startswith(".")


def read_image(file: Path, channels: int, size: int) -> torch.Tensor:
    """``file`` as ``[channels, size, size]`` floats in [0, 1] (a plain function: data workers
    started by ``spawn`` receive it pickled, without the DataModule and its trainer)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((size, size), Image.Resampling.BILINEAR)
            data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise DataError(f"path={str(file)!r}: not a readable image ({type(err).__name__})") from err
    return data.view(size, size, channels).permute(2, 0, 1).float() / 255.0
