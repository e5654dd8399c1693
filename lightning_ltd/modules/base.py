"""What the schedule callback needs from a LightningModule that contains RandomLTD layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from lightning_ltd.ltd import RandomLTD, TokenSampler, find_ltd_layers
from lightning_ltd.ltd.wrapper import KeptLength
from lightning_ltd.models.compile import compile_blocks, is_compiled
from lightning_ltd.pretrained.io import check_state_dict

SAMPLER_CHECKPOINT_KEY = "random_ltd_samplers"


def weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices (and embeddings) only; biases and norm gains are left alone (nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class RandomLTDModule(L.LightningModule):
    """Base for modules whose network wraps some blocks in ``RandomLTD``.

    Subclasses set ``num_layers`` (all transformer layers, dropping or not) and, when a batch
    is not a ``[B, T]`` token tensor, override ``token_shape``. The schedule callback uses
    these to set the kept length and to count layer-tokens; the samplers' RNG states travel
    in checkpoints so a resumed run draws the same tokens.
    """

    num_layers: int
    max_seq_len: int  # the longest sequence the model accepts (checked against ltd.max_keep)
    keep = KeptLength()

    def ltd_layers(self) -> list[RandomLTD]:
        return find_ltd_layers(self)

    def samplers(self) -> list[TokenSampler]:
        unique: dict[int, TokenSampler] = {}
        for layer in find_ltd_layers(self):
            unique.setdefault(id(layer.sampler), layer.sampler)
        return list(unique.values())

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

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW from ``hparams`` ``lr``, ``weight_decay``, ``betas``; decay on matrices only."""
        hp = self.hparams
        groups = weight_decay_groups(self, hp.weight_decay)
        return torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))

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

    def configure_model(self) -> None:
        """With ``compile=True`` in the hparams, compile every block (static shapes, see
        ``lightning_ltd.models.compile``); Lightning calls this once the strategy is set up."""
        if self.hparams.get("compile") and not is_compiled(self.model):
            compile_blocks(self.model)

    def setup(self, stage: str) -> None:
        """Each data-parallel rank draws its own tokens: samplers are seeded from seed + rank."""
        for sampler in self.samplers():
            sampler.use_rank(self.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Every rank's sampler states (gathered: all ranks run this hook, rank 0 writes)."""
        states = [s.generator(self.device).get_state() for s in self.samplers()]
        seeds = [s.seed for s in self.samplers()]
        if states:
            stacked = torch.stack(states).to(self.device)  # (samplers, state bytes)
            gathered = self._gather(stacked).reshape(-1, *stacked.shape).cpu()  # (ranks, samplers, bytes)
            all_seeds = self._gather(torch.tensor(seeds, device=self.device)).reshape(-1, len(seeds)).tolist()
            device = self.device.type
            checkpoint[SAMPLER_CHECKPOINT_KEY] = [
                [
                    {"seed": seed, "device": device, "state": state.clone()}  # own storage, not a view
                    for seed, state in zip(rank_seeds, rank_states, strict=True)
                ]
                for rank_seeds, rank_states in zip(all_seeds, gathered, strict=True)
            ]
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict) and hparams.get("pretrained"):
            hparams["pretrained"] = None  # the weights are in this checkpoint; do not re-read the source

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """All ranks' copies stacked on a new first axis (just this one outside a Trainer)."""
        return self.all_gather(tensor) if self._trainer is not None else tensor.unsqueeze(0)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore this rank's own sampler states; with another number of ranks, keep fresh seeds."""
        per_rank = checkpoint.get(SAMPLER_CHECKPOINT_KEY)
        if not per_rank:
            return
        samplers = self.samplers()
        world_size = self.trainer.world_size if self._trainer is not None else 1
        if len(per_rank) != world_size:
            rank_zero_warn(
                f"checkpoint holds token-sampler states of {len(per_rank)} ranks; this run has a different "
                "number, so each rank starts a fresh stream from seed + rank"
            )
            return
        states = per_rank[self.global_rank]
        if len(states) != len(samplers):
            raise ValueError(f"checkpoint has {len(states)} token-sampler states, the model has {len(samplers)}")
        for sampler, state in zip(samplers, states, strict=True):
            sampler.load_state_dict(state)
