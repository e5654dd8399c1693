"""The harness's numbers against plain-PyTorch log-likelihoods of the same texts."""

import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("lm_eval")

import lm_eval
from lm_eval.api.instance import Instance

from lightning_ltd.data.vocabulary import ByteVocabulary
from lightning_ltd.evaluate import CausalHarnessLM, MaskedHarnessLM, task_manager
from lightning_ltd.modules import BERTModule, GPTModule

from .conftest import CLOZE, MULTIPLE_CHOICE


def tiny_gpt(block_size: int = 64) -> GPTModule:
    return GPTModule(n_layer=3, n_embd=32, n_head=2, block_size=block_size, seed=3).eval()


def plain_loglikelihood(model, context: str, continuation: str) -> tuple[float, bool]:
    """log p(continuation | context) by one forward over the bytes, and whether argmax picks it."""
    ids = list((context + continuation).encode())
    n = len(continuation.encode())
    with torch.no_grad():
        log_probs = F.log_softmax(model(torch.tensor([ids[:-1]])).float(), dim=-1)[0]
    target = torch.tensor(ids[-n:])
    tail = log_probs[-n:]
    return float(tail.gather(1, target[:, None]).sum()), bool((tail.argmax(-1) == target).all())


def requests(kind: str, *args: tuple) -> list[Instance]:
    return [Instance(request_type=kind, doc={}, arguments=a, idx=0) for a in args]


def test_loglikelihood_equals_one_plain_forward_per_request():
    model = tiny_gpt()
    lm = CausalHarnessLM(model, ByteVocabulary(), batch_size=3)
    pairs = [("The capital of France is", " Paris"), ("x", " = 1"), ("a longer context of several words", " end")]
    pairs += [("", "no context at all")]
    got = lm.loglikelihood(requests("loglikelihood", *pairs), disable_tqdm=True)
    for (context, continuation), (logprob, greedy) in zip(pairs, got, strict=True):
        if not context:  # the harness conditions an empty context on the end-of-text id (a newline for bytes)
            context = "\n"
        want, want_greedy = plain_loglikelihood(model, context, continuation)
        assert logprob == pytest.approx(want, abs=1e-4) and greedy == want_greedy


def test_a_context_longer_than_the_model_is_cut_from_the_left():
    model = tiny_gpt(block_size=16)
    lm = CausalHarnessLM(model, ByteVocabulary())
    context, continuation = "x" * 40 + "abcdefghij", " tail"
    ((logprob, _),) = lm.loglikelihood(requests("loglikelihood", (context, continuation)), disable_tqdm=True)
    ids = list((context + continuation).encode())[-17:]
    with torch.no_grad():
        log_probs = F.log_softmax(model(torch.tensor([ids[:-1]])), dim=-1)[0]
    want = sum(float(log_probs[i, ids[i + 1]]) for i in range(16 - 5, 16))
    assert logprob == pytest.approx(want, abs=1e-4)


def test_rolling_loglikelihood_scores_every_token_once_in_disjoint_windows():
    """Window k predicts tokens[kL:(k+1)L] from the L inputs before them (a newline first); the
    last, shorter window keeps a full L of context (the harness's documented scheme)."""
    model = tiny_gpt(block_size=16)
    lm = CausalHarnessLM(model, ByteVocabulary())
    text = "a text of forty-three bytes, three windows"
    (got,) = lm.loglikelihood_rolling(requests("loglikelihood_rolling", (text,)), disable_tqdm=True)
    tokens, width = list(text.encode()), 16
    shifted = [10, *tokens]  # shifted[i] is the input that predicts tokens[i]
    want = 0.0
    with torch.no_grad():
        for start in range(0, len(tokens), width):
            end = min(start + width, len(tokens))
            first = max(0, end - width)  # a full window ending at the last target
            log_probs = F.log_softmax(model(torch.tensor([shifted[first:end]])), dim=-1)[0]
            want += sum(float(log_probs[i - first, tokens[i]]) for i in range(start, end))
    assert got == pytest.approx(want, abs=1e-3)


def test_greedy_generation_equals_an_argmax_loop_and_stops_at_the_stop_string():
    model = tiny_gpt()
    lm = CausalHarnessLM(model, ByteVocabulary())
    (got,) = lm.generate_until(requests("generate_until", ("def f(x):", {"until": ["zzz"], "max_gen_toks": 12})))
    ids = list(b"def f(x):")
    with torch.no_grad():
        for _ in range(12):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    want = bytes(ids[9:]).decode("utf-8", errors="replace")
    assert got == want.split("zzz")[0]
    stop = want[3:5]
    (cut,) = lm.generate_until(requests("generate_until", ("def f(x):", {"until": [stop], "max_gen_toks": 12})))
    assert cut == want[: want.find(stop)]


