"""``RandomLTDModule``: what the schedule callback needs from a LightningModule with RandomLTD layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden

from lightning_ltd.errors import is_int
from lightning_ltd.ltd import RandomLTD, TokenRouter, find_ltd_layers, find_routers, set_rank
from lightning_ltd.models.compile import compile_network
from lightning_ltd.modules.optim import build_optimizer, clip_sharded, decayed_names
from lightning_ltd.pretrained.io import check_state_dict

CONTRACT = (
    "RandomLTDModule contract: set self.num_layers (all transformer layers, an int >= 1) and "
    "self.max_seq_len (the longest sequence, an int >= 1) in __init__, or keep the network in "
    "self.model with a config that has them"
)


class StepOutput(NamedTuple):
    """What ``model_step`` returns, so a subclass adds a metric without repeating the forward."""

    loss: torch.Tensor
    """The training objective (a scalar)."""
    logits: torch.Tensor
    """GPT, BERT: ``[B, T, vocab]``; ViT: ``[B, classes]``."""
    targets: torch.Tensor
    """GPT: next tokens ``[B, T]``; BERT: labels ``[B, T]`` (-100 where not masked); ViT: ``[B]``."""


class ConfigSize:
    """A size read from ``self.model.config`` (the first of ``names`` it has), unless the module
    sets its own: the model's config stays its one owner."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}"

    def __get__(self, module: Any, owner: type | None = None) -> Any:
        if module is None:
            return self
        if self.attribute in module.__dict__:
            return module.__dict__[self.attribute]
        config = getattr(module.__dict__.get("_modules", {}).get("model"), "config", None)
        return next((getattr(config, name) for name in self.names if hasattr(config, name)), None)

    def __set__(self, module: Any, value: int) -> None:
        module.__dict__[self.attribute] = value


def embedded_vocab_size(module: Any) -> int | None:
    """Ids the module's embedding holds (an attribute of the Hugging Face modules, a
    hyperparameter of ours); None where it has neither."""
    return getattr(module, "vocab_size", None) or getattr(getattr(module, "hparams", {}), "vocab_size", None)


def sequence_length(module: Any, datamodule: Any) -> int:
    """Tokens per row of a run: the data's ``block_size`` where it has one, at most the model's
    ``max_seq_len``."""
    data_len = getattr(datamodule, "block_size", None)
    return min(module.max_seq_len, data_len) if is_int(data_len) else module.max_seq_len


