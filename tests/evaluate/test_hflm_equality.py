"""``lightning-ltd-eval``'s model against lm-eval's own ``HFLM`` on the same folders, request by
request, for every output type: log-likelihood (empty, spaced and over-long contexts), rolling
log-likelihood (several windows) and greedy generation (short prompts, and prompts whose
generation does not fit the model, which HFLM cuts once).

Two tokenizer conventions: GPT-2's (``<|endoftext|>`` is start, end and unknown; nothing is
added) and Llama's (``<s>`` added at the start, ``</s>`` the end). The GPT-2 folder is our GPT
exported by ``save_pretrained``, so our GPT with its KV cache is compared too, beside the folder
read as a Hugging Face model. HFLM has no masked-LM backend: a BERT is not compared here.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance

from lightning_ltd.data.vocabulary import HFVocabulary
from lightning_ltd.evaluate.harness_lm import harness_model
from lightning_ltd.evaluate.models import load_for_evaluation
from lightning_ltd.modules import GPTModule, HFCausalLMModule
from lightning_ltd.pretrained.tiny import tiny_llama, tiny_tokenizer

MAX_LENGTH = 48
TEXT = "The quick brown fox jumps over the lazy dog. " * 6 + "Def foo(x): return x + 1\n\nclass Bar:\n    pass"
PAIRS = [
    ("The capital of France is", " Paris"),
    ("x = ", "1 + 2"),  # a trailing space moves to the continuation
    ("", "no context at all"),  # conditioned on the prefix token
    (TEXT, " and then"),  # longer than the model: cut from the left
]
ROLLING = [("A short text.",), (TEXT,)]
GENERATE = [
    ("def f(x):", {"until": ["\n\n"], "max_gen_toks": 12, "do_sample": False}),
    ("The lazy dog", {"until": ["."], "max_gen_toks": 12, "do_sample": False}),
    ("Once", {"until": ["zzz"], "max_gen_toks": 10, "do_sample": False}),
    (TEXT, {"until": ["zzz"], "max_gen_toks": 16, "do_sample": False}),  # cut to MAX_LENGTH - 16 tokens
    (TEXT[:90], {"until": ["zzz"], "max_gen_toks": 16, "do_sample": False}),
]


def requests(kind: str, arguments: list[tuple]) -> list[Instance]:
    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(arguments)]


def answers(lm) -> dict[str, list]:
    return {
        "loglikelihood": lm.loglikelihood(requests("loglikelihood", PAIRS), disable_tqdm=True),
        "rolling": lm.loglikelihood_rolling(requests("loglikelihood_rolling", ROLLING), disable_tqdm=True),
        "generate": lm.generate_until(requests("generate_until", GENERATE), disable_tqdm=True),
    }


def assert_equal_answers(ours: dict[str, list], reference: dict[str, list]) -> None:
    for (logprob, greedy), (want, want_greedy) in zip(ours["loglikelihood"], reference["loglikelihood"], strict=True):
        assert logprob == pytest.approx(want, rel=1e-4) and greedy == want_greedy
    assert ours["rolling"] == pytest.approx(reference["rolling"], rel=1e-4)
    assert ours["generate"] == reference["generate"]
    assert any(text.strip() for text in reference["generate"])  # something was generated


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """Our GPT, exported; a GPT-2-style tokenizer beside it."""
    folder = tmp_path_factory.mktemp("gpt2_convention")
    vocab = tiny_tokenizer(folder, vocab_size=384, convention="gpt2")
    torch.manual_seed(0)
    module = GPTModule(vocab_size=vocab, block_size=MAX_LENGTH, n_layer=2, n_head=2, n_embd=32).eval()
    module.save_pretrained(folder)
    return folder, module


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("llama_convention"))


def reference(folder) -> dict[str, list]:
    from lm_eval.models.huggingface import HFLM  # imported when a test runs, not when the suite is collected

    return answers(HFLM(pretrained=str(folder), batch_size=3, max_length=MAX_LENGTH, device="cpu"))


@pytest.mark.slow  # about 10 s
def test_a_gpt2_folder_and_our_gpt_answer_as_hflm(gpt2_folder):
    folder, module = gpt2_folder
    expected = reference(folder)
    loaded = load_for_evaluation(None, str(folder))
    as_hf = harness_model(loaded.module, loaded.vocabulary, batch_size=3, max_length=MAX_LENGTH)
    assert_equal_answers(answers(as_hf), expected)
    ours = harness_model(module, HFVocabulary(str(folder)), batch_size=3, max_length=MAX_LENGTH)
    assert ours.prefix_token_id == ours.eot_token_id  # GPT-2: no start token of its own
    assert_equal_answers(answers(ours), expected)


@pytest.mark.slow  # about 10 s
def test_a_llama_folder_answers_as_hflm(llama_folder):
    loaded = load_for_evaluation(None, str(llama_folder))
    ours = harness_model(loaded.module, loaded.vocabulary, batch_size=3, max_length=MAX_LENGTH)
    tokenizer = loaded.vocabulary.tokenizer
    assert ours.prefix_token_id == tokenizer.bos_token_id != ours.eot_token_id == tokenizer.eos_token_id
    assert ours.tok_encode("Hi there")[0] == tokenizer.bos_token_id  # the start token, as the tokenizer adds it
    expected = reference(llama_folder)
    assert_equal_answers(answers(ours), expected)
    training = HFCausalLMModule(pretrained=str(llama_folder))  # a .ckpt's module: its middle blocks wrapped
    training.model.ltd_router.keep = 16  # a kept length set in training changes nothing in eval
    wrapped = harness_model(training, loaded.vocabulary, batch_size=3, max_length=MAX_LENGTH)
    assert_equal_answers(answers(wrapped), expected)
