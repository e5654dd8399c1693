"""A LightningModule of one's own: ``apply_random_ltd`` on a PyTorch encoder inside a
``RandomLTDModule`` subclass trains under the schedule callback, resumes exactly (dropout 0.1),
and breaking the module contract stops the run at setup with one line."""

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from lightning_ltd import LayerTokenLR, RandomLTDModule, RandomLTDScheduler, apply_random_ltd
from tests.conftest import quiet_trainer

VOCAB, WIDTH, LAYERS, SEQ, ROWS = 48, 32, 4, 16, 4


class CausalEncoderLM(RandomLTDModule):
    """A next-token model on ``nn.TransformerEncoder`` (a ``[T, T]`` causal ``src_mask``)."""

    def __init__(self, dropout: float = 0.1, lr: float = 3e-3, weight_decay: float = 0.1, betas=(0.9, 0.95)):
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.embed = nn.Embedding(VOCAB, WIDTH)
        layer = nn.TransformerEncoderLayer(WIDTH, 2, 64, dropout, batch_first=True)
        encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.encoder = apply_random_ltd(encoder, [1, 2], seed=7)
        self.head = nn.Linear(WIDTH, VOCAB)
        self.num_layers, self.max_seq_len = LAYERS, SEQ

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        causal = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
        return self.head(self.encoder(self.embed(tokens), mask=causal))

    def token_shape(self, batch: torch.Tensor) -> tuple[int, int]:
        return batch.shape[0], batch.shape[1] - 1

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        logits = self(batch[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())


class Losses(Callback):
    def __init__(self):
        self.by_step = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.by_step[trainer.global_step] = float(outputs["loss"])


def fit(module, steps, tmp_path, ckpt_path=None):
    torch.manual_seed(1)
    data = torch.randint(0, VOCAB, (4 * ROWS, SEQ + 1))  # 4 batches an epoch: step 4 ends epoch 1
    losses = Losses()
    scheduler = RandomLTDScheduler(min_keep=4, ramp_steps=6, granularity=4, lr=LayerTokenLR(total_steps=8))
    saver = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1, filename="{step}")
    trainer = quiet_trainer(scheduler, losses, saver, max_steps=steps, enable_checkpointing=True)
    trainer.fit(module, DataLoader(data, batch_size=ROWS), ckpt_path=ckpt_path)
    return losses.by_step, scheduler


def test_own_model_trains_with_the_schedule_and_resumes_exactly(tmp_path):
    straight, scheduler = fit(CausalEncoderLM(), 8, tmp_path / "straight")
    assert scheduler.keep_at(8) == SEQ and 0 < scheduler.ledger.consumed < scheduler.ledger.full
    resumed, _ = fit(CausalEncoderLM(), 8, tmp_path / "resumed", ckpt_path=tmp_path / "straight" / "step=4.ckpt")
    assert sorted(resumed) == [5, 6, 7, 8]
    assert [resumed[s] for s in sorted(resumed)] == [straight[s] for s in sorted(resumed)]  # bit for bit


def test_kept_lengths_reach_the_wrapped_layers():
    module = CausalEncoderLM()
    seen = []
    module.encoder.layers[1].block.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    module.encoder.ltd_router.keep = 6
    module.train()
    module(torch.randint(0, VOCAB, (ROWS, SEQ)))
    assert seen == [6]


class MissingContract(RandomLTDModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 4)


def test_a_broken_contract_is_one_line_at_setup():
    module = MissingContract()
    with pytest.raises(TypeError) as err:
        module.setup("fit")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        "MissingContract: num_layers=None; max_seq_len=None; hparams lack lr, weight_decay, betas"
    )
    assert "RandomLTDModule contract" in message


def test_sgd_with_momentum_keeps_the_weight_decay_groups():
    """The reference ViT finetuning uses SGD (momentum 0.9, weight decay 5e-4), not AdamW."""
    from lightning_ltd import ViTModule

    module = ViTModule(optimizer="sgd", momentum=0.9, lr=1e-4, weight_decay=5e-4)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert [group["weight_decay"] for group in optimizer.param_groups] == [5e-4, 0.0]
    with pytest.raises(ValueError, match=r"optimizer='adam' must be one of adamw, sgd"):
        ViTModule(optimizer="adam")


def test_sizes_come_from_the_models_config_unless_the_module_sets_them():
    from lightning_ltd.modules import GPTModule, ViTModule

    gpt, vit = GPTModule(n_layer=3, block_size=24), ViTModule(image_size=8, patch_size=4)
    assert (gpt.num_layers, gpt.max_seq_len, vit.max_seq_len) == (3, 24, 5)  # ViT: 4 patches + [CLS]
    gpt.max_seq_len = 16  # a module of one's own may state its own
    assert gpt.max_seq_len == 16 and gpt.model.config.block_size == 24
    assert CausalEncoderLM().contract_problems() == []
