"""Evaluation speed against lm-eval's own HFLM, per output type, on the same weights.

    python benchmarks/eval_speed.py [--device cpu|cuda] [--repeats 2]

Two models: our GPT (6 layers, width 256, 256 positions; ours runs the module with its KV cache,
HFLM its ``save_pretrained`` export as a GPT-2) and a Llama folder of the same size (both run the
folder; ours through ``HFCausalLMModule``). The requests come from the default corpus: 64
multiple-choice-like log-likelihoods, 16 rolling texts of about 700 tokens, 24 generations of up to
32 tokens (8 of them with prompts longer than the model, cut once). Each time is the best of
``--repeats``; the ratio is ours over HFLM's (the target: at most 1.2).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from lightning_ltd.data.text import default_corpus
from lightning_ltd.data.vocabulary import HFVocabulary
from lightning_ltd.evaluate.harness_lm import harness_model
from lightning_ltd.evaluate.models import load_for_evaluation
from lightning_ltd.modules import GPTModule
from lightning_ltd.pretrained.tiny import tiny_tokenizer

SIZE = {"layers": 6, "width": 256, "heads": 4, "positions": 256}


def workload() -> dict[str, list[Instance]]:
    text = default_corpus(400_000).decode("utf-8", errors="replace")
    words = text.split()
    pairs = [(" ".join(words[i : i + 20]), " " + " ".join(words[i + 20 : i + 23])) for i in range(0, 64 * 50, 50)]
    rolling = [(text[i : i + 3000],) for i in range(0, 16 * 3000, 3000)]
    prompts = [" ".join(words[i : i + 12]) for i in range(5000, 5000 + 16 * 40, 40)]
    prompts += [text[i : i + 2000] for i in range(200_000, 200_000 + 8 * 2000, 2000)]
    settings = {"until": ["\n\n"], "max_gen_toks": 32, "do_sample": False}

    def made(kind: str, arguments: list[tuple]) -> list[Instance]:
        return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(arguments)]

    return {
        "loglikelihood": made("loglikelihood", pairs),
        "loglikelihood_rolling": made("loglikelihood_rolling", rolling),
        "generate_until": made("generate_until", [(p, dict(settings)) for p in prompts]),
    }


def best_time(lm, kind: str, requests: list[Instance], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        getattr(lm, kind)(requests, disable_tqdm=True)
        times.append(time.perf_counter() - start)
    return min(times)


def llama_folder(folder: Path) -> Path:
    import transformers

    vocab = tiny_tokenizer(folder, vocab_size=1024, convention="llama")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=SIZE["width"],
        intermediate_size=4 * SIZE["width"],
        num_hidden_layers=SIZE["layers"],
        num_attention_heads=SIZE["heads"],
        max_position_embeddings=SIZE["positions"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    requests = workload()
    with tempfile.TemporaryDirectory() as tmp:
        gpt_dir = Path(tmp) / "gpt"
        vocab = tiny_tokenizer(gpt_dir, vocab_size=1024, convention="gpt2")
        torch.manual_seed(0)
        gpt = GPTModule(
            vocab_size=vocab,
            block_size=SIZE["positions"],
            n_layer=SIZE["layers"],
            n_head=SIZE["heads"],
            n_embd=SIZE["width"],
        ).eval()
        gpt.save_pretrained(gpt_dir)
        llama_dir = llama_folder(Path(tmp) / "llama")
        loaded = load_for_evaluation(None, str(llama_dir), device=args.device)
        pairs = {
            "our GPT (module, KV cache)": (
                harness_model(gpt, HFVocabulary(str(gpt_dir)), device=args.device),
                gpt_dir,
            ),
            "Llama folder": (harness_model(loaded.module, loaded.vocabulary, device=args.device), llama_dir),
        }
        print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; batch size 8")
        print("| model | output type | requests | ours (s) | HFLM (s) | ours / HFLM |\n|---|---|---|---|---|---|")
        for name, (ours, folder) in pairs.items():
            reference = HFLM(pretrained=str(folder), batch_size=8, device=args.device)
            for kind, batch in requests.items():
                mine, theirs = (best_time(lm, kind, batch, args.repeats) for lm in (ours, reference))
                print(f"| {name} | {kind} | {len(batch)} | {mine:.2f} | {theirs:.2f} | {mine / theirs:.2f} |")


if __name__ == "__main__":
    main()
