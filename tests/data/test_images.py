import re

import pytest
import torch
from PIL import Image

from lightning_ltd.data import DataError, DigitsDataModule, ImageFolderDataModule
from lightning_ltd.data.images import split_per_class


def test_digits_are_real_fixed_and_stratified():
    dm = DigitsDataModule(image_size=16, batch_size=32)
    dm.setup()
    images, labels = dm.train_set.tensors
    val_images, val_labels = dm.val_set.tensors
    assert len(labels) + len(val_labels) == 1797
    assert images.shape[1:] == (1, 16, 16)
    assert torch.bincount(val_labels).min() >= 35  # every class in validation
    again = DigitsDataModule(image_size=16, batch_size=32, seed=99)
    again.setup()
    assert torch.equal(again.val_set.tensors[0], val_images)  # the split does not depend on the seed
    assert abs(images.mean().item()) < 1e-4  # normalised with the training statistics


def test_split_per_class_never_overlaps():
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 2, 2])
    train, val = split_per_class(labels, 2)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(labels[val].tolist()) == [0, 0, 1, 1, 2]


def make_folder(root, classes=("cat", "dog"), per_class=5):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 10), color=(40 * c + i, 100, 200)).save(root / name / f"{i}.png")
    return root


def test_image_folder_reads_classes(tmp_path):
    root = make_folder(tmp_path / "images")
    dm = ImageFolderDataModule(str(root), channels=3, image_size=8, batch_size=2, val_every=5)
    dm.setup()
    assert dm.classes == ["cat", "dog"]
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 3, 8, 8) and labels.dtype == torch.long
    assert len(dm.train_set) == 8 and len(dm.val_set) == 2


@pytest.mark.parametrize(
    "prepare, message",
    [
        (lambda root: None, "no such directory"),
        (lambda root: root.mkdir(), "no images"),
        (lambda root: make_folder(root, classes=("only",)), "only one class ('only')"),
        (lambda root: (make_folder(root), (root / "cat" / "broken.png").write_bytes(b"nope")), "not a readable image"),
    ],
)
def test_image_folder_errors_name_the_path(tmp_path, prepare, message):
    root = tmp_path / "images"
    prepare(root)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        ImageFolderDataModule(str(root), image_size=8, batch_size=1).setup()
    assert str(root) in str(err.value) and "\n" not in str(err.value)