@pytest.mark.slow  # about 1 s
def test_local_tasks_metrics_equal_plain_computation(local_tasks):
    """Multiple choice (acc, acc_norm) and cloze (perplexity, acc) through simple_evaluate."""
    model = tiny_gpt()
    lm = CausalHarnessLM(model, ByteVocabulary(), batch_size=4)
    manager = task_manager(["tiny_mc", "tiny_cloze"], str(local_tasks))
    results = lm_eval.simple_evaluate(
        model=lm, tasks=["tiny_mc", "tiny_cloze"], task_manager=manager, log_samples=False, bootstrap_iters=0
    )["results"]
    acc = acc_norm = 0
    for doc in MULTIPLE_CHOICE:
        scores = [plain_loglikelihood(model, doc["question"], " " + choice)[0] for choice in doc["choices"]]
        normalised = [s / len(c) for s, c in zip(scores, doc["choices"], strict=True)]  # characters of the choice
        acc += max(range(len(scores)), key=scores.__getitem__) == doc["answer"]
        acc_norm += max(range(len(scores)), key=normalised.__getitem__) == doc["answer"]
    assert results["tiny_mc"]["acc,none"] == pytest.approx(acc / len(MULTIPLE_CHOICE))
    assert results["tiny_mc"]["acc_norm,none"] == pytest.approx(acc_norm / len(MULTIPLE_CHOICE))
    cloze = [plain_loglikelihood(model, *last_word(doc["text"])) for doc in CLOZE]
    perplexity = math.exp(-sum(logprob for logprob, _ in cloze) / len(cloze))
    assert results["tiny_cloze"]["perplexity,none"] == pytest.approx(perplexity, rel=1e-4)
    assert results["tiny_cloze"]["acc,none"] == pytest.approx(sum(g for _, g in cloze) / len(cloze))


def last_word(text: str) -> tuple[str, str]:
    words = text.split(" ")
    return " ".join(words[:-1]), " " + words[-1]


def test_masked_lm_is_scored_by_pseudo_log_likelihood():
    """Each continuation token masked in turn, everything else visible (our BERT, bytes)."""
    model = BERTModule(n_layer=2, n_embd=32, n_head=2, block_size=64, vocab_size=260, seed=1).eval()
    vocab = ByteVocabulary(masked_lm=True)
    lm = MaskedHarnessLM(model, vocab, batch_size=5)
    pairs = [("Two plus two is", " four"), ("import", " os")]
    got = lm.loglikelihood(requests("loglikelihood", *pairs), disable_tqdm=True)
    for (context, continuation), (logprob, _) in zip(pairs, got, strict=True):
        row = [vocab.cls, *(context + continuation).encode(), vocab.sep]
        start = len(row) - 1 - len(continuation)
        want = 0.0
        with torch.no_grad():
            for position in range(start, len(row) - 1):
                masked = list(row)
                masked[position] = vocab.mask
                logits = model(torch.tensor([masked]), torch.ones(1, len(row), dtype=torch.long))
                want += float(F.log_softmax(logits[0, position], dim=-1)[row[position]])
        assert logprob == pytest.approx(want, abs=1e-4)


def test_masked_lm_refuses_generation_in_one_line():
    from lightning_ltd.evaluate.harness_lm import GenerationUnsupported

    model = BERTModule(n_layer=2, n_embd=32, n_head=2, block_size=32, vocab_size=260, seed=1).eval()
    lm = MaskedHarnessLM(model, ByteVocabulary(masked_lm=True))
    with pytest.raises(GenerationUnsupported, match="generation tasks need a causal model"):
        lm.generate_until(requests("generate_until", ("x", {"until": ["\n"]})))


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_batched_cached_generation_equals_one_row_at_a_time_without_a_cache(position):
    """Left-padded rows of different lengths, positions counted per row, keys and values cached:
    the same tokens as a full-window forward per token for each row alone."""
    from lightning_ltd.evaluate.generation import cached_greedy

    model = GPTModule(n_layer=3, n_embd=32, n_head=2, block_size=64, seed=3, position=position).eval()
    rows = [list(b"def f(x):"), list(b"a"), list(b"The quick brown fox jumps")]
    never = lambda tokens: False  # noqa: E731
    cached = cached_greedy(model.model, rows, 20, never)
    lm = CausalHarnessLM(model, ByteVocabulary())
    assert cached == [lm.uncached_greedy(row, 20, never) for row in rows]


def test_generation_longer_than_the_model_is_one_line():
    from lightning_ltd.errors import InvalidFieldsError

    lm = CausalHarnessLM(tiny_gpt(block_size=16), ByteVocabulary())
    with pytest.raises(InvalidFieldsError, match="max_gen_toks=16 must be below max_length=16"):
        lm.generate_until(requests("generate_until", ("x", {"until": ["zzz"], "max_gen_toks": 16})))
