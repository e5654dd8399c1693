"""Our GPT and BERT against tiny randomly initialised Hugging Face models (nothing downloaded)."""

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the [hf] extra (transformers) is not installed")

from lightning_ltd.modules import BERTModule, GPTModule  # noqa: E402
from lightning_ltd.pretrained import PretrainedError  # noqa: E402
from lightning_ltd.pretrained.io import load_weight_file, save_weight_file  # noqa: E402


def tiny_gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=4, n_embd=32, n_head=4, vocab_size=101, n_positions=64, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0
    )
    return transformers.GPT2LMHeadModel(config).eval()


def tiny_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        num_hidden_layers=4,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=128,
        vocab_size=103,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return transformers.BertForMaskedLM(config).eval()


@pytest.mark.parametrize("safe", [True, False])
def test_gpt2_logits_equal_the_reference(tmp_path, safe):
    reference = tiny_gpt2()
    reference.save_pretrained(tmp_path, safe_serialization=safe)
    ours = GPTModule.from_pretrained(tmp_path, dropout=0.0).eval()
    assert ours.model.config.ltd_layers == [1, 2]
    idx = torch.randint(0, 101, (2, 24))
    ours.keep = 5  # dropping is configured but eval mode is the plain model
    torch.testing.assert_close(ours(idx), reference(idx).logits)


def test_gpt2_export_round_trip(tmp_path):
    reference = tiny_gpt2()
    reference.save_pretrained(tmp_path / "in")
    ours = GPTModule.from_pretrained(tmp_path / "in", dropout=0.0)
    with torch.no_grad():  # as if finetuned
        for p in ours.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ours.save_pretrained(tmp_path / "out")
    back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "out").eval()
    idx = torch.randint(0, 101, (2, 24))
    torch.testing.assert_close(back(idx).logits, ours.eval()(idx))


def test_bert_logits_equal_the_reference_with_padding(tmp_path):
    reference = tiny_bert()
    reference.save_pretrained(tmp_path)
    ours = BERTModule.from_pretrained(tmp_path, dropout=0.0).eval()
    ids = torch.randint(0, 103, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 12:] = 0
    mask[2, 5:] = 0
    expected = reference(input_ids=ids, attention_mask=mask).logits
    ours.keep = 4
    got = ours(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real])


def test_bert_export_round_trip(tmp_path):
    reference = tiny_bert()
    reference.save_pretrained(tmp_path / "in")
    ours = BERTModule.from_pretrained(tmp_path / "in", dropout=0.0)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ours.save_pretrained(tmp_path / "out")
    back = transformers.BertForMaskedLM.from_pretrained(tmp_path / "out").eval()
    ids = torch.randint(0, 103, (2, 16))
    torch.testing.assert_close(back(input_ids=ids).logits, ours.eval()(ids))


def test_bad_keys_and_shapes_listed_in_one_error(tmp_path):
    tiny_gpt2().save_pretrained(tmp_path)
    state = load_weight_file(tmp_path / "model.safetensors")
    del state["transformer.h.1.ln_1.bias"]
    state["transformer.h.0.attn.extra"] = torch.zeros(3)
    state["transformer.wpe.weight"] = torch.zeros(10, 32)
    save_weight_file(tmp_path / "model.safetensors", state)
    with pytest.raises(PretrainedError) as err:
        GPTModule.from_pretrained(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "\n" not in message
    assert "missing: transformer.h.1.ln_1.bias" in message
    assert "unexpected: transformer.h.0.attn.extra" in message
    assert "shape mismatch: transformer.wpe.weight: checkpoint (10, 32) vs model (64, 32)" in message


def test_missing_directory_and_wrong_family_named(tmp_path):
    with pytest.raises(PretrainedError, match="no such directory"):
        GPTModule.from_pretrained(tmp_path / "nope")
    tiny_bert().save_pretrained(tmp_path)
    with pytest.raises(PretrainedError, match="model_type='bert' is not 'gpt2'"):
        GPTModule.from_pretrained(tmp_path)


def test_lightning_checkpoint_does_not_need_the_source_again(tmp_path):
    tiny_gpt2().save_pretrained(tmp_path / "hf")
    module = GPTModule.from_pretrained(tmp_path / "hf", dropout=0.0)
    assert module.hparams.n_layer == 4 and module.hparams.vocab_size == 101
    checkpoint = {"hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["hyper_parameters"]["pretrained"] is None
    rebuilt = GPTModule(**checkpoint["hyper_parameters"])
    assert rebuilt.model.config.n_layer == 4


def test_pretrained_bert_with_its_own_vocabulary_trains_and_validates(tmp_path):
    """The MLM accuracy is sized from the loaded config (103 ids), not the argument's default (260)."""
    import lightning as L
    from torch.utils.data import DataLoader

    tiny_bert().save_pretrained(tmp_path)
    module = BERTModule.from_pretrained(tmp_path, ltd_layers=[1, 2])
    ids = torch.randint(5, 103, (8, 16))
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    rows = [
        {"input_ids": i, "attention_mask": torch.ones_like(i, dtype=torch.bool), "labels": y}
        for i, y in zip(ids, labels, strict=True)
    ]
    loader = DataLoader(rows, batch_size=4)
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(module, loader)
    (metrics,) = trainer.validate(module, loader, verbose=False)
    assert module.val_mlm_acc.num_classes == 103 and trainer.global_step == 1
    assert 0.0 <= metrics["val/mlm_acc"] <= 1.0


def test_broken_config_and_index_outside_the_folder_named(tmp_path):
    import json

    tiny_gpt2().save_pretrained(tmp_path / "gpt")
    (tmp_path / "gpt" / "config.json").write_text("{broken")
    with pytest.raises(PretrainedError, match=r"pretrained='.*gpt': config.json is not valid JSON"):
        GPTModule.from_pretrained(tmp_path / "gpt")
    tiny_gpt2().save_pretrained(tmp_path / "sharded")
    weights = tmp_path / "sharded" / "model.safetensors"
    weights.rename(tmp_path / "elsewhere.safetensors")
    index = {"weight_map": {"transformer.wte.weight": "../elsewhere.safetensors"}}
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(PretrainedError, match=r"names '\.\./elsewhere\.safetensors', outside the folder"):
        GPTModule.from_pretrained(tmp_path / "sharded")
