"""Any local Hugging Face checkpoint folder as a trainable network (the ``[hf]`` extra; no network)."""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_ltd.console import log_records_held
from lightning_ltd.errors import first_line, is_number
from lightning_ltd.pretrained.io import PretrainedError


def dropout_fields(config: Any) -> list[str]:
    """The config's dropout probabilities, whatever the family calls them (Llama's
    ``attention_dropout``, GPT-2's ``resid_pdrop``, BERT's ``hidden_dropout_prob``, ...)."""
    return [name for name, value in vars(config).items() if ("dropout" in name or "pdrop" in name) and is_number(value)]


@contextmanager
def quiet_transformers() -> Iterator[list[logging.LogRecord]]:
    """No per-shard progress bars while reading or writing a folder (one run, one console), and
    transformers' log lines held back until the load succeeds: a folder it cannot load is our
    one-line error, not that line after its warnings about the same folder."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    hf_logging.get_logger("transformers")  # configured now, so its handler is the one held
    try:
        with log_records_held("transformers") as held:
            yield held
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_hf_model(
    path: str, auto_class: str, dropout: float | None = None, attn_implementation: str | None = "sdpa"
) -> nn.Module:
    """The model of a ``save_pretrained`` folder in float32 (master weights; the trainer's
    precision casts), in training mode, with every dropout probability set to ``dropout``
    (None: the checkpoint's own)."""
    try:
        import transformers
    except ImportError as err:
        raise PretrainedError(f"pretrained={path!r}: needs transformers: pip install 'lightning-ltd[hf]'") from err
    folder = Path(path)
    if not folder.is_dir():
        raise PretrainedError(f"pretrained={path!r}: no such directory (expected a save_pretrained folder)")
    if not (folder / "config.json").is_file():
        raise PretrainedError(f"pretrained={path!r}: no config.json")
    notes: list[logging.LogRecord] = []
    try:
        with quiet_transformers() as notes:
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
            for name in dropout_fields(config) if dropout is not None else []:
                setattr(config, name, dropout)
            kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
            model, loading = getattr(transformers, auto_class).from_pretrained(
                path, config=config, local_files_only=True, output_loading_info=True, **kwargs
            )
            if missing := missing_backbone_weights(model, loading["missing_keys"]):
                raise PretrainedError(f"pretrained={path!r}: {missing}")
    except (torch.OutOfMemoryError, PretrainedError):
        raise
    except load_errors() as err:
        reason = mismatched_shapes(notes) or first_line(err, 120)
        if attn_implementation is not None and "attention implementation" in str(err):  # sdpa on BLOOM, say
            reason = f"it has no attn_implementation={attn_implementation!r}: set model.attn_implementation=eager"
        raise PretrainedError(f"pretrained={path!r}: {auto_class} cannot load it ({reason})") from err
    return model.float().train()  # from_pretrained returns eval mode, which would neither drop tokens nor dropout


def missing_backbone_weights(model: nn.Module, missing: list[str]) -> str:
    """Which weights of the pretrained network itself the folder lacks ('' if none): transformers
    would start them from random values with only a log note, so a damaged or partial export
    trains as if pretrained. A new task head (a BERT body under ``ForMaskedLM``'s head, a ViT's
    classifier for other labels) is what fine-tuning expects, so only keys under the model's
    ``base_model_prefix`` count (all of them when the model is its own base)."""
    prefix = getattr(model, "base_model_prefix", "")
    body = [k for k in missing if k.startswith(f"{prefix}.")] if prefix and hasattr(model, prefix) else list(missing)
    if not body:
        return ""
    total = sum(1 for name, _ in model.state_dict().items() if not prefix or name.startswith(f"{prefix}."))
    more = f" and {len(body) - 1} more" if len(body) > 1 else ""
    return f"its weights lack {body[0]}{more} ({len(body)} of the network's {total}; they would start random)"


def mismatched_shapes(notes: list[logging.LogRecord]) -> str:
    """The weights whose shapes differ from ``config.json``'s, from transformers' load report
    (its exception says only "look at the above report", which is held back); '' if none."""
    found = []
    for record in notes:
        for line in record.getMessage().splitlines():
            key, _, rest = line.partition("|")
            shapes = re.search(r"ckpt: torch\.Size\((\[[^]]*\])\) vs model: ?torch\.Size\((\[[^]]*\])\)", rest)
            if "MISMATCH" in rest and shapes:
                found.append(f"{key.strip()} is {shapes.group(1)} in the weights, {shapes.group(2)} in config.json")
    return "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")


def load_errors() -> tuple[type[BaseException], ...]:
    """What a damaged or foreign folder raises from ``from_pretrained``: unreadable files
    (``OSError``), bad JSON or values (``ValueError``, ``KeyError``, ``TypeError``), weights that
    do not match the config (``RuntimeError``), a cut pickle (``UnpicklingError``, ``EOFError``)
    or a cut safetensors file (``SafetensorError``, not a subclass of any of these)."""
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError)
    errors += (pickle.UnpicklingError,)
    try:
        from safetensors import SafetensorError
    except ImportError:  # safetensors comes with transformers; without it no such file is read
        return errors
    return (*errors, SafetensorError)


def config_value(config: Any, *names: str) -> int:
    """The first of ``names`` that the config has (families spell sizes differently)."""
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise PretrainedError(f"config.json has none of {', '.join(names)}")


def save_tokenizer(source: str, target: Path) -> None:
    """Copy a tokenizer folder's tokenizer next to saved weights, so the folder is complete."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(str(target))
