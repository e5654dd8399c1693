"""One rank of a ``transformers.Trainer`` run with ``RandomLTDCallback`` (``torchrun`` starts it):
writes what this rank's blocks processed, its first plan and the logs to ``OUT/rankN.json``.

Usage: ``python -m torch.distributed.run --nproc_per_node N tests/helpers/trainer_ranks.py OUT [RESUME]``
"""

import json
import sys
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lightning_ltd import LayerTokenLR
from lightning_ltd.integrations import RandomLTDCallback
from lightning_ltd.ltd.lr import LayerTokenLRScheduler
from tests.helpers.hf_trainer import MAX_LEN, BlockTokens, CountingTask, pad_batch, tiny_llama, training_args


def main(out: Path, resume: str | None) -> None:
    model = tiny_llama(dropout=0.1)
    measured = BlockTokens(model)
    plans: list[list[list[int]]] = []
    layer = model.model.layers[1]
    layer.register_forward_hook(
        lambda m, a, o: plans.append(m.router.layer_plan(1, *a[0].shape[:2])[0].tolist()) if not plans else None
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scheduler = LayerTokenLRScheduler(optimizer, LayerTokenLR(total_layer_tokens=40_000, warmup_layer_tokens=4_000))
    callback = RandomLTDCallback(max_keep=MAX_LEN, min_keep=8, ramp_steps=16, granularity=4)
    args = training_args(
        str(out),
        ddp_backend="gloo",
        logging_steps=1,
        save_strategy="steps",
        save_steps=10,
        activation_checkpointing=True,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=CountingTask(),
        data_collator=pad_batch("left"),
        callbacks=[callback],
        optimizers=(optimizer, scheduler),
    )
    trainer.train(resume_from_checkpoint=resume)
    name = f"rank{args.process_index}" + ("-resumed" if resume else "")
    record = {"measured": measured.total, "first_plan": plans[0], "logs": trainer.state.log_history}
    (out / f"{name}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