class RandomLTDModule(L.LightningModule):
    """Base for modules whose network wraps some blocks in ``RandomLTD``.

    The contract, checked at ``setup`` with one line (``contract_problems``):

    - ``num_layers``: all transformer layers, dropping or not (the layer-token count), and
      ``max_seq_len``: the longest sequence the model accepts; both read from
      ``self.model.config`` (ours, Hugging Face's, LitGPT's), or set in ``__init__``;
    - ``token_shape(batch)``: override it when a batch is not a ``[B, T]`` token tensor;
    - the inherited ``configure_optimizers`` reads ``hparams`` ``lr``, ``weight_decay`` and
      ``betas`` (``save_hyperparameters()`` them, or override it);
    - ``model_step(batch) -> StepOutput``: the step training (and the objectives' validation)
      runs; or override ``training_step``.

    The schedule callback sets the kept length on the module's ``TokenRouter`` (``apply_random_ltd``
    makes one for a network of one's own) and counts layer-tokens. Kept indices are a pure
    function of (seed, rank, step, micro-batch), so checkpoints carry no sampler state.
    """

    num_layers = ConfigSize("n_layer", "num_hidden_layers", "num_layers")
    max_seq_len = ConfigSize("seq_len", "block_size", "max_position_embeddings", "n_positions")

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
        """The seed that kept indices and, with step seeding, dropout derive from (the routers')."""
        routers = self.routers()
        return routers[0].seed if routers else int(self.hparams.get("seed", 0))

    seq_len_at: Callable[[int], int] | None = None
    """The training sequence length of an optimizer step (set by the ``Curriculum`` callback;
    None: batches as the data serves them)."""

    def truncate(self, batch: Any, length: int) -> Any:
        """``batch`` cut to ``length`` tokens per row as the layers see them (the curriculum's
        truncation). The objectives define it; a module whose batches are not token rows has none."""
        raise TypeError(f"{type(self).__name__} has no truncate(batch, length): its batches cannot be shortened")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches cut to the curriculum's length of their optimizer step (before the
        callbacks' ``on_train_batch_start`` sees them); validation stays at full length. Lightning
        runs a module's hook instead of its data module's: the data module's runs first here."""
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if datamodule is not None and is_overridden("on_after_batch_transfer", datamodule, L.LightningDataModule):
            batch = datamodule.on_after_batch_transfer(batch, dataloader_idx)
        if self.seq_len_at is None or self._trainer is None or not self._trainer.training:
            return batch
        length = self.seq_len_at(self._trainer.global_step)
        return batch if self.token_shape(batch)[1] <= length else self.truncate(batch, length)

    def token_shape(self, batch: Any) -> tuple[int, int]:
        """(rows, tokens per row) that the transformer layers see for ``batch``."""
        tokens = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(tokens, torch.Tensor) or tokens.ndim < 2:
            raise TypeError(f"{type(self).__name__}.token_shape: override it for batches like {type(batch)}")
        return int(tokens.shape[0]), int(tokens.shape[1])

    _training_batch_shape: tuple[int, int] | None = None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Note the shape of the batch in flight, which ``flops_per_batch`` is of."""
        self._training_batch_shape = self.token_shape(batch)

    @property
    def flops_per_batch(self) -> int | None:
        """What ``ThroughputMonitor`` reads: the FLOPs of the training batch in flight at the
        routers' kept length; None in eval mode, where they differ."""
        shape = self._training_batch_shape
        return self.training_flops(*shape, self.keep) if self.training and shape is not None else None

    def training_flops(self, rows: int, seq_len: int, keep: int | None) -> int | None:
        """FLOPs of one training batch at this kept length: ``self.model.training_flops`` (ours
        have it), else None (unknown)."""
        count = getattr(getattr(self, "model", None), "training_flops", None)
        return count(rows, seq_len, keep) if callable(count) else None

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
        """AdamW (or SGD) from the hparams, decay on matrices only (``modules.optim``)."""
        return build_optimizer(self, self.hparams, getattr(self, "_decayed_names", None), self.device.type == "cuda")

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Under FSDP through the sharded root module; otherwise Lightning's."""
        if not clip_sharded(self.trainer, gradient_clip_val, gradient_clip_algorithm):
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> RandomLTDModule:
        """The module of a local pretrained checkpoint (no network): GPT-2 or BERT
        ``save_pretrained`` folders, timm ViT state dicts, any Hugging Face folder for the
        ``HF*`` modules. ``kwargs`` set everything but the architecture."""
        return cls(pretrained=str(path), **kwargs)

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

    def architecture(self, *names: str, **fixed: Any) -> dict[str, Any]:
        """The hparams that shape the network (``adopt_pretrained`` may replace them)."""
        return {**{name: self.hparams[name] for name in names}, **fixed}

    def build_model(
        self, network: type[torch.nn.Module], config_class: type, arch: dict[str, Any], weights: Any, **settings: Any
    ) -> Any:
        """``self.model``: ``network`` of ``config_class(**arch, **settings)`` with the hparams'
        ``ltd_layers``, ``activation_checkpointing`` and ``seed``, then the converted pretrained
        ``weights`` (None: none) loaded into it. Returns the config."""
        layers = self.hparams.ltd_layers
        config = config_class(
            **arch,
            **settings,
            ltd_layers=None if layers is None else list(layers),
            activation_checkpointing=self.hparams.activation_checkpointing,
        )
        self.model = network(config, seed=self.hparams.seed)
        if weights is not None:
            self.load_pretrained_weights(weights, str(self.hparams.pretrained))
        return config

    def load_pretrained_weights(self, weights: dict[str, torch.Tensor], source: str) -> None:
        """Load converted weights into ``self.model``, or raise one error listing every bad key."""
        check_state_dict(self.model.state_dict(), weights, source)
        self.model.load_state_dict(weights)

    def configure_model(self) -> None:
        """Lightning calls this once the strategy is set up: record which parameters decay while
        their shapes are still whole (before FSDP shards them), and compile with ``compile=True``."""
        self._decayed_names = decayed_names(self)
        if self.hparams.get("compile"):
            compile_network(self)

    def setup(self, stage: str) -> None:
        """Checks the contract; each data-parallel rank draws its own plans (the rank is part of
        the plan's key); TF32 matmuls on GPUs (float32 matmuls at TF32 speed; bf16 autocast is
        unaffected) for the fit, restored at teardown."""
        self.check_contract()
        set_rank(self, self.global_rank)
        on_cuda = self._trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        if on_cuda or self.device.type == "cuda":
            self._matmul_precision = torch.get_float32_matmul_precision()
            torch.set_float32_matmul_precision("high")

    def teardown(self, stage: str) -> None:
        """The process's matmul precision as ``setup`` found it."""
        if getattr(self, "_matmul_precision", None) is not None:
            torch.set_float32_matmul_precision(self._matmul_precision)
            self._matmul_precision = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The weights are in this checkpoint: do not re-read a pretrained source on load."""
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict) and hparams.get("pretrained"):
            hparams["pretrained"] = None
