"""The shared block's rotary embedding stays exact in bf16 (``models/transformer.py``)."""

import torch
from torch.utils.data import DataLoader

from lightning_ltd.models.transformer import RotaryEmbedding
from lightning_ltd.modules import GPTModule
from tests.conftest import quiet_trainer

HEAD = 16
POSITIONS = torch.arange(2048).unsqueeze(0)


def reference_rotation(q: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotate-half rotary in float64 from integer positions."""
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, HEAD, 2, dtype=torch.float64) / HEAD))
    angles = positions.double()[..., None] * inv_freq
    angles = torch.cat([angles, angles], -1).unsqueeze(1)
    first, second = q.double().chunk(2, -1)
    return q.double() * angles.cos() + torch.cat([-second, first], -1) * angles.sin()


def test_bf16_module_rotates_2048_positions_as_float32_would():
    rotary = RotaryEmbedding(HEAD).bfloat16()  # what model.bfloat16(), bf16-true and FSDP bf16 do
    assert not list(rotary.buffers())  # nothing to cast
    assert rotary.angles(POSITIONS).dtype == torch.float32
    assert torch.unique(rotary.angles(POSITIONS)[0, :, 0]).numel() == 2048  # no positions collapse
    q = torch.randn(1, 2, 2048, HEAD).bfloat16()
    rotated, _ = rotary(q, q, POSITIONS)
    error = (rotated.double() - reference_rotation(q, POSITIONS)).abs().max().item()
    assert error < 0.05  # bf16 rounding of the result only
    collapsed = reference_rotation(q, POSITIONS.bfloat16())  # angles from bf16 positions, as before
    assert (collapsed - reference_rotation(q, POSITIONS)).abs().max() > 1.0  # the test can fail


def test_bf16_true_training_keeps_float32_rotary_angles(monkeypatch):
    dtypes = set()
    angles = RotaryEmbedding.angles

    def recording(self, position_ids):
        out = angles(self, position_ids)
        dtypes.add(out.dtype)
        return out

    monkeypatch.setattr(RotaryEmbedding, "angles", recording)
    module = GPTModule(vocab_size=64, block_size=32, n_layer=3, n_head=2, n_embd=32, position="rotary")
    module.keep = 8
    trainer = quiet_trainer(max_steps=3, precision="bf16-true")
    trainer.fit(module, DataLoader(torch.randint(0, 64, (12, 33)), batch_size=4))
    assert next(module.parameters()).dtype == torch.bfloat16
    assert dtypes == {torch.float32}
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
