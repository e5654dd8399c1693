import pytest
import torch

from lightning_ltd import RandomLTD
from lightning_ltd.models import GPT, GPTConfig

T = 16


def tiny(**kwargs):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=4, n_head=2, n_embd=16, **kwargs), seed=1)


def test_default_dropping_layers_and_gpt2_names():
    model = tiny()
    assert model.config.ltd_layers == [1, 2]
    assert [isinstance(m, RandomLTD) for m in model.transformer.h] == [False, True, True, False]
    keys = set(model.state_dict())
    assert "transformer.h.1.attn.c_attn.weight" in keys and "transformer.h.1.mlp.c_proj.bias" in keys
    assert not any(".block." in k for k in keys)
    assert model.lm_head.weight is model.transformer.wte.weight


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_eval_equals_plain_model(position):
    model = tiny(position=position)
    plain = tiny(position=position, ltd_layers=[])
    plain.load_state_dict(model.state_dict())
    idx = torch.randint(0, 50, (2, T))
    model.keep = 4
    model.eval()
    torch.testing.assert_close(model(idx), plain.eval()(idx), rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(idx), plain(idx))  # and training mode really drops


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_causal_with_dropping(position):
    model = tiny(position=position)
    model.keep = 5
    model.train()
    emb = model.transformer.wte
    idx = torch.randint(0, 50, (3, T))
    for t in (0, 6, T - 2):
        inputs = emb(idx).detach().requires_grad_(True)
        model.transformer.wte = _Fixed(inputs)
        model(idx)[:, t].sum().backward()
        model.transformer.wte = emb
        assert inputs.grad[:, t + 1 :].abs().max() == 0
        assert inputs.grad[:, : t + 1].abs().max() > 0


class _Fixed(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, idx):
        return self.value


def test_config_names_bad_fields():
    with pytest.raises(ValueError, match=r"n_embd=10 must be divisible by n_head=3"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match=r"ltd_layers=\[5\]"):
        GPTConfig(n_layer=4, ltd_layers=[5])
    with pytest.raises(ValueError, match=r"n_layer=0 .*; position='alibi'"):
        GPTConfig(n_layer=0, position="alibi")


def test_too_long_input_rejected():
    with pytest.raises(ValueError, match="block_size"):
        tiny()(torch.zeros(1, 40, dtype=torch.long))


@pytest.mark.parametrize("keep", [None, 4, 10, 31])
def test_training_flops_match_measure_flops_on_meta(keep):
    from lightning.fabric.utilities.throughput import measure_flops

    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=4, n_head=2, n_embd=16))
        idx = torch.randint(0, 50, (3, 24))
    model.keep = keep
    measured = measure_flops(model, lambda: model(idx), lambda logits: logits.sum())
    assert model.training_flops(3, 24, keep) == measured
