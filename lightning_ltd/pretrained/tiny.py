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


def tiny_tokenizer(path: str | Path, vocab_size: int = 512, specials: bool = False) -> int:
    """A byte-level BPE trained on the default corpus's first 300 kB, saved as transformers saves
    one; with ``specials``, BERT's four special tokens and ``[CLS] ... [SEP]`` around each text.
    Returns the vocabulary size."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    from lightning_ltd.data.text import default_corpus

    text = default_corpus(300_000).decode("utf-8", errors="replace").split("\n\n")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=vocab_size, special_tokens=list(SPECIALS) if specials else [])
    names: dict[str, str] = {}
    if specials:
        bpe.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[(t, bpe.token_to_id(t)) for t in ("[CLS]", "[SEP]")]
        )
        names = {"pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, **names)
    tokenizer.save_pretrained(str(path))
    return len(tokenizer)


def save_tiny_hf(path: str | Path, family: str, seed: int, specials: bool = False, **sizes: int) -> Path:
    """A tokenizer, then a randomly initialised ``transformers`` model of ``family`` sized to it."""
    import torch
    import transformers

    vocab = tiny_tokenizer(path, specials=specials)
    torch.manual_seed(seed)
    config = getattr(transformers, f"{family}Config")(vocab_size=vocab, hidden_size=64, intermediate_size=128, **sizes)
    model_class = getattr(transformers, f"{family}ForCausalLM" if family == "Llama" else f"{family}ForMaskedLM")
    model_class(config).save_pretrained(str(path))
    return Path(path)


def tiny_llama(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 64, grouped-query attention (4 heads, 2 KV heads), 256 positions, a 512-token
    BPE: fits ``model=hf_causal_lm data=text`` (and ``experiment=llama_finetune``) as is."""
    sizes = {"num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2}
    return save_tiny_hf(path, "Llama", seed, max_position_embeddings=256, use_cache=False, **sizes)


def tiny_hf_bert(path: str | Path, seed: int = 0) -> Path:
    """4 layers, width 64, 128 positions, a 512-token BPE with [PAD] [CLS] [SEP] [MASK]: fits
    ``model=hf_masked_lm data=mlm`` as is."""
    sizes = {"num_hidden_layers": 4, "num_attention_heads": 4, "max_position_embeddings": 128}
    return save_tiny_hf(path, "Bert", seed, specials=True, pad_token_id=0, **sizes)


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
