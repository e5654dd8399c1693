"""``apply_random_ltd`` on models of one's own, and every mask form against a per-row reference
computed on the full sequence (B == T, so a mask gathered on the wrong axis cannot pass)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_ltd import RandomLTD, apply_random_ltd, next_plan

B = T = 6  # equal on purpose: [T, T] and [B, T] masks have the same shape
C, H, KEEP = 16, 2, 4


class SelfAttention(nn.Module):
    """The ``nn.MultiheadAttention`` recipe: a residual self-attention block, batch first."""

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(C, H, dropout=dropout, batch_first=True)

    def forward(self, x, attn_mask=None, key_padding_mask=None):
        return x + self.attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)[0]


class SDPABlock(nn.Module):
    """A block of one's own on ``scaled_dot_product_attention`` (masks broadcast to [B, H, T, T])."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(C, 3 * C)

    def forward(self, x, attn_mask=None):
        q, k, v = self.qkv(x).view(x.shape[0], x.shape[1], 3, H, C // H).permute(2, 0, 3, 1, 4)
        if attn_mask is not None and attn_mask.ndim == 3:
            attn_mask = attn_mask[:, None]  # [B, T, T] -> [B, 1, T, T]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return x + out.transpose(1, 2).reshape(x.shape)


def encoder(dropout: float = 0.1) -> nn.TransformerEncoder:
    """The ``nn.TransformerEncoderLayer`` recipe (batch first)."""
    layer = nn.TransformerEncoderLayer(C, H, dim_feedforward=32, dropout=dropout, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)


def masks() -> dict[str, torch.Tensor]:
    """Every supported form, boolean with True = do not attend (PyTorch's convention)."""
    torch.manual_seed(1)
    pairs = torch.rand(T, T) < 0.3
    pairs.fill_diagonal_(False)  # every query keeps itself: no row is fully masked
    per_row = torch.rand(B, T, T) < 0.3
    per_row[:, torch.arange(T), torch.arange(T)] = False
    per_head = torch.rand(B, H, T, T) < 0.3
    per_head[:, :, torch.arange(T), torch.arange(T)] = False
    padding = torch.zeros(B, T, dtype=torch.bool)
    padding[:, -2:] = True
    padding[:, 0] = False
    return {"TT": pairs, "BTT": per_row, "BHTT": per_head, "BH_TT": per_head.flatten(0, 1), "BT": padding}


def row_mask(form: str, mask: torch.Tensor, row: int, idx: torch.Tensor) -> torch.Tensor:
    """The full mask restricted, by plain indexing, to one row's kept tokens."""
    if form == "TT":
        return mask[idx][:, idx]
    if form == "BTT":
        return mask[row][idx][:, idx]
    if form == "BHTT":
        return mask[row][:, idx][:, :, idx].unsqueeze(0)
    if form == "BH_TT":
        return mask[row * H : (row + 1) * H][:, idx][:, :, idx]
    return mask[row : row + 1, idx]


CASES = [
    ("mha", "attn_mask", "TT"),
    ("mha", "attn_mask", "BH_TT"),
    ("mha", "key_padding_mask", "BT"),
    ("sdpa", "attn_mask", "TT"),
    ("sdpa", "attn_mask", "BTT"),
    ("sdpa", "attn_mask", "BHTT"),
    ("encoder_layer", "src_mask", "TT"),
    ("encoder_layer", "src_mask", "BH_TT"),
    ("encoder_layer", "src_key_padding_mask", "BT"),
]


@pytest.mark.parametrize("kind, keyword, form", CASES)
def test_each_mask_form_matches_a_per_row_reference(kind, keyword, form):
    torch.manual_seed(0)
    block = {"mha": SelfAttention, "sdpa": SDPABlock, "encoder_layer": lambda: encoder().layers[0]}[kind]()
    layer = RandomLTD(block, KEEP, router=None)
    layer.block.eval()  # the wrapper drops (training mode); the block itself runs without dropout
    mask = masks()[form]
    x = torch.randn(B, T, C)
    kept = layer.router.layer_plan(layer.plan_row, B, T)[0]
    y = layer(x, **{keyword: mask})
    for row in range(B):
        idx = kept[row]
        expected = block(x[row : row + 1, idx], **{keyword: row_mask(form, mask, row, idx)})
        torch.testing.assert_close(y[row : row + 1, idx], expected)
        dropped = torch.ones(T, dtype=torch.bool)
        dropped[idx] = False
        assert torch.equal(y[row, dropped], x[row, dropped])


def test_an_unusable_mask_is_an_error_naming_the_keyword():
    layer = RandomLTD(SelfAttention(), KEEP)
    with pytest.raises(ValueError, match=r"argument 'attn_mask'.*leading size 5 is neither 1, the batch 6"):
        layer(torch.randn(B, T, C), attn_mask=torch.zeros(5, T, T, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"argument 'key_padding_mask': must be \[B, T\]"):
        layer(torch.randn(B, T, C), key_padding_mask=torch.zeros(B, T, T, dtype=torch.bool))


def test_separate_wrappers_never_keep_the_same_tokens():
    """The README's ``RandomLTD(block)`` twice: each wrapper has its own row of the plan."""
    first, second = RandomLTD(SDPABlock(), KEEP), RandomLTD(SDPABlock(), KEEP)
    draws = [(first.router.layer_plan(first.plan_row, B, T), second.router.layer_plan(second.plan_row, B, T))]
    assert first.plan_row != second.plan_row
    assert not torch.equal(*draws[0])


def test_applied_layers_draw_different_indices_and_eval_equals_the_unwrapped_model():
    torch.manual_seed(0)
    plain = encoder(dropout=0.1)
    model = apply_random_ltd(copy.deepcopy(plain), [1, 2], keep=KEEP, seed=3)
    assert [type(layer).__name__ for layer in model.layers] == [
        "TransformerEncoderLayer",
        "RandomLTD",
        "RandomLTD",
        "TransformerEncoderLayer",
    ]
    seen = {1: [], 2: []}
    for index in (1, 2):
        model.layers[index].block.register_forward_pre_hook(
            lambda module, args, index=index: seen[index].append(args[0].shape[1])
        )
    kept = []
    for _ in range(20):
        plans = [model.ltd_router.layer_plan(i, B, T) for i in (0, 1)]
        model(torch.randn(B, T, C))
        next_plan(model)  # the driver moves the plan on between steps, never a forward
        kept.append(plans)
    assert seen[1] == seen[2] == [KEEP] * 20  # both layers ran on the kept tokens only
    for first, second in kept:
        assert not torch.equal(first, second)  # the two layers keep different tokens in every step
    assert len({tuple(first.flatten().tolist()) for first, _ in kept}) == 20  # and new ones every step

    x = torch.randn(B, T, C)
    padding = masks()["BT"]
    model.eval(), plain.eval()
    torch.testing.assert_close(model(x, src_key_padding_mask=padding), plain(x, src_key_padding_mask=padding))
    assert model.state_dict().keys() == plain.state_dict().keys()  # checkpoints of either load in the other


def test_layers_by_path_and_clear_errors():
    model = apply_random_ltd(encoder(), ["layers.0", "layers.3"], keep=KEEP)
    assert isinstance(model.layers[0], RandomLTD) and isinstance(model.layers[3], RandomLTD)
    assert [model.layers[i].plan_row for i in (0, 3)] == [0, 1]
    with pytest.raises(ValueError, match="out of range for the 4 blocks of 'layers'"):
        apply_random_ltd(encoder(), [4])
    with pytest.raises(ValueError, match=r"'layers\.9' is not a module path"):
        apply_random_ltd(encoder(), ["layers.9"])
    with pytest.raises(ValueError, match="given more than once"):
        apply_random_ltd(encoder(), [1, "layers.1"])
    with pytest.raises(ValueError, match="already has 'ltd_router'"):
        apply_random_ltd(model, [1])
    with pytest.raises(ValueError, match="must be a non-empty list"):
        apply_random_ltd(encoder(), [])


def test_hugging_face_extended_masks_keep_their_broadcast_query_axis():
    """``attention_mask`` ``[B, 1, 1, T]`` (HF's extended padding mask) -> ``[B, 1, 1, k]``."""
    from lightning_ltd.ltd import gather_mask

    mask = torch.rand(B, 1, 1, T)
    kept = torch.stack([torch.randperm(T)[:KEEP].sort().values for _ in range(B)])
    gathered = gather_mask(mask, kept)
    assert gathered.shape == (B, 1, 1, KEEP)
    assert torch.equal(gathered[:, 0, 0], mask[:, 0, 0].gather(1, kept))


def test_ranks_of_a_loop_of_ones_own_drop_different_tokens():
    """``apply_random_ltd(rank=...)`` / ``set_rank``: two DDP ranks with one seed draw two plans."""
    from lightning_ltd.ltd import set_rank

    def plan(rank):
        model = apply_random_ltd(
            nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 4),
            [1, 2],
            keep=4,
            seed=3,
            rank=rank,
        )
        return model.ltd_router.plan(2, 12)

    assert torch.equal(plan(0), plan(0)) and not torch.equal(plan(0), plan(1))
    model = apply_random_ltd(
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 4), [1, 2], keep=4, seed=3
    )
    set_rank(model, 1)
    assert torch.equal(model.ltd_router.plan(2, 12), plan(1))
    with pytest.raises(ValueError, match="rank=-1 must be an integer >= 0"):
        set_rank(model, -1)


def test_no_layers_given_wraps_the_papers_middle_blocks_and_a_model_of_one_sequential_works():
    model = apply_random_ltd(nn.Sequential(*[SelfAttention(0.0) for _ in range(5)]), keep=KEEP)
    assert [type(block).__name__ for block in model[:5]] == ["SelfAttention", *["RandomLTD"] * 3, "SelfAttention"]
    out = model.train()(torch.randn(B, T, C))  # the router registered in the Sequential passes x on
    assert out.shape == (B, T, C)
    with pytest.raises(
        ValueError, match=r"^layers=None: no middle block of '' can drop tokens exactly \(there are none\)"
    ):
        apply_random_ltd(nn.Sequential(SelfAttention(), SelfAttention()))
