"""The scale-out trainer configs compose, and their strategies are what they say."""

import importlib.util

import hydra
import pytest
from lightning.pytorch.strategies import FSDPStrategy

from lightning_ltd.models import Block
from tests.conftest import compose_train


def test_fsdp_wraps_by_transformer_block(tmp_path):
    cfg = compose_train(tmp_path, "trainer=fsdp", tiny=False)
    strategy = hydra.utils.instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {Block}  # ModuleWrapPolicy({Block})
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.accelerator == "gpu"


def test_ddp_configs(tmp_path):
    assert compose_train(tmp_path, "trainer=ddp", tiny=False).trainer.strategy == "ddp"
    cpu = compose_train(tmp_path, "trainer=ddp_cpu", tiny=False).trainer
    assert (cpu.strategy, cpu.accelerator, cpu.devices, cpu.use_distributed_sampler) == ("ddp", "cpu", 2, False)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_deepspeed_stage_is_configurable(tmp_path, stage):
    cfg = compose_train(tmp_path, "trainer=deepspeed", f"trainer.strategy.stage={stage}", tiny=False)
    assert cfg.trainer.strategy.stage == stage
    if importlib.util.find_spec("deepspeed") is not None:  # instantiating needs the package
        strategy = hydra.utils.instantiate(cfg.trainer.strategy)
        assert strategy.config["zero_optimization"]["stage"] == stage


def test_fsdp_clips_gradients_through_the_sharded_module():
    """Lightning's FSDP precision refuses norm clipping; the module clips via FSDP's own method."""
    from types import SimpleNamespace

    import torch
    from lightning.pytorch.strategies import FSDPStrategy

    from lightning_ltd.modules import GPTModule

    class ShardedRoot:
        def __init__(self):
            self.clipped = []

        def clip_grad_norm_(self, max_norm):
            self.clipped.append(max_norm)

    strategy, root = FSDPStrategy(), ShardedRoot()
    strategy.model = root
    module = GPTModule(vocab_size=32, block_size=16, n_layer=3, n_head=2, n_embd=16)
    module._trainer = SimpleNamespace(strategy=strategy)
    optimizer = torch.optim.AdamW(module.parameters())
    module.configure_gradient_clipping(optimizer, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
    assert root.clipped == [1.0]


def test_weight_decay_groups_survive_fsdp_flat_sharding():
    """FSDP (use_orig_params) renames parameters and turns them into 1-D shard views; the groups
    recorded in ``configure_model`` still decay exactly the matrices and embeddings."""
    import torch

    from lightning_ltd.modules import GPTModule

    module = GPTModule(vocab_size=32, block_size=16, n_layer=3, n_head=2, n_embd=16)
    whole = module.configure_optimizers().param_groups
    expected = [{id(p) for p in group["params"]} for group in whole]
    module.configure_model()  # Lightning calls this before the strategy wraps the model

    class Sharded(torch.nn.Module):
        """Stands for FSDP's wrapper: a ``_fsdp_wrapped_module`` child and flattened parameters."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self._fsdp_wrapped_module = inner

    blocks = module.model.transformer.h
    for index in range(len(blocks)):
        blocks[index] = Sharded(blocks[index])
    for p in module.parameters():
        p.data = p.data.reshape(-1)
    assert all(p.ndim == 1 for p in module.parameters())
    sharded = module.configure_optimizers().param_groups
    assert [{id(p) for p in group["params"]} for group in sharded] == expected
    assert [g["weight_decay"] for g in sharded] == [0.1, 0.0] and len(expected[0]) > 0 and len(expected[1]) > 0
