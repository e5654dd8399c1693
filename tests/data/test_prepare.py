"""``python -m lightning_ltd.data.prepare``: exact token streams, the split, BPE round trips, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from lightning_ltd.data.prepare import SPLIT_UNIT, prepare, read_pieces
from lightning_ltd.data.text import default_corpus
from lightning_ltd.errors import ConfigError, DataError
from tests.conftest import make_tokenizer
from tests.helpers.locks import live_lock

ROOT = Path(__file__).resolve().parents[2]


def write_corpus(folder: Path, sizes=(70_000, 20_000, 5_000)) -> list[bytes]:
    """Documents cut from the default corpus (real text, unicode included), one file each."""
    text = default_corpus() + "é€😀 naïve\n".encode() * 50
    folder.mkdir(parents=True, exist_ok=True)
    docs, start = [], 0
    for i, size in enumerate(sizes):
        docs.append(text[start : start + size])
        (folder / f"doc{i}.txt").write_bytes(docs[-1])
        start += size
    return docs


def stream(folder: Path, meta: dict) -> np.ndarray:
    """Undo the split: re-interleave train and val units in the order ``prepare`` routed them."""
    parts = {
        split: np.concatenate([np.fromfile(folder / s["file"], dtype=meta["dtype"]) for s in meta[split]])
        for split in ("train", "val")
    }
    out, taken, unit = [], {"train": 0, "val": 0}, 0
    total = sum(len(p) for p in parts.values())
    fraction = meta["val_fraction"]
    while sum(taken.values()) < total:
        split = "val" if unit == 0 or int(unit * fraction) > int((unit - 1) * fraction) else "train"
        out.append(parts[split][taken[split] : taken[split] + SPLIT_UNIT])
        taken[split] += len(out[-1])
        unit += 1
    return np.concatenate(out).astype(np.int64)


def test_bytes_are_the_documents_joined_by_blank_lines(tmp_path):
    docs = write_corpus(tmp_path / "corpus")
    meta = prepare([str(tmp_path / "corpus")], str(tmp_path / "out"), val_fraction=0.1, progress=False)
    assert meta["vocab_size"] == 256 and meta["dtype"] == "uint8"
    expected = np.frombuffer(b"".join(d + b"\n\n" for d in docs), dtype=np.uint8)
    assert np.array_equal(stream(tmp_path / "out", meta), expected)
    val = sum(s["tokens"] for s in meta["val"])
    assert abs(val / len(expected) - 0.1) < 0.03  # a tenth, spread over the corpus


def test_shards_roll_over_at_the_size_limit(tmp_path):
    write_corpus(tmp_path / "corpus")
    meta = prepare([str(tmp_path / "corpus")], str(tmp_path / "out"), shard_tokens=SPLIT_UNIT * 5, progress=False)
    assert len(meta["train"]) > 3 and all(s["tokens"] <= SPLIT_UNIT * 5 for s in meta["train"])
    assert json.loads((tmp_path / "out" / "meta.json").read_text()) == meta


def test_pieces_never_split_a_character_and_rejoin_exactly(tmp_path, monkeypatch):
    from lightning_ltd.data import encoders as module

    monkeypatch.setattr(module, "PIECE_BYTES", 1000)
    text = ("é€😀" * 3000).encode()  # no newline: every cut falls back to a character boundary
    (tmp_path / "a.txt").write_bytes(text)
    pieces = list(read_pieces([tmp_path / "a.txt"]))
    assert b"".join(p for p, _ in pieces) == text and [end for _, end in pieces][-1]
    for piece, _ in pieces:
        piece.decode("utf-8")  # raises on a split character


def test_bpe_round_trip_and_stream(tmp_path):
    from tokenizers import Tokenizer

    docs = write_corpus(tmp_path / "corpus")
    meta = prepare([str(tmp_path / "corpus")], str(tmp_path / "out"), "bpe", vocab_size=600, progress=False)
    assert meta["vocab_size"] == 600 and meta["dtype"] == "uint16"
    assert {"eos", "pad", "cls", "sep", "mask"} <= set(meta["specials"])
    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer" / "tokenizer.json"))
    for text in ["Hello,  world!\n\n\tindented", "é€😀 naïve", docs[2].decode()]:
        assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text
    eos = meta["specials"]["eos"]
    tokens = stream(tmp_path / "out", meta).tolist()
    documents, current = [], []
    for token in tokens:
        if token == eos:
            documents.append(tokenizer.decode(current, skip_special_tokens=False))
            current = []
        else:
            current.append(token)
    assert documents == [d.decode() for d in docs]  # the prepared stream decodes to the corpus


def test_a_local_hugging_face_tokenizer_is_used_as_is(tmp_path):
    from transformers import AutoTokenizer

    folder = make_tokenizer(tmp_path / "tok", vocab_size=300)
    write_corpus(tmp_path / "corpus")
    meta = prepare([str(tmp_path / "corpus")], str(tmp_path / "out"), str(folder), progress=False)
    assert meta["vocab_size"] == len(AutoTokenizer.from_pretrained(folder)) and meta["tokenizer"] == str(folder)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file or directory"),
        ("empty", "the files are empty"),
        ("binary", "no text to tokenize"),
        ("whitespace", "the text is only whitespace"),
        ("not_empty_output", "exists and is not empty"),
        ("bad_tokenizer", "does not load as a tokenizer"),
        ("no_tokenizer", "no such directory"),
        ("fraction", "val_fraction=1.5 must be in (0, 1)"),
    ],
)
def test_bad_input_is_one_line_naming_the_path(tmp_path, case, message):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, sizes=(3000,))
    args = {"inputs": [str(corpus)], "output": str(tmp_path / "out"), "progress": False}
    if case == "missing":
        args["inputs"] = [str(tmp_path / "nope")]
    elif case == "empty":
        (tmp_path / "empty.txt").write_bytes(b"")
        args["inputs"] = [str(tmp_path / "empty.txt")]
    elif case == "binary":
        (tmp_path / "blob.bin").write_bytes(b"\x00\x01" * 100)
        args["inputs"] = [str(tmp_path / "blob.bin")]
    elif case == "whitespace":
        (tmp_path / "blank.txt").write_text(" \n\t\r\n" * 50_000)  # several pieces, all of them blank
        args["inputs"] = [str(tmp_path / "blank.txt")]
    elif case == "not_empty_output":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "keep.txt").write_text("mine")
    elif case == "bad_tokenizer":
        (tmp_path / "tok").mkdir()
        (tmp_path / "tok" / "tokenizer.json").write_text("{broken")
        args["tokenizer"] = str(tmp_path / "tok")
    elif case == "no_tokenizer":
        args["tokenizer"] = str(tmp_path / "nothing")
    else:
        args["val_fraction"] = 1.5
    with pytest.raises(DataError) as err:
        prepare(**args)
    assert message in str(err.value) and "\n" not in str(err.value)
    if case == "not_empty_output":
        assert (tmp_path / "out" / "keep.txt").read_text() == "mine"  # nothing overwritten
    if case in ("missing", "empty", "bad_tokenizer", "no_tokenizer"):
        assert repr(args["inputs"][0] if case in ("missing", "empty") else args["tokenizer"]) in str(err.value)


def test_the_bpe_sample_is_bounded_spread_over_the_corpus_and_whole_lines(tmp_path):
    from lightning_ltd.data.encoders import PIECE_BYTES, sample_text

    files = []
    for number in range(6):  # 6 files of 1.5 MB, each line naming its file
        path = tmp_path / f"part{number}.txt"
        line = f"file{number} " + "word " * 30 + "\n"
        path.write_text(line * (3 * PIECE_BYTES // 2 // len(line)))
        files.append(path)
    sample = list(sample_text(files, 3 * PIECE_BYTES))
    assert sum(len(piece) for piece in sample) <= 3 * PIECE_BYTES
    assert len(sample) == 3 and all(piece.endswith("\n") and piece.startswith("file") for piece in sample)
    assert {piece[:5] for piece in sample} == {"file0", "file2", "file4"}  # evenly spaced, first to last
    whole = list(sample_text(files[:1], 10 * PIECE_BYTES))
    assert "".join(whole) == files[0].read_text()  # within the budget: the whole corpus


def test_prepare_trains_the_bpe_on_a_sample_and_still_encodes_everything(tmp_path):
    from tokenizers import Tokenizer

    docs = write_corpus(tmp_path / "corpus")
    meta = prepare(
        [str(tmp_path / "corpus")], str(tmp_path / "out"), "bpe", vocab_size=400, bpe_sample_mb=0.001, progress=False
    )
    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer" / "tokenizer.json"))
    text = tokenizer.decode(stream(tmp_path / "out", meta).tolist(), skip_special_tokens=True)
    assert text == "".join(d.decode() for d in docs)  # byte-level: every byte encodes, sampled or not
    with pytest.raises(DataError, match=r"bpe_sample_mb=0 must be > 0"):
        prepare([str(tmp_path / "corpus")], str(tmp_path / "bad"), "bpe", bpe_sample_mb=0, progress=False)


@pytest.mark.slow  # a lock-holding process
def test_a_second_writer_into_a_folder_being_prepared_is_refused_and_the_first_ones_files_stay(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("words to tokenize. " * 500)
    out = tmp_path / "out"
    holder = live_lock(out)  # a prepare (or rarity, tiny, eval) run writing into it
    try:
        with pytest.raises(ConfigError, match=r"output='.*out': another process \(pid \d+ .*\) is writing into"):
            prepare([str(text)], str(out), progress=False)
        assert not (out / "meta.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert prepare([str(text)], str(out), progress=False)["bytes"] == len(text.read_bytes())  # free once it ended


@pytest.mark.parametrize("kind", ["bpe", "folder"])
def test_shards_whose_tokenizer_folder_changed_since_are_refused_naming_it(tmp_path, kind):
    from lightning_ltd.data.shards import read_meta

    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 300)
    folder = make_tokenizer(tmp_path / "tok") if kind == "folder" else None
    tokenizer = str(folder) if folder else "bpe"
    prepare([str(text)], str(tmp_path / "out"), tokenizer=tokenizer, vocab_size=300, progress=False)
    read_meta(str(tmp_path / "out"))  # as written: accepted
    changed = (folder or tmp_path / "out" / "tokenizer") / "tokenizer.json"
    changed.write_text(changed.read_text().replace('"the"', '"teh"', 1))
    with pytest.raises(DataError, match=r"records the tokenizer .*tok.* as it was when the shards were written"):
        read_meta(str(tmp_path / "out"))
