import pytest
import torch

from lightning_ltd.models import BERT, BERTConfig

V, T = 60, 16


def tiny(**kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("dropout", 0.0)
    return BERT(BERTConfig(vocab_size=V, block_size=32, n_layer=4, n_head=2, n_embd=16, **kwargs), seed=3)


def batch_with_padding():
    ids = torch.randint(0, V, (4, T))
    lengths = torch.tensor([16, 9, 4, 2])
    mask = torch.arange(T)[None, :] < lengths[:, None]
    return ids.masked_fill(~mask, 0), mask


def test_hf_names_and_tied_decoder():
    model = tiny()
    keys = set(model.state_dict())
    for name in (
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "encoder.layer.1.attn.c_attn.weight",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.LayerNorm.bias",
        "cls.predictions.bias",
    ):
        assert name in keys, name
    assert model.cls.predictions.decoder.weight is model.embeddings.word_embeddings.weight


@pytest.mark.parametrize("pre_norm", [False, True])
def test_eval_equals_plain_model(pre_norm):
    model, plain = tiny(pre_norm=pre_norm), tiny(pre_norm=pre_norm, ltd_layers=[])
    plain.load_state_dict(model.state_dict())
    ids, mask = batch_with_padding()
    model.keep = 3
    torch.testing.assert_close(model.eval()(ids, mask), plain.eval()(ids, mask), rtol=0, atol=0)


def test_real_tokens_do_not_depend_on_padding_with_dropping():
    model = tiny()
    model.keep = 5
    model.train()
    ids, mask = batch_with_padding()
    captured = {}

    def leaf(module, args, output):
        captured["x"] = output.detach().requires_grad_(True)
        return captured["x"]

    for _ in range(5):  # several draws: padding kept in some rows and layers, dropped in others
        handle = model.embeddings.register_forward_hook(leaf)
        logits = model(ids, mask)
        handle.remove()
        assert torch.isfinite(logits).all()
        logits[mask].sum().backward()
        grad = captured["x"].grad
        assert grad[~mask].abs().max() == 0
        assert grad[mask].abs().amax(-1).gt(0).all()


def test_rows_of_mostly_padding_stay_finite():
    model = tiny()
    model.keep = 2
    ids, mask = batch_with_padding()
    for _ in range(20):
        assert torch.isfinite(model(ids, mask)).all()


@pytest.mark.parametrize("keep", [None, 6])
def test_training_flops_match_measure_flops(keep):
    from lightning.fabric.utilities.throughput import measure_flops

    with torch.device("meta"):
        model = BERT(BERTConfig(vocab_size=V, block_size=32, n_layer=4, n_head=2, n_embd=16))
        ids, mask = torch.randint(0, V, (3, 20)), torch.ones(3, 20, dtype=torch.bool)
    model.keep = keep
    assert model.training_flops(3, 20, keep) == measure_flops(model, lambda: model(ids, mask), lambda y: y.sum())
