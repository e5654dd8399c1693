import copy
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.data.mlm import bucket_widths, pad_batch
from lightning_ltd.ltd import plan_counter
from lightning_ltd.models import BERT, GPT, BERTConfig, GPTConfig, ViT, ViTConfig
from lightning_ltd.models.compile import compile_model, count_graphs, is_compiled, recompile_limits
from lightning_ltd.modules import BERTModule
from tests.conftest import compose_train, quiet_trainer


def make(kind, dropout=0.0):
    torch.manual_seed(0)
    sizes = {"n_layer": 4, "n_head": 2, "n_embd": 16, "dropout": dropout}
    if kind == "gpt":
        return GPT(GPTConfig(vocab_size=50, block_size=32, **sizes), seed=3), (torch.randint(0, 50, (2, 24)),)
    if kind == "bert":
        mask = torch.ones(2, 24, dtype=torch.bool)
        mask[0, 17:] = False  # padding
        return BERT(BERTConfig(vocab_size=50, block_size=32, **sizes), seed=3), (torch.randint(0, 50, (2, 24)), mask)
    return ViT(ViTConfig(image_size=16, patch_size=4, protect_cls=True, **sizes), seed=3), (torch.randn(2, 1, 16, 16),)


@pytest.mark.slow  # a compile per model: about 3 s each
@pytest.mark.parametrize("kind", ["gpt", "bert", "vit"])
def test_fullgraph_compile_in_training_mode_agrees_with_eager(kind):
    eager, inputs = make(kind)
    compiled = copy.deepcopy(eager)
    compiled_forward = torch.compile(compiled, fullgraph=True, dynamic=False, backend="aot_eager")
    for model in (eager, compiled):
        model.train()
        model.keep = 8
        model.router.set_counter(5, 1)
    out_eager, out_compiled = eager(*inputs), compiled_forward(*inputs)  # fullgraph: a break would raise
    torch.testing.assert_close(out_compiled, out_eager)
    assert compiled.router.counter.item() == eager.router.counter.item() == plan_counter(5, 1)  # no mutation
    out_eager.square().mean().backward()
    out_compiled.square().mean().backward()
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=name)
    compiled.router.advance()
    out_next = compiled_forward(*inputs)  # the next step: a new plan, no recompilation needed
    assert not torch.allclose(out_next, out_compiled)


@pytest.mark.slow  # a few seconds: the full suite runs it
def test_fullgraph_compile_with_dropout():
    model, (idx,) = make("gpt", dropout=0.1)
    model.train()
    model.keep = 8
    compiled = torch.compile(model, fullgraph=True, dynamic=False, backend="aot_eager")
    compiled(idx).sum().backward()
    assert model.lm_head.weight.grad is not None


def test_compile_model_keeps_names():
    model, _ = make("gpt")
    names = set(model.state_dict())
    compile_model(model, backend="aot_eager")
    assert is_compiled(model) and set(model.state_dict()) == names


def test_graph_bound_counts_widths_and_kept_lengths():
    assert count_graphs([32], [8, 16, 24, 32]) == 3 + 1 + 1  # keeps below 32, no-drop at 32, eval
    assert count_graphs([16, 32], [8, 16, 24, 32]) == (1 + 1) + (3 + 1) + 2
    assert count_graphs([32], [None]) == 2
    assert bucket_widths(20, 8) == [8, 16, 20]


class PaddedMLM(L.LightningDataModule):
    """Batches padded per batch to multiples of 8, like ``MLMDataModule``, whose widths cycle
    through 8, 16, 24 and 32 so that every (width, kept length) pair of the schedule occurs."""

    block_size, widths = 32, bucket_widths(32, 8)

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        lengths = [length - 3 * (row % 2) for length in (8, 16, 24, 32) for row in range(4)] * 6
        self.rows = [(torch.randint(0, 50, (n,), generator=generator),) * 2 for n in lengths]

    def loader(self):
        return DataLoader(self.rows, batch_size=4, collate_fn=lambda rows: pad_batch(rows, 0, 8, 32))

    def train_dataloader(self):
        return self.loader()

    def val_dataloader(self):
        return self.loader()


@pytest.mark.slow
def test_graphs_over_a_whole_schedule_with_padded_widths_meet_the_bound_exactly():
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(tuple(tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor)))
        return graph_module.forward

    torch._dynamo.reset()
    module = BERTModule(vocab_size=50, block_size=32, n_layer=4, n_head=2, n_embd=16)
    scheduler = RandomLTDScheduler(min_keep=8, max_keep=32, ramp_steps=16, granularity=8)
    trainer = quiet_trainer(scheduler, max_steps=24, val_check_interval=12, limit_val_batches=4)
    data = PaddedMLM()
    compile_model(module.model, backend=counting_backend)
    trainer.fit(module, datamodule=data)
    keeps = scheduler.distinct_keeps()
    assert keeps == [8, 16, 24, 32]  # 6, 5 and 5 steps at 8, 16, 24: each meets all four widths
    bound = count_graphs(data.widths, keeps)
    assert bound == (0 + 1) + (1 + 1) + (2 + 1) + (3 + 1) + 4  # widths 8, 16, 24, 32, and evaluation
    assert len(graphs) == bound, graphs


def counted_compiles(monkeypatch) -> list[int]:
    """``compile_model`` through the real configs, with a backend that counts its graphs
    (aot_eager's work skipped, for time): the list grows by one per graph compiled."""
    import functools

    from lightning_ltd.models import compile as compile_module

    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(1)
        return graph_module.forward

    monkeypatch.setattr(compile_module, "compile_model", functools.partial(compile_model, backend=counting_backend))
    torch._dynamo.reset()
    return graphs


