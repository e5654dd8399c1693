import pytest
import torch

from lightning_ltd.ltd import next_plan
from lightning_ltd.models import ViT, ViTConfig


def tiny(**kwargs):
    torch.manual_seed(0)
    return ViT(ViTConfig(image_size=16, patch_size=4, n_layer=4, n_head=2, n_embd=16, **kwargs), seed=5)


def test_timm_layout_names():
    keys = set(tiny().state_dict())
    assert {"patch_embed.proj.weight", "cls_token", "pos_embed", "blocks.1.attn.c_attn.weight", "norm.weight"} <= keys
    assert {"head.weight", "head.bias"} <= keys


def test_eval_equals_plain_model():
    model, plain = tiny(), tiny(ltd_layers=[])
    plain.load_state_dict(model.state_dict())
    images = torch.randn(3, 1, 16, 16)
    model.keep = 4
    torch.testing.assert_close(model.eval()(images), plain.eval()(images), rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(images), plain.train()(images))


def kept_indices(model, draws=30):
    """Every dropping layer's kept indices over ``draws`` training forwards ([B, keep] each)."""
    seen = []
    plan = model.router.plan

    def recording(*args, **kwargs):
        drawn = plan(*args, **kwargs)
        seen.extend(drawn)
        return drawn

    model.router.plan = recording
    model.keep = 4
    model.train()
    for _ in range(draws):
        model(torch.randn(2, 1, 16, 16))
        next_plan(model)  # the driver's call between steps
    return seen


def test_protect_cls_keeps_it_in_every_dropping_layer():
    seen = kept_indices(tiny(protect_cls=True))
    assert len(seen) == 30 * 2  # two dropping layers per forward
    assert all((indices[:, 0] == 0).all() for indices in seen)


def test_without_protection_cls_is_dropped_like_any_token():
    seen = torch.cat(kept_indices(tiny()))
    cls_kept = (seen == 0).any(1).float().mean().item()
    assert 0.1 < cls_kept < 0.45  # expected 4/17


def test_bad_config_and_images_named():
    with pytest.raises(ValueError, match="image_size=30 must be divisible by patch_size=4"):
        ViTConfig(image_size=30)
    with pytest.raises(ValueError, match=r"images must be \[B, 1, 16, 16\]"):
        tiny()(torch.randn(2, 3, 16, 16))


@pytest.mark.parametrize("keep", [None, 7])
def test_training_flops_match_measure_flops(keep):
    from lightning.fabric.utilities.throughput import measure_flops

    with torch.device("meta"):
        model = ViT(ViTConfig(image_size=16, patch_size=4, n_layer=4, n_head=2, n_embd=16))
        images = torch.randn(3, 1, 16, 16)
    model.keep = keep
    assert model.training_flops(3, 17, keep) == measure_flops(model, lambda: model(images), lambda y: y.sum())
