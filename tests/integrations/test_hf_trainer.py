"""``RandomLTDCallback`` inside ``transformers.Trainer``: schedule, plans, logs, LR, resume."""

from __future__ import annotations

import pytest
import torch
import transformers

from lightning_ltd import LayerTokenLR
from lightning_ltd.integrations import RandomLTDCallback
from lightning_ltd.ltd import find_routers, mslg_keep, plan_counter, warmup_decay_lr
from lightning_ltd.ltd.lr import LayerTokenLRScheduler
from tests.helpers.hf_trainer import MAX_LEN, BlockTokens, CountingTask, pad_batch, tiny_llama, training_args

RAMP = dict(max_keep=MAX_LEN, min_keep=8, ramp_steps=16, granularity=4)


def train(tmp_path, *, side="right", model=None, callback=None, optimizers=(None, None), resume=None, **args):
    model = model if model is not None else tiny_llama()
    callback = callback if callback is not None else RandomLTDCallback(**RAMP)
    trainer = transformers.Trainer(
        model=model,
        args=training_args(str(tmp_path), **args),
        train_dataset=CountingTask(),
        data_collator=pad_batch(side),
        callbacks=[callback],
        optimizers=optimizers,
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer, callback


def losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.slow
@pytest.mark.parametrize("side", ["left", "right"])
def test_the_loss_falls_and_eval_is_the_unwrapped_model(tmp_path, side):
    trainer, _ = train(tmp_path, side=side, max_steps=60, learning_rate=1e-2)
    assert losses(trainer)[-1] < 0.5 * losses(trainer)[0]
    model = trainer.model.eval()
    plain = tiny_llama(wrap=False).eval()
    plain.load_state_dict(model.state_dict())  # the wrapper keeps the state dict's names
    batch = pad_batch(side)([CountingTask()[i] for i in range(4)])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, plain(**batch).logits)


@pytest.mark.slow
def test_kept_lengths_and_plans_follow_the_step_and_micro_batch(tmp_path):
    model = tiny_llama()
    seen: list[tuple[int, int | None]] = []
    router = find_routers(model)[0]
    model.register_forward_pre_hook(
        lambda m, a: seen.append((int(router.counter), router.keep)) if m.training else None
    )
    train(tmp_path, model=model)
    expected = [
        (plan_counter(step, micro_batch), mslg_keep(step, 8, MAX_LEN, 16, 4))
        for step in range(20)
        for micro_batch in (0, 1)
    ]
    assert seen == expected


@pytest.mark.slow
def test_logged_layer_tokens_are_what_the_blocks_processed(tmp_path):
    model = tiny_llama()
    measured = BlockTokens(model)
    trainer, callback = train(tmp_path, model=model, activation_checkpointing=True)
    logged = [entry for entry in trainer.state.log_history if "layer_tokens" in entry]
    assert [entry["step"] for entry in logged] == [5, 10, 15, 20]
    assert logged[-1]["layer_tokens"] == callback.ledger.consumed == measured.total
    full = callback.ledger.full
    assert logged[-1]["schedule_saving"] == pytest.approx(1 - measured.total / full)
    assert logged[-1]["effective_tokens"] == measured.total / 4
    assert [entry["keep"] for entry in logged] == [mslg_keep(s - 1, 8, MAX_LEN, 16, 4) for s in (5, 10, 15, 20)]


@pytest.mark.slow
def test_gradient_checkpointing_and_bf16_keep_the_tokens_of_the_forward(tmp_path):
    plain, _ = train(tmp_path / "plain", max_steps=6)
    checkpointed, _ = train(tmp_path / "ckpt", max_steps=6, activation_checkpointing=True)
    for (name, a), b in zip(plain.model.state_dict().items(), checkpointed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    bf16, _ = train(tmp_path / "bf16", max_steps=10, bf16=True)
    assert all(torch.isfinite(torch.tensor(losses(bf16))))


@pytest.mark.slow
def test_the_layer_token_lr_is_the_trainers_scheduler(tmp_path):
    model = tiny_llama()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scheduler = LayerTokenLRScheduler(optimizer, LayerTokenLR(total_steps=20, warmup_steps=4))
    trainer, _ = train(tmp_path, model=model, optimizers=(optimizer, scheduler), logging_steps=1)
    # layer-tokens before each step, summed by hand: 8 rows x (kept x 2 middle + 32 x 2 outer layers)
    per_step = [8 * (mslg_keep(t, 8, MAX_LEN, 16, 4) * 2 + MAX_LEN * 2) for t in range(20)]
    before = [sum(per_step[:t]) for t in range(21)]
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    expected = [warmup_decay_lr(before[t], 3e-3, before[4], before[20], 0.0, "cosine") for t in range(20)]
    assert logged == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.slow
def test_budget_stops_at_the_first_step_that_reaches_it(tmp_path):
    model = tiny_llama()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    per_step = [8 * (mslg_keep(t, 8, MAX_LEN, 16, 4) * 2 + MAX_LEN * 2) for t in range(20)]
    budget = sum(per_step[:7]) - 1  # reached after step 7
    schedule = LayerTokenLR(total_layer_tokens=budget, stop_at_budget=True)
    trainer, callback = train(tmp_path, model=model, optimizers=(optimizer, LayerTokenLRScheduler(optimizer, schedule)))
    assert trainer.state.global_step == callback.stop_step == 7


@pytest.mark.slow
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_resume_from_checkpoint_continues_exactly(tmp_path, dropout):
    whole, whole_callback = train(tmp_path / "whole", model=tiny_llama(dropout), save_strategy="steps", save_steps=10)
    resumed, resumed_callback = train(
        tmp_path / "whole",
        model=tiny_llama(dropout),
        resume=str(tmp_path / "whole" / "checkpoint-10"),
        save_strategy="no",
    )
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert resumed_callback.ledger.consumed == whole_callback.ledger.consumed
    assert resumed.state.log_history[-2] == whole.state.log_history[-2]  # the step-20 training log


@pytest.mark.slow  # about 2 s
def test_bad_settings_and_models_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="min_keep=64 must be <= max_keep=32"):
        RandomLTDCallback(max_keep=32, min_keep=64)
    with pytest.raises(ValueError, match="max_keep"):
        RandomLTDCallback(max_keep=0)
    with pytest.raises(ValueError, match="granularity"):
        RandomLTDCallback(max_keep=32, granularity=True)
    with pytest.raises(ValueError, match=r"wrap it first: apply_random_ltd\(model\)"):
        train(tmp_path, model=tiny_llama(wrap=False), max_steps=1)


@pytest.mark.slow
def test_a_corrupt_saved_count_is_refused_naming_it(tmp_path):
    train(tmp_path, save_strategy="steps", save_steps=10, max_steps=10)
    state_file = tmp_path / "checkpoint-10" / "trainer_state.json"
    state_file.write_text(state_file.read_text().replace('"layer_tokens": ', '"layer_tokens": -'))
    with pytest.raises(ValueError, match="resume_from_checkpoint: its RandomLTDCallback state has layer_tokens=-"):
        train(tmp_path, resume=str(tmp_path / "checkpoint-10"))


@pytest.mark.slow
def test_one_callback_in_two_fresh_runs_counts_each_from_zero(tmp_path):
    callback = RandomLTDCallback(**RAMP)
    _, first = train(tmp_path / "a", callback=callback, max_steps=4)
    consumed = first.ledger.consumed
    _, second = train(tmp_path / "b", callback=callback, max_steps=4)
    assert second.ledger.consumed == consumed > 0
