"""``verify_random_ltd`` over 30 families (tiny random configs): exact, or refused in one line;
and the checks themselves fail where they should."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
import transformers
from torch import nn

from lightning_ltd import RandomLTD, apply_random_ltd
from lightning_ltd.ltd import families
from lightning_ltd.ltd.verify import VerificationError, check_causal, verify_random_ltd
from tests.helpers.family_catalogue import VARIANTS

QUICK = {"gemma2", "falcon-alibi", "t5-encoder", "gpt-neo", "mixtral-router-logits", "swin"}


@pytest.mark.parametrize(
    "variant",
    [pytest.param(v, id=v.name, marks=() if v.name in QUICK else pytest.mark.slow) for v in VARIANTS],
)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_every_family_is_exact_or_refused_in_one_line(variant, attn):
    variant = dataclasses.replace(variant, attn=attn)
    try:
        model = variant.build()
    except ValueError as err:  # a family without an sdpa path
        assert attn == "sdpa" and "attn_implementation" in str(err)
        return
    if variant.refused is None:
        differences = verify_random_ltd(apply_random_ltd(model), variant.inputs(padded=True))
        assert differences and max(differences.values()) < 1e-5
        return
    with pytest.raises(ValueError) as caught:
        verify_random_ltd(apply_random_ltd(model), variant.inputs(padded=True))
    assert variant.refused in str(caught.value) and "\n" not in str(caught.value)


def test_mixtral_router_logits_without_padding_train_on_the_kept_tokens():
    variant = next(v for v in VARIANTS if v.name == "mixtral-router-logits")
    model = apply_random_ltd(variant.build(), keep=16).train()
    inputs = variant.inputs(padded=False)
    verify_random_ltd(model, inputs)
    out = model(**inputs, labels=inputs["input_ids"])
    assert torch.isfinite(out.loss) and out.aux_loss > 0
    assert [logits.shape[0] for logits in out.router_logits] == [64, 32, 32, 64]  # 2 rows x (32 | 16 kept)


@pytest.fixture
def gpt_neo_without_its_rule(monkeypatch):
    name = "transformers.models.gpt_neo.modeling_gpt_neo.GPTNeoBlock"
    monkeypatch.delitem(families.BLOCK_RULES, name)
    return next(v for v in VARIANTS if v.name == "gpt-neo")


def test_an_unknown_family_with_a_window_of_its_own_is_caught(gpt_neo_without_its_rule):
    """GPT-Neo's local layers with the built-in refusal taken away: the check finds them."""
    model = apply_random_ltd(gpt_neo_without_its_rule.build(), layers=[1, 2])
    with pytest.raises(VerificationError, match=r"layer 'transformer\.h\.1' \(GPTNeoBlock\): kept outputs differ"):
        verify_random_ltd(model, gpt_neo_without_its_rule.inputs())


def test_gpt_neo_local_layers_are_refused_and_its_global_ones_wrapped():
    variant = next(v for v in VARIANTS if v.name == "gpt-neo")
    with pytest.raises(ValueError, match=r"'transformer\.h\.1' \(GPTNeoBlock\) cannot drop tokens exactly: its local"):
        apply_random_ltd(variant.build(), layers=[1, 2])
    model = apply_random_ltd(variant.build(), verify=True)  # the default: the global middle layer only
    assert [type(layer).__name__ for layer in model.transformer.h] == [
        "GPTNeoBlock",
        "GPTNeoBlock",
        "RandomLTD",
        "GPTNeoBlock",
    ]


class SlicedRotary(nn.Module):
    """Rotates by a table it slices to its input's length: positions 0..k-1 on kept tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.register_buffer("angle", torch.arange(64).float()[:, None] * torch.linspace(0.1, 1, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).view(*x.shape[:2], 3, 2, 4).unbind(2)
        cos, sin = self.angle[: x.shape[1]].cos(), self.angle[: x.shape[1]].sin()
        q, k = q * cos[:, None] + q.flip(-1) * sin[:, None], k * cos[:, None] + k.flip(-1) * sin[:, None]
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return x + out.transpose(1, 2).flatten(2)


def test_a_block_with_positions_of_its_own_is_caught():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Identity(), SlicedRotary(), SlicedRotary(), nn.Identity())
    apply_random_ltd(model, layers=[1, 2], blocks="")
    with pytest.raises(VerificationError, match=r"layer '1' \(SlicedRotary\): kept outputs differ"):
        verify_random_ltd(model, torch.randn(2, 32, 8))


def test_an_undeclared_per_token_argument_is_named_with_its_layer():
    class Gated(nn.Module):
        def forward(self, x, gate):
            return x * gate

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([Gated() for _ in range(3)])

        def forward(self, x):
            gate = torch.sigmoid(x.sum(-1, keepdim=True))
            for layer in self.layers:
                x = layer(x, gate)
            return x

    model = apply_random_ltd(Model(), layers=[1])
    with pytest.raises(VerificationError, match=r"layer 'layers\.1': RandomLTD: argument 'gate' .* declare it"):
        verify_random_ltd(model, torch.randn(2, 16, 4))
    model = apply_random_ltd(Model(), layers=[1], token_kwargs={"gate": 1})
    assert list(verify_random_ltd(model, torch.randn(2, 16, 4))) == ["layers.1"]


def test_the_causal_check_fails_on_unsorted_kept_tokens(monkeypatch):
    """Kept tokens run in reversed order through a block that is causal by its input order."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Identity(), SlicedRotary(), nn.Identity())
    apply_random_ltd(model, layers=[1], blocks="", keep=16)
    model.eval()
    model[1].training = True
    plan = model.ltd_router.layer_plan
    monkeypatch.setattr(model.ltd_router, "layer_plan", lambda *a, **k: plan(*a, **k).flip(-1))
    with pytest.raises(VerificationError, match="the model is causal, but dropping lets earlier outputs see"):
        check_causal(model, torch.randn(2, 32, 8), 32)


def test_the_model_is_left_as_it_was():
    variant = next(v for v in VARIANTS if v.name == "phi")
    model = apply_random_ltd(variant.build(), keep=24).train()
    model.ltd_router.set_counter(7, 3)
    verify_random_ltd(model, variant.inputs())
    assert model.training and all(m.training for m in model.modules())
    assert model.ltd_router.keep == 24 and int(model.ltd_router.counter) == 7 << 16 | 3 and model.ltd_router.fresh


def test_verify_true_needs_an_input_it_can_make():
    with pytest.raises(VerificationError, match=r"verify=True: no example input .* verify_random_ltd\(model"):
        apply_random_ltd(nn.Sequential(*[nn.Linear(4, 4) for _ in range(3)]), verify=True)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2
    )
    model = apply_random_ltd(transformers.LlamaForCausalLM(config), verify=True)
    assert isinstance(model.model.layers[1], RandomLTD)
