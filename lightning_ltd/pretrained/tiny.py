"""Write small randomly initialised checkpoints in the reference formats, to try the
finetuning recipes without a network:

    python -m lightning_ltd.pretrained.tiny gpt2 DIR      # a Hugging Face GPT-2 directory (byte vocab)
    python -m lightning_ltd.pretrained.tiny vit FILE      # a timm ViT state dict (.safetensors or .pth)
    python -m lightning_ltd.pretrained.tiny llama DIR     # a Hugging Face Llama folder with its BPE tokenizer
    python -m lightning_ltd.pretrained.tiny hf-bert DIR   # a Hugging Face BertForMaskedLM folder with its tokenizer

GPT-2 and ViT are written by our own exporters, which the test suite checks against transformers
and timm; Llama and BERT by transformers itself (the ``[hf]`` and ``[data]`` extras), with a
byte-level BPE tokenizer trained here on a sample of the default corpus.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_ltd.checks.lock import writer_of
from lightning_ltd.console import CommandParser, boundary
from lightning_ltd.errors import writing
from lightning_ltd.modules import GPTModule, ViTModule


def tiny_gpt2(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 64, 128 positions, 256 byte tokens: fits ``data=text`` as is."""
    import torch

    torch.manual_seed(seed)
    return GPTModule(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=64).save_pretrained(path)


def tiny_vit(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 128 (2 heads of 64), 32x32 grey images in 4x4 patches, 10 classes: fits ``data=digits``."""
    import torch

    torch.manual_seed(seed)
    module = ViTModule(image_size=32, patch_size=4, in_channels=1, num_classes=10, n_layer=4, n_head=2, n_embd=128)
    return module.save_pretrained(path)


SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
CONVENTIONS: dict[str, tuple[tuple[str, ...], dict[str, str], str | None]] = {
    "bare": ((), {}, None),
    "gpt2": (("<|endoftext|>",), dict.fromkeys(("bos_token", "eos_token", "unk_token"), "<|endoftext|>"), None),
    "llama": (("<s>", "</s>"), {"bos_token": "<s>", "eos_token": "</s>"}, "<s> $A"),
    "bert": (
        SPECIALS,
        {"pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"},
        "[CLS] $A [SEP]",
    ),
}
"""Special tokens, their roles, and what encoding adds: GPT-2's one ``<|endoftext|>`` (nothing
added), Llama's ``<s>`` added at the start and ``</s>`` to end, BERT's ``[CLS] ... [SEP]``."""


def tiny_tokenizer(path: str | Path, vocab_size: int = 512, convention: str = "bare") -> int:
    """A byte-level BPE trained on the default corpus's first 300 kB, saved as transformers saves
    one, with the special tokens of ``convention`` (``CONVENTIONS``). Returns the vocabulary size."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    from lightning_ltd.data.text import default_corpus

    specials, roles, template = CONVENTIONS[convention]
    text = default_corpus(300_000).decode("utf-8", errors="replace").split("\n\n")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=vocab_size, special_tokens=list(specials))
    if template is not None:
        used = [token for token in specials if token in template]
        bpe.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(token, bpe.token_to_id(token)) for token in used]
        )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, **roles)
    tokenizer.save_pretrained(str(path))
    return len(tokenizer)


def save_tiny_hf(path: str | Path, family: str, seed: int, convention: str, **sizes: Any) -> Path:
    """A tokenizer, then a randomly initialised ``transformers`` model of ``family`` sized to it,
    its config's start and end ids those of the tokenizer."""
    import torch
    import transformers

    vocab = tiny_tokenizer(path, convention=convention)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    ends = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(seed)
    config = getattr(transformers, f"{family}Config")(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, **{**ends, **sizes}
    )
    model_class = getattr(transformers, f"{family}ForCausalLM" if family == "Llama" else f"{family}ForMaskedLM")
    model_class(config).save_pretrained(str(path))
    return Path(path)


def tiny_llama(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 64, grouped-query attention (4 heads, 2 KV heads), 256 positions, a 512-token
    BPE that adds ``<s>`` and ends with ``</s>`` as Llama's does: fits ``model=hf_causal_lm
    data=text`` (and ``experiment=llama_finetune``) as is."""
    sizes = {"num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2}
    return save_tiny_hf(path, "Llama", seed, "llama", max_position_embeddings=256, use_cache=False, **sizes)


def tiny_hf_bert(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 64, 128 positions, a 512-token BPE with [PAD] [CLS] [SEP] [MASK]: fits
    ``model=hf_masked_lm data=mlm`` as is."""
    sizes = {"num_hidden_layers": 4, "num_attention_heads": 4, "max_position_embeddings": 128}
    return save_tiny_hf(path, "Bert", seed, "bert", pad_token_id=0, **sizes)


WRITERS = {"gpt2": tiny_gpt2, "vit": tiny_vit, "llama": tiny_llama, "hf-bert": tiny_hf_bert}


@boundary
def main(argv: Sequence[str] | None = None) -> None:
    parser = CommandParser("lightning_ltd.pretrained.tiny", __doc__)
    parser.add_argument("kind", choices=sorted(WRITERS))
    parser.add_argument("path")
    args = parser.parse_args(argv)
    with writer_of(args.path, "path"), writing(args.path):
        written = WRITERS[args.kind](args.path)
    print(f"wrote {written}")


if __name__ == "__main__":
    raise SystemExit(main())
