import pytest
import torch

from lightning_ltd.data import DataError, TextDataModule, default_corpus
from lightning_ltd.data.text import pack_blocks, split_indices
from lightning_ltd.errors import InvalidFieldsError


def test_default_corpus_is_real_deterministic_text():
    corpus = default_corpus(200_000)
    assert len(corpus) == 200_000 and corpus == default_corpus(200_000)
    assert b"the" in corpus and b"def " in default_corpus()


def test_split_never_overlaps_and_is_deterministic():
    tokens = torch.arange(1000) % 256
    blocks = pack_blocks(tokens, 9)
    assert blocks.shape == (100, 10)
    assert torch.equal(blocks.flatten(), tokens[:1000])  # contiguous, no token in two blocks
    train, val = split_indices(100, 10)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(100))
    assert val == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("kind", ["file", "dir", "glob"])
def test_user_paths(tmp_path, kind):
    a = _write(tmp_path, "corpus/a.txt", "hello world " * 100)
    _write(tmp_path, "corpus/sub/b.txt", "second file " * 100)
    path = {"file": a, "dir": tmp_path / "corpus", "glob": tmp_path / "corpus" / "**" / "*.txt"}[kind]
    dm = TextDataModule(path=str(path), block_size=16, batch_size=2, val_every=4)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 17) and batch.dtype == torch.long
    total = len(dm.train_set) + len(dm.val_set)
    expected_bytes = 1200 if kind == "file" else 1200 + 2 + 1200
    assert total == expected_bytes // 17
    assert dm.tokenizer.decode(dm.val_set[0].tolist()) == (a.read_text()[:17])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing.txt", "no such file"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no files"),
        (lambda tmp: _write(tmp, "blank.txt", ""), "empty"),
        (lambda tmp: _write(tmp, "short.txt", "tiny"), "block"),
        (lambda tmp: tmp / "*.nothing", "matches no file"),
    ],
)
def test_bad_paths_give_one_line_naming_the_path(tmp_path, make, message):
    path = str(make(tmp_path))
    with pytest.raises(DataError, match=message) as err:
        TextDataModule(path=path, block_size=16, batch_size=1).setup()
    text = str(err.value)
    assert path in text and "\n" not in text and text.startswith("path=")


def test_bad_sizes_named():
    with pytest.raises(InvalidFieldsError, match="block_size=0"):
        TextDataModule(block_size=0)
    with pytest.raises(DataError, match="batch_size=64 is more than"):
        TextDataModule(path=None, block_size=64, batch_size=64, max_bytes=2000).setup()


def test_hf_tokenizer_from_a_local_directory(tmp_path):
    pytest.importorskip("transformers", reason="the [hf] extra (transformers) is not installed")
    from tests.conftest import make_tokenizer

    tokenizer_dir = make_tokenizer(tmp_path / "tokenizer", vocab_size=300)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    dm = TextDataModule(path=str(corpus), block_size=16, batch_size=2, tokenizer=str(tokenizer_dir))
    dm.setup()
    assert dm.tokenizer.vocab_size == 300
    block = dm.val_set[0]
    assert block.max() >= 256  # merged BPE tokens, not bytes
    assert dm.tokenizer.decode(block.tolist()).startswith("the quick brown fox")
    with pytest.raises(DataError, match="tokenizer='/nope': no such directory"):
        TextDataModule(tokenizer="/nope")
