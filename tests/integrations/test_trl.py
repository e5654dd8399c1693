"""``RandomLTDCallback`` inside TRL's ``SFTTrainer``, with activation checkpointing (its default) and bf16."""

from __future__ import annotations

import pytest
import torch

from lightning_ltd.integrations import RandomLTDCallback
from tests.helpers.hf_trainer import MAX_LEN, VOCAB, BlockTokens, CountingTask, tiny_llama, training_args

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")


def word_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A word-level tokenizer over the task's vocabulary, built in memory (no download)."""
    vocab = {"<pad>": 0, **{f"t{i}": i for i in range(1, VOCAB)}}
    model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<pad>"))
    model.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token=f"t{VOCAB - 1}")


def sft(output_dir, model, resume=None, **overrides):
    task = CountingTask()
    data = datasets.Dataset.from_dict({"input_ids": [task[i]["input_ids"] for i in range(len(task))]})
    settings = training_args(str(output_dir), **overrides).to_dict()
    settings = {key: value for key, value in settings.items() if key in trl.SFTConfig.__dataclass_fields__}
    settings.update(max_length=MAX_LEN, output_dir=str(output_dir), activation_checkpointing=True, bf16=True)
    args = trl.SFTConfig(**settings)
    callback = RandomLTDCallback(max_keep=MAX_LEN, min_keep=8, ramp_steps=16, granularity=4)
    trainer = trl.SFTTrainer(
        model=model, args=args, train_dataset=data, processing_class=word_tokenizer(), callbacks=[callback]
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer, callback


@pytest.mark.slow
def test_sft_trains_counts_and_resumes_exactly(tmp_path):
    model = tiny_llama()
    measured = BlockTokens(model)
    whole, callback = sft(tmp_path, model, save_strategy="steps", save_steps=10, learning_rate=1e-2)
    losses = [entry["loss"] for entry in whole.state.log_history if "loss" in entry]
    assert losses[-1] < 0.8 * losses[0]
    assert whole.state.log_history[-2]["layer_tokens"] == callback.ledger.consumed == measured.total
    assert 0 < whole.state.log_history[-2]["schedule_saving"] < 1

    resumed, resumed_callback = sft(
        tmp_path, tiny_llama(), resume=str(tmp_path / "checkpoint-10"), save_strategy="no", learning_rate=1e-2
    )
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert resumed_callback.ledger.consumed == callback.ledger.consumed

    plain = tiny_llama(wrap=False).eval()
    plain.load_state_dict(whole.model.state_dict())
    batch = torch.tensor([CountingTask()[i]["input_ids"][:12] for i in range(4)])
    with torch.no_grad():
        trained = whole.model.eval()(batch).logits  # accelerate left its bf16 autocast on the forward
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(trained, plain(batch).logits.float())
