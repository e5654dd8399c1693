import math

import pytest
import torch

from lightning_ltd.data.mlm import (
    IGNORE_INDEX,
    MLMDataModule,
    encode_segment,
    mask_sample,
    mask_tokens,
    pad_batch,
    split_segments,
)
from lightning_ltd.data.vocabulary import CLS, MASK, PAD, SEP


def test_masking_statistics():
    generator = torch.Generator().manual_seed(0)
    ids = torch.cat([torch.tensor([CLS]), torch.randint(0, 256, (200_000,)), torch.tensor([SEP])])
    inputs, labels = mask_tokens(ids, generator)
    selected = labels != IGNORE_INDEX
    n, p = 200_000, 0.15
    assert abs(selected.sum().item() - n * p) < 5 * math.sqrt(n * p * (1 - p))
    assert not selected[0] and not selected[-1]  # specials are never targets
    assert torch.equal(labels[selected], ids[selected])
    k = selected.sum().item()
    as_mask = (inputs[selected] == MASK).sum().item()
    unchanged = (inputs[selected] == ids[selected]).sum().item()
    assert abs(as_mask - 0.8 * k) < 5 * math.sqrt(k * 0.16)
    # a random replacement equals the original 1/256 of the time, which "unchanged" then counts too
    assert abs(unchanged - (0.1 + 0.1 / 256) * k) < 5 * math.sqrt(k * 0.09)
    random_replaced = selected & (inputs != MASK) & (inputs != ids)
    assert abs(random_replaced.sum().item() - 0.1 * (255 / 256) * k) < 5 * math.sqrt(k * 0.09)
    assert (inputs[~selected] == ids[~selected]).all()


def test_every_row_gets_a_target():
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        _, labels = mask_tokens(encode_segment(b"ab"), generator, mask_prob=0.01)
        assert (labels != IGNORE_INDEX).sum() >= 1


def test_padding_and_attention_mask():
    rows = [
        (encode_segment(b"hello world"), torch.full((13,), IGNORE_INDEX)),
        (encode_segment(b"hi"), torch.full((4,), 7)),
    ]
    batch = pad_batch(rows)
    assert batch["input_ids"].shape == (2, 13)
    assert batch["attention_mask"].sum(1).tolist() == [13, 4]
    assert (batch["input_ids"][1, 4:] == PAD).all() and (batch["labels"][1, 4:] == IGNORE_INDEX).all()


def test_segments_are_paragraphs_cut_to_length():
    corpus = b"first paragraph here\n\n" + b"x" * 25 + b"\n\n\n\nshort"
    assert split_segments(corpus, max_len=10, min_len=5) == [
        b"first para",
        b"graph here",
        b"x" * 10,
        b"x" * 10,
        b"x" * 5,
        b"short",
    ]


def test_masks_are_a_pure_function_of_seed_epoch_and_index():
    ids = encode_segment(b"some text to mask " * 3)
    first = mask_sample(ids, 3, 0, 7, 0.15)
    assert all(torch.equal(a, b) for a, b in zip(first, mask_sample(ids, 3, 0, 7, 0.15), strict=True))
    others = [mask_sample(ids, 3, epoch, index, 0.15)[1] for epoch, index in ((1, 7), (0, 8))]
    assert all(not torch.equal(first[1], other) for other in others)


def test_workers_and_epochs_do_not_repeat_masks_and_resume_exactly():
    """With the old collator every worker had the same generator: 4 of 4 batch pairs were equal."""
    dm = MLMDataModule(max_bytes=100_000, batch_size=8, num_workers=2)
    dm.setup()
    loader = dm.train_dataloader()
    epoch0 = [b["labels"] for _, b in zip(range(6), loader, strict=False)]
    assert len({tuple(labels.flatten().tolist()) for labels in epoch0}) == 6
    loader.sampler.set_epoch(1)
    iterator = iter(loader)
    epoch1 = [next(iterator)["labels"] for _ in range(3)]
    state = loader.state_dict()
    rest = [next(iterator)["labels"] for _ in range(3)]
    resumed = dm.train_dataloader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    again = [b["labels"] for _, b in zip(range(3), resumed, strict=False)]
    assert all(torch.equal(a, b) for a, b in zip(rest, again, strict=True))
    assert len({tuple(labels.flatten().tolist()) for labels in epoch0 + epoch1}) == 9


def test_datamodule_has_real_padding_and_fixed_val_masks():
    dm = MLMDataModule(max_bytes=100_000, batch_size=16)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    lengths = batch["attention_mask"].sum(1)
    assert lengths.min() < lengths.max() == batch["input_ids"].shape[1]
    first = next(iter(dm.val_dataloader()))
    again = next(iter(dm.val_dataloader()))
    assert torch.equal(first["input_ids"], again["input_ids"])


def test_bad_settings_named(tmp_path):
    with pytest.raises(ValueError, match=r"mask_prob=1\.5 must be a number in \(0, 1\)"):
        MLMDataModule(mask_prob=1.5)
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("one short paragraph only")
    with pytest.raises(ValueError, match="too few for batch_size=32"):
        MLMDataModule(path=str(tiny)).setup()


def test_wordpiece_tokenizer_vocabulary(tmp_path):
    transformers = pytest.importorskip("transformers", reason="the [hf] extra (transformers) is not installed")
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "a", "paragraph", "."]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    from tokenizers import BertWordPieceTokenizer

    specials = {f"{name}_token": f"[{name.upper()}]" for name in ("pad", "unk", "cls", "sep", "mask")}
    wordpiece = BertWordPieceTokenizer(str(vocab))
    transformers.PreTrainedTokenizerFast(tokenizer_object=wordpiece, **specials).save_pretrained(tmp_path / "tokenizer")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(["the quick brown fox jumps over the lazy dog ."] * 40 + ["a paragraph ."] * 40))
    dm = MLMDataModule(path=str(corpus), tokenizer=str(tmp_path / "tokenizer"), batch_size=8, min_len=4, val_every=4)
    dm.setup()
    assert dm.vocab_size == 16
    batch = next(iter(dm.train_dataloader()))
    assert (batch["input_ids"][:, 0] == 2).all()  # [CLS]
    real = batch["attention_mask"]
    assert (batch["input_ids"][~real] == 0).all() and real.sum(1).min() < real.sum(1).max()
    targets = batch["labels"] != IGNORE_INDEX
    assert targets.any() and not targets[:, 0].any()  # [CLS] is never a target
    with pytest.raises(ValueError, match="has no pad, cls, sep, mask token"):
        from tests.conftest import make_tokenizer

        MLMDataModule(tokenizer=str(make_tokenizer(tmp_path / "bpe")))
