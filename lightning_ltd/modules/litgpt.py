"""``LitGPTModule``: any LitGPT model, by config name or checkpoint folder, trained by ``train.py``."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_ltd.checks.schema import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Seed, checked
from lightning_ltd.errors import first_line, raise_if
from lightning_ltd.ltd import apply_random_ltd
from lightning_ltd.models.compile import CompileMode
from lightning_ltd.modules.flops import MeasuredFlops
from lightning_ltd.modules.hf import dropping_layers, prove
from lightning_ltd.modules.objectives import NextTokenModule
from lightning_ltd.modules.optim import Betas, OptimizerName
from lightning_ltd.pretrained.io import PretrainedError, check_state_dict

WEIGHTS, CONFIG = "lit_model.pth", "model_config.yaml"  # what LitGPT writes in a checkpoint folder


class LitGPTModule(NextTokenModule):
    """Next-token training of a LitGPT ``GPT`` on ``[B, T + 1]`` token blocks (``data=text`` or
    ``data=tokens``), its middle blocks dropping tokens (``apply_random_ltd``; LitGPT's ``Block``
    has its rotary tables and mask gathered by a built-in rule).

    The optimizer's keys (``lr``, ``weight_decay``, ``betas``, ``optimizer``, ``momentum``) are
    those of the Hugging Face modules (``HuggingFaceModel``).

    Args:
        config: a LitGPT config name (``Config.from_name``: ``pythia-14m``, ``Llama-3.2-1B``, ...),
            built with random weights (no download).
        checkpoint_dir: a LitGPT checkpoint folder (``model_config.yaml`` and ``lit_model.pth``,
            as ``litgpt download`` or ``litgpt convert_to_litgpt`` write it). Give exactly one.
        ltd_layers: dropping layers; None: all but the first and the last (the paper's default).
        max_seq_len: the longest sequence (the rotary cache's length); None: the config's block size.
        verify: prove the wrapped model exact on a small input first (``verify_random_ltd``).
        seed: kept indices are a pure function of it, the rank and the step.
        compile: ``torch.compile`` the whole model.
        compile_mode: ``torch.compile``'s mode (None: its default).
    """

    @checked
    def __init__(
        self,
        config: str | None = None,
        checkpoint_dir: str | None = None,
        ltd_layers: Sequence[int] | None = None,
        max_seq_len: PositiveInt | None = None,
        verify: bool = False,
        lr: PositiveFloat = 1e-3,
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
        raise_if(
            [f"config={config!r} and checkpoint_dir={checkpoint_dir!r}: give exactly one (a name or a folder)"]
            if (config is None) == (checkpoint_dir is None)
            else []
        )
        litgpt_config = read_config(config, checkpoint_dir)
        if max_seq_len is not None and max_seq_len > litgpt_config.block_size:
            raise_if([f"max_seq_len={max_seq_len} must be <= the config's block_size={litgpt_config.block_size}"])
        layers = self.hparams["ltd_layers"] = dropping_layers(ltd_layers, litgpt_config.n_layer)
        self.model = network_of(litgpt_config, [], max_seq_len)
        if checkpoint_dir is not None:
            weights = read_weights(Path(checkpoint_dir))
            check_state_dict(self.model.state_dict(), weights, checkpoint_dir)
            self.model.load_state_dict(weights)
        if layers:
            apply_random_ltd(self.model, layers, seed=seed)
            if verify:
                prove(self.model)
        self.max_seq_len = max_seq_len or litgpt_config.block_size
        self.vocab_size = litgpt_config.padded_vocab_size
        self.measured_flops = MeasuredFlops(functools.partial(network_of, litgpt_config, layers, max_seq_len), call)
        self.add_metrics()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    def training_flops(self, rows: int, seq_len: int, keep: int | None) -> int | None:
        """Forward and backward FLOPs of one batch, counted by PyTorch on a meta twin (``MeasuredFlops``)."""
        return self.measured_flops(rows, seq_len, keep)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The checkpoint folder's config is the architecture; the Lightning checkpoint holds the
        weights (the folder's are not re-read at resume)."""


def litgpt_classes(given: str = "config") -> tuple[Any, Any]:
    """LitGPT's ``Config`` and ``GPT``: imported here, since LitGPT is optional (and lives in an
    environment of its own beside transformers 5); ``given`` names the key in the error."""
    try:
        from litgpt import Config
        from litgpt.model import GPT
    except ImportError as err:
        raise PretrainedError(f"{given}: LitGPT models need litgpt: pip install litgpt ({err})") from err
    return Config, GPT


def read_config(name: str | None, checkpoint_dir: str | None) -> Any:
    """The LitGPT ``Config`` of a name or of a checkpoint folder, or one line naming the key."""
    config_class, _ = litgpt_classes(f"config={name!r}" if name is not None else f"checkpoint_dir={checkpoint_dir!r}")
    if name is not None:
        try:
            return config_class.from_name(name)
        except ValueError as err:
            raise PretrainedError(f"config={name!r}: not a LitGPT config name ({first_line(err)})") from err
    folder = Path(str(checkpoint_dir))
    if not (folder / CONFIG).is_file():
        raise PretrainedError(f"checkpoint_dir={checkpoint_dir!r}: no {CONFIG} (expected a LitGPT checkpoint folder)")
    import yaml  # LitGPT reads its config with PyYAML

    try:
        return config_class.from_file(folder / CONFIG)
    except (ValueError, TypeError, OSError, yaml.YAMLError) as err:
        raise PretrainedError(
            f"checkpoint_dir={checkpoint_dir!r}: {CONFIG} is not a LitGPT config ({first_line(err)})"
        ) from err


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The folder's ``lit_model.pth`` (plain tensors only: ``weights_only``)."""
    path = folder / WEIGHTS
    if not path.is_file():
        raise PretrainedError(f"checkpoint_dir={str(folder)!r}: no {WEIGHTS}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, OSError, ValueError) as err:
        raise PretrainedError(f"checkpoint_dir={str(folder)!r}: {WEIGHTS} cannot be read ({first_line(err)})") from err
    return state.get("model", state) if isinstance(state, dict) else state


def call(network: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """LitGPT's forward: token ids to logits."""
    return network(ids)


def network_of(config: Any, layers: list[int], max_seq_len: int | None) -> nn.Module:
    """A LitGPT ``GPT`` of ``config``, its rotary cache for ``max_seq_len``, these blocks dropping."""
    _, gpt_class = litgpt_classes()
    network = gpt_class(config)
    if max_seq_len is not None:
        network.max_seq_len = max_seq_len
    return apply_random_ltd(network, layers) if layers else network
