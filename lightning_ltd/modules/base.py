"""What the schedule callback needs from a LightningModule that contains RandomLTD layers."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import lightning as L
import torch

from lightning_ltd.errors import SettingWarning, is_int, is_number, raise_if
from lightning_ltd.ltd import RandomLTD, TokenRouter, find_ltd_layers, find_routers
from lightning_ltd.models.compile import compile_model, compile_problems, is_compiled
from lightning_ltd.pretrained.io import check_state_dict

OPTIMIZERS = ("adamw", "sgd")
COMPILE_ON_CPU = (
    "model.compile=true on a CPU: compiling takes minutes here and rarely pays back on CPU-sized runs; "
    "it pays off on GPUs (trainer=gpu, model.compile_mode=reduce-overhead). model.compile=false trains now"
)


def optimizer_problems(hparams: Any) -> list[str]:
    """``lr`` > 0, ``weight_decay`` >= 0, two ``betas`` in [0, 1), ``optimizer`` one of
    ``OPTIMIZERS`` and ``momentum`` in [0, 1), each named."""
    problems = []
    name, momentum = hparams.get("optimizer"), hparams.get("momentum")
    if name is not None and name not in OPTIMIZERS:
        problems.append(f"optimizer={name!r} must be one of {', '.join(OPTIMIZERS)}")
    if momentum is not None and (not is_number(momentum) or not 0 <= momentum < 1):
        problems.append(f"momentum={momentum!r} must be a number in [0, 1)")
    lr, decay, betas = hparams.get("lr"), hparams.get("weight_decay"), hparams.get("betas")
    if lr is not None and (not is_number(lr) or not lr > 0):
        problems.append(f"lr={lr!r} must be a number > 0")
    if decay is not None and (not is_number(decay) or decay < 0):
        problems.append(f"weight_decay={decay!r} must be a number >= 0")
    if betas is not None:
        valid = isinstance(betas, (list, tuple)) and len(betas) == 2
        if not valid or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            problems.append(
                f"betas={list(betas) if isinstance(betas, (list, tuple)) else betas!r} must be two numbers in [0, 1)"
            )
    return problems


WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
"""Name segments that FSDP, activation checkpointing and ``torch.compile`` insert."""


def plain_name(name: str) -> str:
    """A parameter's name as the unwrapped model spells it."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def decayed_names(model: torch.nn.Module) -> set[str]:
    """Matrices (and embeddings) decay; biases and norm gains do not (nanoGPT). Judged on the
    unwrapped model: FSDP's sharded views are all one-dimensional."""
    return {plain_name(name) for name, p in model.named_parameters() if p.ndim >= 2}


def weight_decay_groups(
    model: torch.nn.Module, weight_decay: float, decayed: set[str] | None = None
) -> list[dict[str, Any]]:
    """Two AdamW groups by name: ``decayed`` (default: judged now by shape) and the rest."""
    decayed = decayed_names(model) if decayed is None else decayed
    named = [(plain_name(name), p) for name, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for name, p in named if name in decayed], "weight_decay": weight_decay},
        {"params": [p for name, p in named if name not in decayed], "weight_decay": 0.0},
    ]


class StepOutput(NamedTuple):
    """What ``model_step`` returns, so a subclass adds a metric without repeating the forward."""

    loss: torch.Tensor
    """The training objective (a scalar)."""
    logits: torch.Tensor
    """GPT, BERT: ``[B, T, vocab]``; ViT: ``[B, classes]``."""
    targets: torch.Tensor
    """GPT: next tokens ``[B, T]``; BERT: labels ``[B, T]`` (-100 where not masked); ViT: ``[B]``."""


CONTRACT = (
    "RandomLTDModule contract: set self.num_layers (all transformer layers, an int >= 1) and "
    "self.max_seq_len (the longest sequence, an int >= 1) in __init__"
)