@pytest.mark.slow  # a whole train.py run under torch.compile (about 8 s)
@pytest.mark.parametrize(("buckets", "expected"), [(16, [8, 12, 16, 20, 24, 28, 32]), (3, [8, 20, 32])])
def test_train_py_with_model_compile_runs_one_graph_per_shape(train_config, monkeypatch, buckets, expected):
    """``model.compile=true`` through the real configs (aot_eager instead of inductor, for time):
    one graph per kept length, at most ``ltd.compile_buckets`` of them, and the layer-tokens
    counted at the lengths computed."""
    from lightning_ltd.cli import build, run

    graphs = counted_compiles(monkeypatch)
    cfg = train_config(
        "model.compile=true", "trainer.max_steps=24", "validate_before_fit=false", f"ltd.compile_buckets={buckets}"
    )
    module, datamodule, trainer = build(cfg)
    summary = run(cfg, module, datamodule, trainer)
    assert is_compiled(module.model) and summary["steps"] == 24
    scheduler = next(c for c in trainer.callbacks if isinstance(c, RandomLTDScheduler))
    keeps = scheduler.distinct_keeps()  # MSLG: 8, 12, ..., 32 over 20 steps
    assert keeps == expected
    assert len(graphs) == count_graphs([32], keeps)  # the dropping lengths, full length, evaluation
    from lightning_ltd.ltd import layer_tokens_per_step

    rows, layers = cfg.data.batch_size, module.num_layers
    by_hand = sum(layer_tokens_per_step(rows, 32, scheduler.keep_at(step), layers, layers - 2) for step in range(24))
    assert scheduler.ledger.consumed == by_hand  # the bucketed lengths, the ones computed


@pytest.mark.slow  # a subprocess or several compilations
def test_going_past_the_graph_bound_is_an_error_not_a_silent_fallback():
    model, (idx,) = make("gpt")
    model.train()
    torch._dynamo.reset()
    compile_model(model, backend="aot_eager")
    before = {name: getattr(torch._dynamo.config, name) for name in ("recompile_limit", "fail_on_recompile_limit_hit")}
    try:
        with recompile_limits(0), torch._dynamo.config.patch(recompile_limit=2):
            for keep in (8, 12):  # two graphs: the limit
                model.keep = keep
                model(idx)
            model.keep = 16
            with pytest.raises(Exception, match=r"(?i)recompile|cache_size|limit"):
                model(idx)
    finally:
        torch._dynamo.reset()
    assert {name: getattr(torch._dynamo.config, name) for name in before} == before  # the process is as it was


@pytest.mark.parametrize("experiment", ["gpt3_1.3b_cl_ltd", "gpt3_1.3b_cl_ltd_150b", "bert_large_cl_ltd"])
def test_a_compiled_curriculum_recipe_needs_at_most_40_graphs_where_unbucketed_it_needs_more(experiment):
    """The whole schedule's (curriculum length, kept length) pairs, counted as the driver does,
    from the recipe's own settings: both schedules bucketed (``compile_buckets``) they are few."""
    from hydra.utils import instantiate

    from lightning_ltd.ltd.schedule import KeptLengthSchedule
    from lightning_ltd.models.compile import curriculum_graphs

    cfg = compose_train(Path("unused"), f"experiment={experiment}", "data.path=unused", tiny=False)
    curriculum, ltd = instantiate(cfg.curriculum), cfg.ltd
    sequence = cfg.data.block_size

    def graphs(compiled: bool) -> int:
        lengths = curriculum.resolve(sequence, compiled)
        buckets = ltd.compile_buckets if compiled else None
        keeps = KeptLengthSchedule(True, ltd.min_keep, sequence, ltd.ramp_steps, ltd.granularity, buckets)
        steps = max(lengths.steps, ltd.ramp_steps) + 1
        return curriculum_graphs(lengths.length_at, keeps.keep_at, steps, [sequence])

    assert graphs(compiled=True) <= 40
    assert graphs(compiled=False) > 40


@pytest.mark.slow  # a whole train.py run under torch.compile
def test_a_compiled_curriculum_run_meets_its_graph_budget_exactly(train_config, monkeypatch, caplog):
    """Curriculum lengths and kept lengths both bucketed: the run compiles exactly the (length,
    kept length) pairs the driver counted at start (and says so), and would fail past them."""
    import logging

    from lightning_ltd.cli import build, run

    graphs = counted_compiles(monkeypatch)
    cfg = train_config(
        "model.compile=true",
        "trainer.max_steps=24",
        "validate_before_fit=false",
        "curriculum=seqlen",
        "curriculum.min_len=8",
        "curriculum.steps=16",
        "curriculum.granularity=4",
        "curriculum.compile_buckets=3",
        "ltd.compile_buckets=3",
    )
    module, datamodule, trainer = build(cfg)
    with caplog.at_level(logging.INFO):
        summary = run(cfg, module, datamodule, trainer)
    assert summary["steps"] == 24 and module.seq_len_at is None  # handed back at teardown
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("model.compile:")]
    assert said and int(said[0].split()[1]) == len(graphs), (said, len(graphs))
    assert len(graphs) <= 3 + 3 + 1 + 1  # a monotone path through a 3 x 3 grid, full length, evaluation
