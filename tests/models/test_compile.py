import copy

import lightning as L
import torch
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.models import GPT, GPTConfig
from lightning_ltd.models.compile import compile_blocks, is_compiled
from lightning_ltd.modules import GPTModule


def test_compiled_and_eager_agree_in_training_and_eval():
    torch.manual_seed(0)
    eager = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=4, n_head=2, n_embd=16), seed=3)
    compiled = copy.deepcopy(eager)
    assert compile_blocks(compiled, backend="aot_eager") == 4 and is_compiled(compiled)
    assert set(compiled.state_dict()) == set(eager.state_dict())  # names unchanged
    idx = torch.randint(0, 50, (2, 24))
    torch.testing.assert_close(compiled.eval()(idx), eager.eval()(idx))
    for model in (eager, compiled):
        model.train()
        model.keep = 8
        model.sampler.reseed(3)
    out_eager, out_compiled = eager(idx), compiled(idx)
    torch.testing.assert_close(out_compiled, out_eager)
    out_eager.square().mean().backward()
    out_compiled.square().mean().backward()
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=name)


def test_compilations_bounded_by_distinct_kept_lengths():
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(tuple(tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor)))
        return graph_module.forward

    torch._dynamo.reset()
    torch.manual_seed(0)
    module = GPTModule(vocab_size=32, block_size=32, n_layer=4, n_head=2, n_embd=16)
    compile_blocks(module.model, backend=counting_backend)
    scheduler = RandomLTDScheduler(min_keep=8, max_keep=32, ramp_steps=6, granularity=8)
    data = torch.randint(0, 32, (64, 33))
    trainer = L.Trainer(
        max_steps=12,
        val_check_interval=6,
        limit_val_batches=2,
        callbacks=[scheduler],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(data, batch_size=4), DataLoader(data[:8], batch_size=4))
    distinct = scheduler.distinct_keeps()
    assert distinct == 4  # 8, 16, 24, 32
    assert distinct <= len(graphs) <= distinct + 1  # one graph per kept length, plus evaluation
