"""``MeasuredFlops``: the FLOPs the Hugging Face and LitGPT modules report, against a count by
hand, against direct counts, and through ``train.py``'s throughput monitor."""

import csv
import warnings

import pytest
import torch
import transformers

from lightning_ltd import apply_random_ltd
from lightning_ltd.cli import train
from lightning_ltd.modules import HFCausalLMModule, HFMaskedLMModule
from lightning_ltd.modules.flops import MeasuredFlops
from lightning_ltd.pretrained.tiny import tiny_hf_bert, tiny_llama
from tests.modules.test_hf import compose_hf


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return HFCausalLMModule.from_pretrained(tiny_llama(tmp_path_factory.mktemp("llama")))


def by_hand(config, widths: list[int], seq_len: int) -> int:
    """Matmul FLOPs of one Llama row, forward and backward (3x forward), each layer at its own
    width: q, k, v, o and the SwiGLU MLP per token, scores and weighted values per pair of
    tokens, the LM head on every position."""
    d, f, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    kv = config.num_key_value_heads * d // config.num_attention_heads
    forward = 2 * seq_len * d * vocab
    for t in widths:
        forward += 2 * t * (2 * d * d + 2 * d * kv + 3 * d * f) + 2 * 2 * t * t * d
    return 3 * forward


@pytest.mark.parametrize(
    "keep", [pytest.param(k, marks=() if k == 16 else pytest.mark.slow) for k in (None, 7, 16, 32, 61, 64, 100)]
)
def test_llama_flops_equal_the_count_by_hand(llama, keep):
    config, layers = llama.model.config, llama.hparams.ltd_layers
    kept = 64 if keep is None or keep >= 64 else keep
    widths = [kept if i in layers else 64 for i in range(config.num_hidden_layers)]
    assert llama.training_flops(3, 64, keep) == 3 * by_hand(config, widths, 64)


@pytest.mark.slow  # about 3 s
def test_three_counts_per_width_give_every_kept_length(tmp_path):
    module = HFMaskedLMModule.from_pretrained(tiny_hf_bert(tmp_path / "bert"))
    flops = module.measured_flops
    for keep in (5, 17, 33, 48):
        assert flops(1, 48, keep) == flops.count(48, keep)  # interpolated, then counted directly
    assert len(flops._per_width) == 1  # one width: three counts in all


@pytest.mark.slow  # about 2 s
def test_counted_under_no_grad_too(llama):
    with torch.no_grad(), torch.inference_mode():
        assert llama.training_flops(1, 40, 20) == llama.measured_flops.count(40, 20)


def test_a_family_fake_tensors_cannot_run_is_unknown_not_a_crash():
    config = transformers.MixtralConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
    )  # fmt: skip
    flops = MeasuredFlops(lambda: apply_random_ltd(transformers.MixtralForCausalLM(config)), lambda n, x: n(x).logits)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert flops(2, 32, 16) is None and flops(2, 32, 24) is None
    assert len([w for w in caught if "model FLOPs are not counted" in str(w.message)]) == 1


@pytest.mark.slow  # about 3 s
def test_train_py_reports_model_flops_for_a_hugging_face_folder(tmp_path):
    folder = tiny_llama(tmp_path / "llama")
    train(compose_hf(tmp_path / "run", folder, "trainer.max_steps=8", "callbacks.throughput.window_size=2"))
    with open(next((tmp_path / "run").rglob("metrics.csv"))) as metrics:
        rows = [r for r in csv.DictReader(metrics) if r.get("train/device/flops_per_sec")]
    assert rows and all(float(r["train/device/flops_per_sec"]) > 0 for r in rows)
