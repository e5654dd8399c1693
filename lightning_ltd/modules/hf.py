"""LightningModules for any local Hugging Face checkpoint: causal LMs (Llama, Qwen2, Mistral,
GPT-2, ...) and masked LMs (BERT-like), with random-LTD applied in one call."""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from lightning_ltd.checks.schema import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Seed, checked
from lightning_ltd.data.vocabulary import has_tokenizer
from lightning_ltd.errors import InvalidFieldsError, raise_if
from lightning_ltd.ltd import apply_random_ltd, default_dropping_layers, validate_dropping_layers
from lightning_ltd.ltd.apply import default_layers
from lightning_ltd.ltd.verify import VerificationError, example_inputs, verify_random_ltd
from lightning_ltd.models.compile import CompileMode
from lightning_ltd.modules.base import RandomLTDModule
from lightning_ltd.modules.flops import MeasuredFlops
from lightning_ltd.modules.objectives import MaskedLMModule, NextTokenModule
from lightning_ltd.modules.optim import Betas, OptimizerName
from lightning_ltd.pretrained.hf_models import (
    config_value,
    load_hf_model,
    quiet_transformers,
    save_tokenizer,
)
from lightning_ltd.pretrained.io import PretrainedError


class HuggingFaceModel(RandomLTDModule):
    """A Hugging Face model from a local ``save_pretrained`` folder, its middle layers dropping
    tokens (``apply_random_ltd``: the family's blocks are found and wrapped automatically).

    Args:
        pretrained: the folder (``config.json`` and weights; no network).
        ltd_layers: dropping layers; None: all but the first and the last (the paper's default).
        dropout: every dropout probability of the config (None: the checkpoint's own).
        activation_checkpointing: recompute each layer's activations in backward
            (transformers' own switch, non-reentrant); the kept tokens stay the same.
        tokenizer: the tokenizer folder (None: ``pretrained`` if it holds one); ``save_pretrained``
            copies it next to the weights.
        attn_implementation: ``sdpa`` (default), ``eager``, or None for the model's default.
        max_seq_len: the longest sequence; None: the config's position limit (a config without
            one, ALiBi's BLOOM or MPT, needs it set).
        token_kwargs, static_kwargs: the blocks' arguments to gather with the kept tokens (name:
            token axis or axes) or to pass as they are (names), for a family without built-in
            rules (``apply_random_ltd``'s; ``verify_random_ltd`` says which a model needs).
        verify: prove the wrapped model exact on a small input first (``verify_random_ltd``).
        lr: the peak learning rate.
        weight_decay: AdamW's decay, on matrices only.
        betas: AdamW's betas.
        optimizer: ``adamw`` or ``sgd``.
        momentum: SGD's momentum.
        seed: kept indices are a pure function of it, the rank and the step.
        compile: ``torch.compile`` the whole model (``RandomLTDModule.configure_model``).
        compile_mode: ``torch.compile``'s mode (None: its default).
    """

    auto_class: ClassVar[str]

    @checked
    def __init__(
        self,
        pretrained: str,
        ltd_layers: Sequence[int] | None = None,
        dropout: Fraction | None = None,
        activation_checkpointing: bool = False,
        tokenizer: str | None = None,
        attn_implementation: str | None = "sdpa",
        max_seq_len: PositiveInt | None = None,
        token_kwargs: dict[str, int | list[int]] | None = None,
        static_kwargs: list[str] | None = None,
        verify: bool = False,
        lr: PositiveFloat = 1e-4,
        weight_decay: NonNegativeFloat = 0.1,
        betas: Betas = (0.9, 0.95),
        optimizer: OptimizerName = "adamw",
        momentum: Fraction = 0.9,
        seed: Seed = 0,
        compile: bool = False,
        compile_mode: CompileMode | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = load_hf_model(str(pretrained), self.auto_class, dropout, attn_implementation)
        if max_seq_len is not None:
            self.max_seq_len = max_seq_len
        elif self.max_seq_len is None:  # ALiBi families (BLOOM, MPT) have no position limit in their config
            config = type(self.model.config).__name__
            raise_if([f"max_seq_len=None: {config} has no position limit (ALiBi); set the longest sequence, e.g. 2048"])
        self.vocab_size = config_value(self.model.config, "vocab_size")
        self.rules = {"token_kwargs": token_kwargs, "static_kwargs": static_kwargs or ()}
        try:  # the layers are recorded (resume compares them): None becomes the default's list
            layers = self.hparams["ltd_layers"] = dropping_layers(ltd_layers, self.num_layers, self.model)
            if layers:
                apply_random_ltd(self.model, layers, seed=seed, **self.rules)
        except InvalidFieldsError:
            raise
        except ValueError as err:  # a layer that cannot drop tokens exactly
            raise_if([f"ltd_layers={ltd_layers}: {err}"])
        if verify and layers:
            prove(self.model)
        if activation_checkpointing:
            enable_activation_checkpointing(self.model)
        config = copy.deepcopy(self.model.config)
        self.measured_flops = MeasuredFlops(functools.partial(self.network_of, config, layers), self.flops_forward)

    def network_of(self, config: Any, layers: list[int]) -> nn.Module:
        """A fresh network of ``config`` with these dropping layers (the FLOP count's meta twin)."""
        import transformers

        network = getattr(transformers, self.auto_class).from_config(config)
        return apply_random_ltd(network, layers, **self.rules) if layers else network

    def flops_forward(self, network: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        """The training forward the FLOPs are counted of (the logits the loss reads)."""
        return network(input_ids=ids).logits

    def training_flops(self, rows: int, seq_len: int, keep: int | None) -> int:
        """Forward and backward FLOPs of one batch, counted by PyTorch on a meta twin (``MeasuredFlops``)."""
        return self.measured_flops(rows, seq_len, keep)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write a folder that ``transformers``' ``from_pretrained`` loads (the same names as the
        checkpoint it came from: wrapping renames nothing), with the tokenizer beside it."""
        target = Path(path)
        with quiet_transformers():
            self.model.save_pretrained(str(target))
        source = self.hparams.tokenizer or (self.hparams.pretrained if has_tokenizer(self.hparams.pretrained) else None)
        if source is not None:
            save_tokenizer(source, target)
        return target

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep ``pretrained``: the folder's config.json is the architecture (the checkpoint's
        weights then replace the folder's)."""


def dropping_layers(ltd_layers: Sequence[int] | None, n_layer: int, network: nn.Module | None = None) -> list[int]:
    """``ltd_layers`` checked against the network's depth (None: ``1 .. L-2``, less the blocks
    of ``network`` that cannot drop tokens exactly: ``ltd.default_layers``)."""
    if ltd_layers is None:
        return default_layers(network) if network is not None else default_dropping_layers(n_layer)
    try:
        return validate_dropping_layers(list(ltd_layers), n_layer)
    except ValueError as err:
        raise_if([f"ltd_layers={list(ltd_layers)}: {err}"])
        raise


def prove(network: nn.Module) -> None:
    """``verify=true``: the wrapped network is exact on a small input of its config, or one line why."""
    try:
        verify_random_ltd(network, example_inputs(network))
    except VerificationError as err:
        raise_if([f"verify=True: {err}"])


def enable_activation_checkpointing(model: nn.Module) -> None:
    """transformers' own per-layer checkpointing (it runs inside our wrapper, on the kept tokens)."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


class HFCausalLMModule(HuggingFaceModel, NextTokenModule):
    """Next-token training of any local ``AutoModelForCausalLM`` folder (Llama, Qwen2, Mistral,
    GPT-2, ...) on ``[B, T + 1]`` blocks of its tokenizer's ids (``data=text`` or ``data=tokens``)."""

    auto_class = "AutoModelForCausalLM"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if sees_later_tokens(self.model, self.vocab_size):
            raise PretrainedError(
                f"pretrained={self.hparams.pretrained!r}: its {type(self.model).__name__} attends to later tokens, "
                "so next-token training would read its own targets (an encoder: use model=hf_masked_lm)"
            )
        self.add_metrics()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=idx, use_cache=False).logits  # a training forward fills no KV cache

    def flops_forward(self, network: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        return network(input_ids=ids, use_cache=False).logits


def sees_later_tokens(model: nn.Module, vocab_size: int) -> bool:
    """Whether the logits of the first two positions change with the tokens after them: a BERT
    folder loads as ``BertLMHeadModel`` without ``is_decoder`` and attends both ways, with only a
    warning from transformers. One eval-mode forward of two rows of four tokens decides."""
    ids = torch.tensor([[0, 1, 2, 3], [0, 1, 3, 2]]) % vocab_size
    was_training = model.training
    model.eval()  # no dropout, every token kept
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits.float()
    finally:
        model.train(was_training)
    return not torch.allclose(logits[0, :2], logits[1, :2], rtol=1e-4, atol=1e-5)


class HFMaskedLMModule(HuggingFaceModel, MaskedLMModule):
    """Masked-LM training of any local ``AutoModelForMaskedLM`` folder (BERT-like) on padded,
    masked batches of its tokenizer's ids (``data=mlm`` or ``data=tokens``)."""

    auto_class = "AutoModelForMaskedLM"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_metrics(self.vocab_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
