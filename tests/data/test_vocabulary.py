"""One tokenizer abstraction: bytes, a Hugging Face folder and a shard folder's vocabulary."""

import pytest
import torch

from lightning_ltd.data.vocabulary import (
    CLS,
    SEP,
    ByteVocabulary,
    Vocabulary,
    masked_lm_vocabulary,
    shard_vocabulary,
)
from lightning_ltd.errors import DataError


def test_bytes_with_and_without_masked_lm_specials():
    plain, masked = ByteVocabulary(), ByteVocabulary(masked_lm=True)
    assert (plain.size, masked.size, masked.random_range) == (256, 260, 256)
    assert plain.missing_specials() == ["pad", "cls", "sep", "mask"] and masked.missing_specials() == []
    assert plain.decode(plain.encode("héllo")) == "héllo"
    assert masked.masked_row(b"abcdef", 5).tolist() == [CLS, 97, 98, 99, SEP]


def test_shard_vocabulary_and_a_missing_special_named():
    assert shard_vocabulary({"tokenizer": "bytes"}).size == 260
    bpe = shard_vocabulary({"tokenizer": "bpe", "vocab_size": 500, "specials": {"pad": 0, "cls": 1, "sep": 2}})
    assert bpe.size == 500 and torch.equal(bpe.special_ids_tensor, torch.tensor([0, 1, 2]))
    with pytest.raises(DataError, match=r"path='x': its vocabulary has no mask token\(s\)"):
        masked_lm_vocabulary(bpe, "path='x'")
    with pytest.raises(DataError, match="holds ids only"):
        Vocabulary(10).encode("text")


def test_hugging_face_folder(tmp_path):
    pytest.importorskip("transformers", reason="the [hf] extra (transformers) is not installed")
    from lightning_ltd.data.vocabulary import HFVocabulary
    from lightning_ltd.pretrained.tiny import tiny_tokenizer

    size = tiny_tokenizer(tmp_path / "tok", vocab_size=300, convention="bert")
    vocab = HFVocabulary(str(tmp_path / "tok"))
    ids = vocab.encode("hello world")
    assert vocab.size == size and all(0 <= i < size for i in ids) and "hello" in vocab.decode(ids)
    assert vocab.missing_specials() == [] and vocab.masked_row(b"hello", 4).tolist()[0] == vocab.cls
    with pytest.raises(DataError, match="no tokenizer in the folder"):
        HFVocabulary(str(tmp_path))


def test_text_in_another_encoding_is_refused_and_stray_bytes_are_replaced():
    """Latin-1 (every accented letter a lone byte) is another encoding; one stray byte in a large
    UTF-8 text is a crawl's noise, read as U+FFFD as Python's ``errors="replace"`` would."""
    from lightning_ltd.data.vocabulary import MAX_NON_UTF8_SHARE, NotUTF8Error, decode_utf8

    assert decode_utf8("naïve café".encode()) == "naïve café"
    with pytest.raises(NotUTF8Error, match=r"^not UTF-8 text: 2 of its 11 bytes are not UTF-8 \(the first at byte 2\)"):
        decode_utf8("naïve café.".encode("latin-1"))
    assert decode_utf8("café".encode()[:-1]) == "caf"  # a read capped inside a character: the cut one left out
    noisy = b"x" * int(1 / MAX_NON_UTF8_SHARE) + b"\xff" + "é\ufffd".encode()
    assert decode_utf8(noisy) == noisy.decode("utf-8", errors="replace")  # a literal U+FFFD is not counted
    with pytest.raises(NotUTF8Error):
        decode_utf8(b"\xff\xfe" + "text".encode("utf-16-le"))  # UTF-16: its byte-order mark is no UTF-8
