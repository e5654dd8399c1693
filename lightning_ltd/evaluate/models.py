"""What to evaluate: the module of a Lightning checkpoint or of a Hugging Face folder, with the
vocabulary its training text was encoded with.

A checkpoint written by ``train.py`` names its module class (``run_fingerprint``'s
``model._target_``) and its tokenizer (``checkpoint["tokenizer"]``: ``bytes`` or a folder); an
older one without the record falls back on its data settings, and ``tokenizer=`` overrides both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from torch import nn

from lightning_ltd.callbacks.tokenizer import CHECKPOINT_KEY as TOKENIZER_KEY
from lightning_ltd.checks.checkpoint_layout import checkpoint_layout, read_checkpoint
from lightning_ltd.checks.fingerprint import CHECKPOINT_KEY as FINGERPRINT_KEY
from lightning_ltd.data.vocabulary import ByteVocabulary, HFVocabulary, Vocabulary, has_tokenizer
from lightning_ltd.errors import DataError, InvalidFieldsError, first_line
from lightning_ltd.modules.base import embedded_vocab_size


class ModelError(InvalidFieldsError):
    """A checkpoint or folder that cannot be evaluated (one line naming it)."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])


@dataclass
class Evaluated:
    """A module in eval mode, the vocabulary that reads its text, and where it came from."""

    module: nn.Module
    vocabulary: Vocabulary
    source: Path  # the checkpoint file or the pretrained folder


def load_for_evaluation(
    ckpt_path: str | None, pretrained: str | None, tokenizer: str | None = None, device: str = "cpu"
) -> Evaluated:
    """The model of ``ckpt_path`` or ``pretrained`` (exactly one), every dropping layer keeping
    every token (eval mode) and every dropout off."""
    if (ckpt_path is None) == (pretrained is None):
        raise ModelError("give ckpt_path=CHECKPOINT or model.pretrained=DIR (exactly one of them)")
    if ckpt_path is not None:
        return from_checkpoint(str(ckpt_path), tokenizer, device)
    return from_folder(str(pretrained), tokenizer, device)


def from_checkpoint(ckpt_path: str, tokenizer: str | None, device: str) -> Evaluated:
    location = Path(ckpt_path).expanduser()
    if checkpoint_layout(location) not in (None, "file"):
        raise ModelError(
            f"ckpt_path={ckpt_path!r}: a sharded (FSDP or DeepSpeed) checkpoint folder; consolidate it into one "
            "file first (Lightning's convert_zero_checkpoint_to_fp32_state_dict, or trainer.strategy with a full state)"
        )
    saved, problem = read_checkpoint(str(location))
    if saved is not None and saved.non_finite is not None and not saved.non_finite.startswith("optimizer_states"):
        problem = f"{saved.non_finite} holds a NaN or inf (train.py refuses it too): evaluate an earlier checkpoint"
    if problem is not None:
        raise ModelError(f"ckpt_path={ckpt_path!r}: {problem}")
    checkpoint = torch.load(location, map_location="cpu", weights_only=True, mmap=True)
    module = module_of_checkpoint(checkpoint, ckpt_path)
    recorded = tokenizer or checkpoint_tokenizer(checkpoint, module)
    vocabulary = vocabulary_for(recorded, module, f"ckpt_path={ckpt_path!r}")
    return Evaluated(module.to(device).eval(), vocabulary, location.resolve())


def module_of_checkpoint(checkpoint: dict[str, Any], ckpt_path: str) -> nn.Module:
    """The checkpoint's module class built from its hyperparameters, its weights loaded."""
    target = (checkpoint.get(FINGERPRINT_KEY) or {}).get("model._target_")
    if not isinstance(target, str):
        raise ModelError(
            f"ckpt_path={ckpt_path!r}: no model class recorded (not written by lightning-ltd's train.py); "
            "export its model with save_pretrained and evaluate model.pretrained=DIR"
        )
    try:
        cls = get_class(target)
    except Exception as err:
        raise ModelError(f"ckpt_path={ckpt_path!r}: its model class {target!r} cannot be imported ({err})") from err
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "compile" in hparams:
        hparams["compile"] = False  # eager: the harness's shapes vary row by row
    if "pretrained" in hparams and not getattr(cls, "auto_class", None):
        hparams["pretrained"] = None  # our own modules hold the adopted architecture in hparams
    try:
        module = cls(**hparams)
        module.load_state_dict(checkpoint["state_dict"])
    except (InvalidFieldsError, RuntimeError, TypeError, KeyError) as err:
        raise ModelError(f"ckpt_path={ckpt_path!r}: cannot rebuild its {cls.__name__} ({first_line(err)})") from err
    if not hasattr(module, "forward") or getattr(module, "objective", None) not in ("lm", "mlm"):
        raise ModelError(f"ckpt_path={ckpt_path!r}: its {cls.__name__} is not a language model (nothing to score)")
    return module


