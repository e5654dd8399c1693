import re
from pathlib import Path

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


def test_notes_and_hidden_files_beside_the_images_are_skipped_as_torchvision_skips_them(tmp_path):
    root = make_folder(tmp_path / "images")
    (root / "cat" / "README.txt").write_text("where these came from\n")
    (root / "dog" / "Thumbs.db").write_bytes(b"\x00" * 64)
    (root / "dog" / ".hidden.png").write_bytes(b"not an image")
    (root / ".DS_Store").write_bytes(b"\x00" * 64)
    (root / "cat" / "UPPER.PNG").write_bytes((root / "cat" / "0.png").read_bytes())
    dm = ImageFolderDataModule(str(root), channels=3, image_size=8, batch_size=2, val_every=5)
    files, _, classes = dm.find()
    assert classes == ["cat", "dog"] and len(files) == 11
    assert all(f.suffix.lower() == ".png" and not f.name.startswith(".") for f in files)


def loose_images(root: Path) -> None:
    root.mkdir()
    for i in range(4):
        Image.new("L", (8, 8), color=i).save(root / f"{i}.png")


def other_files(root: Path) -> None:
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        (root / name / "0.heic").write_bytes(b"\x00" * 32)
    (root / "cat" / "notes.txt").write_text("notes")


@pytest.mark.parametrize(
    "prepare, message",
    [
        (lambda root: None, "no such directory"),
        (lambda root: root.mkdir(), "no images"),
        (lambda root: make_folder(root, classes=("only",)), "only one class ('only')"),
        (lambda root: (make_folder(root), (root / "cat" / "broken.png").write_bytes(b"nope")), "not a readable image"),
        (loose_images, "its images lie in the folder itself: put each class's images in a sub-folder of its own"),
        (other_files, "its class folders hold .heic, .txt files, and images end in .jpg, .jpeg, .png"),
    ],
)
def test_image_folder_errors_name_the_path(tmp_path, prepare, message):
    root = tmp_path / "images"
    prepare(root)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        ImageFolderDataModule(str(root), image_size=8, batch_size=1).setup()
    assert str(root) in str(err.value) and "\n" not in str(err.value)


def noisy_folder(root, per_class, size=24):
    generator = torch.Generator().manual_seed(0)
    for name in ("cat", "dog", "eel"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (size, size + 3, 3), generator=generator, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(root / name / f"{i}.png")
    return root


def test_image_folder_batches_equal_an_eager_decode_normalised_with_all_training_pixels(tmp_path):
    root = noisy_folder(tmp_path / "images", per_class=6)
    dm = ImageFolderDataModule(str(root), channels=3, image_size=16, batch_size=4, val_every=3, num_workers=2)
    dm.setup()
    eager = torch.stack([dm.read(Path(f)) for f in dm.train_set.files])
    assert dm.train_set.mean == pytest.approx(eager.mean().item(), rel=1e-6)
    assert dm.train_set.std == pytest.approx(eager.std().item(), rel=1e-5)
    expected = (eager - eager.mean()) / eager.std()
    index_of = {f: i for i, f in enumerate(dm.train_set.files)}
    batches = list(dm.train_dataloader())  # decoded in 2 worker processes
    seen = torch.cat([images for images, _ in batches])
    order = list(dm.train_dataloader().sampler)
    assert torch.allclose(seen, expected[[index_of[dm.train_set.files[i]] for i in order][: len(seen)]], atol=1e-5)
    assert len(dm.val_set) == 6 and next(iter(dm.val_dataloader()))[0].shape == (4, 3, 16, 16)


def test_image_folder_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """The datasets hold names and labels: tens of bytes per image, not C x H x W floats."""
    import pickle

    sizes = []
    for per_class in (4, 40):  # pickled as a spawned worker receives them
        dm = ImageFolderDataModule(
            str(noisy_folder(tmp_path / f"n{per_class}", per_class)), image_size=224, batch_size=2
        )
        dm.setup()
        sizes.append(len(pickle.dumps(dm.train_set)) + len(pickle.dumps(dm.val_set)))
    per_image = (sizes[1] - sizes[0]) / (3 * 36)
    assert per_image < 300  # an eager 3 x 224 x 224 float32 image is 602,112 bytes


def test_an_image_too_large_to_decode_is_named_before_training(tmp_path):
    root = make_folder(tmp_path / "images")
    Image.MAX_IMAGE_PIXELS, saved = 1000, Image.MAX_IMAGE_PIXELS  # 12 x 10 = 120 pixels: fine; 60 x 40 is a bomb
    try:
        Image.new("RGB", (60, 40)).save(root / "dog" / "huge.png")
        with pytest.raises(DataError, match=r"huge\.png'?: not a readable image \(DecompressionBombError\)"):
            ImageFolderDataModule(str(root), image_size=8, batch_size=1).setup()
    finally:
        Image.MAX_IMAGE_PIXELS = saved


@pytest.mark.parametrize("per_class, val_every", [(1, 5), (1, 2)])
def test_a_folder_too_small_to_train_on_is_named(tmp_path, per_class, val_every):
    """Every image goes to validation when no class has a second one: one DataError, not a
    division by zero in the normalisation."""
    make_folder(tmp_path / "images", per_class=per_class)
    module = ImageFolderDataModule(path=str(tmp_path / "images"), val_every=val_every, batch_size=1)
    with pytest.raises(DataError, match=f"val_every={val_every}: all 2 images go to validation"):
        module.setup()


def test_two_images_per_class_leave_one_to_train_on():
    train, val = split_per_class(torch.tensor([0, 0, 1, 1]), 5)
    assert train.tolist() == [1, 3] and val.tolist() == [0, 2]


def test_gif_images_are_read_at_their_first_frame(tmp_path):
    """Pillow reads GIF (torchvision's ImageFolder does not list it); an animated one is its first frame."""
    root = tmp_path / "gifs"
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(3):
            frames = [Image.new("L", (8, 8), color=50 * c + 10 * i + 100 * k) for k in range(2)]
            frames[0].save(root / name / f"{i}.gif", save_all=True, append_images=frames[1:])
    dm = ImageFolderDataModule(str(root), channels=1, image_size=8, batch_size=2, val_every=3)
    files, _, classes = dm.find()
    assert len(files) == 6 and classes == ["cat", "dog"]
    from lightning_ltd.data.images import read_image

    first = read_image(root / "dog" / "2.gif", channels=1, size=8)
    assert torch.allclose(first, torch.full((1, 8, 8), (50 + 20) / 255.0))