class RandomLTDModule(L.LightningModule):
    """Base for modules whose network wraps some blocks in ``RandomLTD``.

    The contract, checked at ``setup`` with one line (``contract_problems``):

    - ``num_layers``: all transformer layers, dropping or not (the layer-token count);
    - ``max_seq_len``: the longest sequence the model accepts (checked against ``ltd.max_keep``);
    - ``token_shape(batch)``: override it when a batch is not a ``[B, T]`` token tensor;
    - the inherited ``configure_optimizers`` reads ``hparams`` ``lr``, ``weight_decay`` and
      ``betas`` (``save_hyperparameters()`` them, or override it).

    The schedule callback uses these to set the kept length on the module's ``TokenRouter``
    (``apply_random_ltd`` makes one for a network of one's own) and to count layer-tokens.
    Kept indices are a pure function of (seed, rank, step, micro-batch), so checkpoints carry
    no sampler state. GPT, BERT and ViT modules also expose ``model_step(batch) -> StepOutput``.
    """

    num_layers: int
    max_seq_len: int  # the longest sequence the model accepts (checked against ltd.max_keep)

    def contract_problems(self) -> list[str]:
        """What this module lacks of the contract above (empty: nothing)."""
        problems = []
        for name in ("num_layers", "max_seq_len"):
            value = getattr(self, name, None)
            if not is_int(value) or value < 1:
                problems.append(f"{name}={value!r}")
        if type(self).configure_optimizers is RandomLTDModule.configure_optimizers:
            missing = [key for key in ("lr", "weight_decay", "betas") if key not in self.hparams]
            if missing:
                problems.append(
                    f"hparams lack {', '.join(missing)} for the inherited configure_optimizers "
                    "(save_hyperparameters() them, or override configure_optimizers)"
                )
        return problems

    def check_contract(self) -> None:
        """Raise one line naming everything the subclass misses (called at ``setup``)."""
        problems = self.contract_problems()
        if problems:
            raise TypeError(f"{type(self).__name__}: {'; '.join(problems)} ({CONTRACT})")

    def ltd_layers(self) -> list[RandomLTD]:
        """Every ``RandomLTD`` layer of the module, in registration order."""
        return find_ltd_layers(self)

    def routers(self) -> list[TokenRouter]:
        """Every ``TokenRouter`` of the module (one per network): the schedule drives these."""
        return find_routers(self)

    @property
    def keep(self) -> int | None:
        """The kept length (held by the routers; None: no dropping)."""
        routers = self.routers()
        return routers[0].keep if routers else None

    @keep.setter
    def keep(self, value: int | None) -> None:
        for router in self.routers():
            router.keep = value

    @property
    def ltd_seed(self) -> int:
        """The seed that kept indices and, with step seeding, dropout derive from."""
        routers = self.routers()
        return routers[0].seed if routers else int(self.hparams.get("seed", 0))

    def token_shape(self, batch: Any) -> tuple[int, int]:
        """(rows, tokens per row) that the transformer layers see for ``batch``."""
        tokens = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(tokens, torch.Tensor) or tokens.ndim < 2:
            raise TypeError(f"{type(self).__name__}.token_shape: override it for batches like {type(batch)}")
        return int(tokens.shape[0]), int(tokens.shape[1])

    _flops_per_training_batch: int | None = None

    @property
    def flops_per_batch(self) -> int | None:
        """What ``ThroughputMonitor`` reads: the current training batch's FLOPs (set by the
        schedule callback as the kept length changes); None in eval mode, where they differ."""
        return self._flops_per_training_batch if self.training else None

    @flops_per_batch.setter
    def flops_per_batch(self, value: int | None) -> None:
        self._flops_per_training_batch = value

    def training_flops(self, rows: int, seq_len: int, keep: int | None) -> int | None:
        """FLOPs of one training batch at this kept length, for ``ThroughputMonitor`` (None: unknown)."""
        return None

    def model_step(self, batch: Any) -> StepOutput:
        """The step that training and validation share (GPT, BERT, ViT and the Hugging Face
        modules define it; a module of one's own may instead override ``training_step``)."""
        raise NotImplementedError(f"{type(self).__name__}: define model_step(batch) or override training_step")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Logs ``train/loss``: ``model_step(batch).loss``."""
        loss = self.model_step(batch).loss
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW from ``hparams`` ``lr``, ``weight_decay``, ``betas`` (or, with ``optimizer="sgd"``,
        SGD with ``momentum``); decay on matrices only; the fused CUDA kernel on GPUs (one
        launch for all parameters instead of several per tensor)."""
        hp = self.hparams
        groups = weight_decay_groups(self, hp.weight_decay, getattr(self, "_decayed_names", None))
        fused = self.device.type == "cuda" or None
        if hp.get("optimizer", "adamw") == "sgd":
            return torch.optim.SGD(groups, lr=hp.lr, momentum=hp.get("momentum", 0.9), fused=fused)
        return torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas), fused=fused)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Under FSDP, clip by norm through the sharded root module (``clip_grad_norm_`` reduces the
        norm over ranks), which Lightning's FSDP precision plugin refuses to do; otherwise Lightning's."""
        from lightning.pytorch.strategies import FSDPStrategy

        strategy = self.trainer.strategy
        if gradient_clip_val and isinstance(strategy, FSDPStrategy) and gradient_clip_algorithm in (None, "norm"):
            strategy.model.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def adopt_pretrained(
        self,
        arch: dict[str, Any],
        pretrained: str | None,
        read: Callable[[str], tuple[dict[str, Any], dict[str, torch.Tensor]]],
    ) -> dict[str, torch.Tensor] | None:
        """With a checkpoint, its architecture replaces ``arch`` (in place, and in ``hparams``);
        returns its weights converted to our names, to load once the model is built."""
        if pretrained is None:
            return None
        pretrained_arch, weights = read(pretrained)
        arch.update(pretrained_arch)
        self.hparams.update({k: v for k, v in arch.items() if k in self.hparams})
        return weights

    def load_pretrained_weights(self, weights: dict[str, torch.Tensor], source: str) -> None:
        """Load converted weights into ``self.model``, or raise one error listing every bad key."""
        check_state_dict(self.model.state_dict(), weights, source)
        self.model.load_state_dict(weights)

    def check_settings(self) -> None:
        """Optimizer and compile settings, checked at construction, before any work starts."""
        hp = self.hparams
        raise_if(optimizer_problems(hp) + compile_problems(hp.get("compile", False), hp.get("compile_mode")))

    def configure_model(self) -> None:
        """With ``compile=True`` in the hparams, compile the whole network, routing included, as
        one graph per shape (``lightning_ltd.models.compile``); ``compile_mode`` picks the
        ``torch.compile`` mode (``reduce-overhead``: CUDA graphs). Lightning calls this once the
        strategy is set up. Records which parameters decay while their shapes are still whole
        (before FSDP shards them)."""
        self._decayed_names = decayed_names(self)
        if self.hparams.get("compile") and not is_compiled(self.model):
            if self._trainer is not None and self.trainer.strategy.root_device.type == "cpu":
                warnings.warn(COMPILE_ON_CPU, SettingWarning, stacklevel=2)
            compile_model(self.model, mode=self.hparams.get("compile_mode"))

    def setup(self, stage: str) -> None:
        """Checks the contract; each data-parallel rank draws its own plans (the rank is part of
        the plan's key); TF32 matmuls on GPUs (float32 matmuls at TF32 speed; bf16 autocast is
        unaffected)."""
        self.check_contract()
        for router in self.routers():
            router.rank = self.global_rank
        on_cuda = self._trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        if on_cuda or self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The weights are in this checkpoint: do not re-read a pretrained source on load."""
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict) and hparams.get("pretrained"):
            hparams["pretrained"] = None