def checkpoint_tokenizer(checkpoint: dict[str, Any], module: nn.Module) -> str | None:
    """What encoded the checkpoint's training text: its record, a Hugging Face module's own
    tokenizer folder, or (older checkpoints) bytes where its text data had no tokenizer."""
    if isinstance(checkpoint.get(TOKENIZER_KEY), str):
        return checkpoint[TOKENIZER_KEY]
    hparams = getattr(module, "hparams", {})
    for folder in (hparams.get("tokenizer"), hparams.get("pretrained")):
        if isinstance(folder, str) and Path(folder).is_dir() and has_tokenizer(folder):
            return folder
    fingerprint = checkpoint.get(FINGERPRINT_KEY) or {}
    data = str(fingerprint.get("data._target_", ""))
    if data.endswith(("TextDataModule", "MLMDataModule")):
        tokenizer = recorded_setting(fingerprint, "data.tokenizer")
        return "bytes" if tokenizer is None else tokenizer
    return None


def recorded_setting(fingerprint: dict[str, Any], key: str) -> Any:
    """A fingerprint key's value with its interpolation resolved against the other recorded keys
    (``data.tokenizer: ${oc.select:model.tokenizer,null}`` is null where the model has none)."""
    from omegaconf import OmegaConf

    nested = OmegaConf.create()
    for dotted, value in fingerprint.items():
        OmegaConf.update(nested, dotted, value, force_add=True)
    try:
        return OmegaConf.select(nested, key, default=None, throw_on_resolution_failure=True)
    except Exception:  # an interpolation of a key the fingerprint does not hold
        return None


def from_folder(folder: str, tokenizer: str | None, device: str) -> Evaluated:
    """A Hugging Face ``save_pretrained`` folder as our HF module (causal or masked LM, by its
    config's architectures)."""
    from lightning_ltd.modules import HFCausalLMModule, HFMaskedLMModule

    location = Path(folder).expanduser()
    if not (location / "config.json").is_file():
        kind = "no such folder" if not location.is_dir() else "no config.json in it"
        raise ModelError(f"model.pretrained={folder!r}: {kind} (expected a Hugging Face save_pretrained folder)")
    cls = HFMaskedLMModule if masked_lm_config(location) else HFCausalLMModule
    try:
        # evaluation never drops: no block is wrapped, so any depth and any family evaluates
        module = cls(pretrained=str(location), attn_implementation=None, ltd_layers=[])
    except InvalidFieldsError as err:
        raise ModelError(f"model.{err}") from err
    own = str(location) if has_tokenizer(location) else None
    vocabulary = vocabulary_for(tokenizer or own, module, f"model.pretrained={folder!r}")
    return Evaluated(module.to(device).eval(), vocabulary, location.resolve())


def masked_lm_config(folder: Path) -> bool:
    """Whether the folder's ``config.json`` names a masked-LM architecture (``...ForMaskedLM``)."""
    import json

    try:
        architectures = json.loads((folder / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError, AttributeError) as err:
        raise ModelError(f"model.pretrained={str(folder)!r}: config.json is not readable JSON ({err})") from err
    return any(str(name).endswith("ForMaskedLM") for name in architectures)


def is_masked_lm(module: nn.Module) -> bool:
    """Whether the module trains on masked-LM batches (scored by pseudo-log-likelihood)."""
    return getattr(module, "objective", "lm") == "mlm"


def vocabulary_for(tokenizer: str | None, module: nn.Module, where: str) -> Vocabulary:
    """The vocabulary of ``tokenizer`` (``bytes`` or a folder), checked against the model's
    embedding: ids it cannot embed would index out of range."""
    if tokenizer is None:
        raise ModelError(f"{where}: no tokenizer recorded or beside it: pass tokenizer=DIR (or tokenizer=bytes)")
    masked = is_masked_lm(module)
    try:
        vocabulary = ByteVocabulary(masked_lm=masked) if tokenizer == "bytes" else HFVocabulary(str(tokenizer))
    except DataError as err:
        raise ModelError(f"{where}: {err}") from err
    embedded = embedded_vocab_size(module)
    if isinstance(embedded, int) and vocabulary.size > embedded:
        raise ModelError(
            f"{where}: tokenizer {tokenizer!r} has {vocabulary.size} ids, more than the model's {embedded}: "
            "pass the tokenizer it was trained with (tokenizer=DIR or tokenizer=bytes)"
        )
    return vocabulary
