"""What every model here shares (``models/base.py``): activation checkpointing keeps the tokens."""

import pytest
import torch

from lightning_ltd.models import BERT, GPT, BERTConfig, GPTConfig, ViT, ViTConfig


def build(kind: str, checkpointing: bool):
    torch.manual_seed(0)
    sizes = {"n_layer": 4, "n_head": 2, "n_embd": 16, "dropout": 0.1, "activation_checkpointing": checkpointing}
    if kind == "gpt":
        return GPT(GPTConfig(vocab_size=50, block_size=32, position="rotary", **sizes), seed=3)
    if kind == "bert":
        return BERT(BERTConfig(vocab_size=50, block_size=32, **sizes), seed=3)
    return ViT(ViTConfig(image_size=16, patch_size=4, **sizes), seed=3)


def loss(kind: str, model) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    if kind == "vit":
        return model(torch.randn(4, 1, 16, 16, generator=generator)).square().mean()
    ids = torch.randint(0, 50, (4, 24), generator=generator)
    if kind == "bert":
        mask = torch.ones(4, 24, dtype=torch.bool)
        mask[0, 15:] = False  # padding
        return model(ids, mask).square().mean()
    return model(ids).square().mean()


@pytest.mark.parametrize("kind", ["gpt", "bert", "vit"])
def test_activation_checkpointing_gives_the_same_gradients_with_dropping_and_dropout(kind):
    grads = []
    for checkpointing in (False, True):
        model = build(kind, checkpointing).train()
        model.keep = 8
        model.router.set_counter(7, 0)
        widths = []
        for layer in model.modules():
            if type(layer).__name__ == "Block":
                layer.register_forward_pre_hook(lambda m, args, seen=widths: seen.append(args[0].shape[1]))
        torch.manual_seed(5)  # dropout draws the same masks in both runs
        loss(kind, model).backward()
        assert len(widths) == (8 if checkpointing else 4)  # with checkpointing each block runs again in backward
        assert widths[1:3] == [8, 8] and widths[4:] == widths[:4][: len(widths) - 4]  # the same widths again
        grads.append({name: p.grad for name, p in model.named_parameters()})
    plain, checkpointed = grads
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, msg=name)


def test_activation_checkpointing_must_be_a_boolean():
    with pytest.raises(ValueError, match="activation_checkpointing='yes' must be true or false"):
        GPTConfig(activation_checkpointing="yes")
