"""Which tokens a dropping layer keeps: sorted, per-row, uniform subsets without replacement."""

from __future__ import annotations

from typing import Any

import torch


def sample_kept_indices(
    batch_size: int,
    seq_len: int,
    keep: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    num_protected: int = 0,
) -> torch.Tensor:
    """Draw ``keep`` distinct positions per row, sorted ascending, as a ``[B, keep]`` long tensor.

    The top-``k`` of i.i.d. uniform scores is a uniformly random ``k``-subset, and sorting it
    keeps the original token order, so causal attention on the subset stays exact. The first
    ``num_protected`` positions (prefix tokens such as [CLS]) are always kept when asked for.
    """
    if not (0 <= num_protected <= keep <= seq_len and keep >= 1):
        raise ValueError(
            f"need 0 <= num_protected ({num_protected}) <= keep ({keep}) <= seq_len ({seq_len}) and keep >= 1"
        )
    n_free = seq_len - num_protected
    scores = torch.rand(batch_size, n_free, generator=generator, device=device)
    free = scores.topk(keep - num_protected, dim=1, sorted=False).indices
    free = free.sort(dim=1).values + num_protected
    if num_protected == 0:
        return free
    prefix = torch.arange(num_protected, device=free.device).expand(batch_size, -1)
    return torch.cat([prefix, free], dim=1)


class TokenSampler:
    """Owns the dedicated dropping RNG so that dropping never disturbs the global RNG.

    One sampler is shared by all dropping layers of a model, so layers (and rows) draw
    different subsets from one reproducible stream. The generator lives on the device of the
    activations (created lazily); its state can be saved and restored for exact resume.
    """

    def __init__(self, seed: int = 0) -> None:
        self.base_seed = seed
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._pending_state: dict[str, Any] | None = None

    def use_rank(self, rank: int) -> None:
        """Seed from ``base_seed + rank`` so data-parallel ranks drop different tokens (a no-op
        when already so seeded, so a stream in progress is not restarted)."""
        if self.seed != self.base_seed + rank:
            self.reseed(self.base_seed + rank)

    def reseed(self, seed: int) -> None:
        """Restart the stream from ``seed`` (for example ``base_seed + global_rank``)."""
        self.seed = seed
        self._generator = None
        self._pending_state = None

    def generator(self, device: torch.device | str) -> torch.Generator:
        """The generator for ``device``, created (or moved, by reseeding) on first use there."""
        device = torch.device(device)
        if self._generator is None or self._generator.device.type != device.type:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
            pending, self._pending_state = self._pending_state, None
            if pending is not None and pending["device"] == device.type:
                self._generator.set_state(pending["state"].contiguous().clone())
        return self._generator

    def sample(
        self, batch_size: int, seq_len: int, keep: int, device: torch.device | str, num_protected: int = 0
    ) -> torch.Tensor:
        """Sorted kept indices ``[B, keep]`` on ``device``.

        On the meta device (shape-only runs such as FLOP counting) no generator is used and the
        stream is not advanced.
        """
        meta = torch.device(device).type == "meta"
        return sample_kept_indices(
            batch_size,
            seq_len,
            keep,
            generator=None if meta else self.generator(device),
            device=device,
            num_protected=num_protected,
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and ints only, so checkpoints load with ``weights_only=True``."""
        if self._generator is None:
            pending = self._pending_state
            return {"seed": self.seed, **(pending or {"device": None, "state": None})}
        return {
            "seed": self.seed,
            "device": self._generator.device.type,
            "state": self._generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the stream; applied when the generator is next created on that device type."""
        self.seed = int(state["seed"])
        self._generator = None
        self._pending_state = None
        if state.get("state") is not None:
            self._pending_state = {"device": state["device"], "state": state["state"]}
