"""Problems between the built objects: model against data, kept lengths against sequences, the
LR schedule against the run's step shapes, a curriculum against what it truncates. Each names
the keys on both sides."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from lightning_ltd.callbacks import Curriculum, RandomLTDScheduler
from lightning_ltd.callbacks.checkpoint import idle_checkpoint_problems
from lightning_ltd.checks.config import validation_switch
from lightning_ltd.checks.fingerprint import content_fingerprint, data_source
from lightning_ltd.checks.groups import Groups
from lightning_ltd.checks.monitoring import monitored_metric_problems, unvalidated_metric_problems
from lightning_ltd.checks.resume import resume_problems, strategy_kind
from lightning_ltd.checks.targets import resolved_class
from lightning_ltd.errors import InvalidFieldsError, is_int
from lightning_ltd.ltd.schedule import layer_tokens_per_step, mslg_keep
from lightning_ltd.modules import RandomLTDModule
from lightning_ltd.modules.base import embedded_vocab_size, sequence_length


def object_problems(cfg: DictConfig, built: Groups, fingerprint: dict[str, Any]) -> list[str]:
    """Every problem between the built objects, and between them and ``ckpt_path``'s checkpoint."""
    module, datamodule, named = built.module, built.datamodule, built.named
    problems = keep_problems(built.scheduler, module, datamodule) + vocabulary_problems(datamodule, module)
    problems += curriculum_problems(built.curriculum, module, datamodule) + length_problems(datamodule, module)
    problems += monitored_metric_problems(named, module) + unvalidated_metric_problems(named, validation_switch(cfg))
    problems += idle_checkpoint_problems(named)
    if cfg.get("ckpt_path") is not None:
        select = functools.partial(OmegaConf.select, cfg)
        problems += resume_problems(
            cfg.ckpt_path,
            module,
            data_source(datamodule),
            select("trainer.max_steps", default=None),
            strategy_kind(select("trainer.strategy", default="auto")),
            fingerprint,
            select("trainer.precision", default="32-true"),
            scheduled_lr=built.lr_schedule is not None,
        )
    return problems


def keep_problems(scheduler: RandomLTDScheduler, module: RandomLTDModule, datamodule: Any = None) -> list[str]:
    """Kept lengths longer than the sequences are a mistake, not a no-op; dropping needs layers."""
    if not scheduler.enabled:
        return []
    if not module.ltd_layers():
        return ["model.ltd_layers: the model has no dropping layers (ltd_layers=[] or n_layer < 3); use ltd=off"]
    problems = [
        f"ltd.{key}={keep} exceeds the sequence length {module.max_seq_len} of the model"
        for key, keep in (("min_keep", scheduler.min_keep), ("max_keep", scheduler.max_keep))
        if keep is not None and keep > module.max_seq_len
    ]
    data_len = getattr(datamodule, "block_size", None)
    if not problems and isinstance(data_len, int) and scheduler.max_keep is None and scheduler.min_keep > data_len:
        problems.append(f"ltd.min_keep={scheduler.min_keep} exceeds data.block_size={data_len}")
    reason = None if problems else never_drops(scheduler, sequence_length(module, datamodule))
    return [f"{reason}: nothing is ever dropped (use ltd=off for that)"] if reason else problems


def lr_schedule_problems(
    lr_schedule: Any,
    scheduler: RandomLTDScheduler,
    module: Any,
    datamodule: Any,
    trainer: L.Trainer,
    curriculum: Curriculum | None = None,
) -> list[str]:
    """A schedule in layer-tokens that no step shape of this run could make sense of (a warmup in
    steps longer than a total in layer-tokens), found now rather than at the first batch. The
    fewest layer-tokens a step can take are at the fewest kept tokens of the shortest row (a
    curriculum's ``min_len``)."""
    rows = getattr(datamodule, "batch_size", None)
    if not hasattr(lr_schedule, "certain_problems") or not isinstance(rows, int) or isinstance(rows, bool):
        return []
    seq_len = sequence_length(module, datamodule)
    global_batch = rows * trainer.world_size * trainer.accumulate_grad_batches
    n_dropping = len(module.ltd_layers()) if scheduler.enabled else 0
    shortest = min(curriculum.min_len, seq_len) if curriculum is not None and curriculum.seqlen else seq_len
    fewest = min(scheduler.min_keep, shortest) if scheduler.enabled else None
    bounds = (
        layer_tokens_per_step(global_batch, shortest, fewest, module.num_layers, n_dropping),
        layer_tokens_per_step(global_batch, seq_len, None, module.num_layers, n_dropping),
    )
    return lr_schedule.certain_problems(bounds, module.num_layers)


def curriculum_problems(curriculum: Curriculum | None, module: Any, datamodule: Any) -> list[str]:
    """A truncation curriculum on batches that cannot be cut (images), or longer than the run's
    sequences; a rarity curriculum on data without rarity scores."""
    if curriculum is None:
        return []
    if curriculum.rarity:
        if not hasattr(datamodule, "rarity_problem"):
            return [
                f"curriculum.rarity: {type(datamodule).__name__} has no rarity scores (use data=tokens, scored by "
                "python -m lightning_ltd.data.rarity)"
            ]
        if (missing := datamodule.rarity_problem()) is not None:
            return [missing]
    if not curriculum.seqlen:
        return []
    if type(module).truncate is RandomLTDModule.truncate:
        return [f"curriculum.seqlen: {type(module).__name__}'s batches cannot be truncated (use curriculum=off)"]
    sequence = sequence_length(module, datamodule)
    try:
        curriculum.resolve(sequence)
    except InvalidFieldsError as err:
        return [err.prefixed("curriculum")]
    return []


def never_drops(scheduler: RandomLTDScheduler, sequence: int) -> str | None:
    """Why no step of the schedule keeps fewer than ``sequence`` tokens (None: some step does).
    The MSLG length only grows, so its first step decides."""
    if scheduler.granularity >= sequence:
        return f"ltd.granularity={scheduler.granularity} is not below the sequence length {sequence}"
    top = min(scheduler.max_keep or sequence, sequence)
    first = mslg_keep(0, min(scheduler.min_keep, top), top, scheduler.ramp_steps, scheduler.granularity)
    if first < sequence:
        return None
    if scheduler.ramp_steps == 0:
        return f"ltd.ramp_steps=0 starts the schedule at its end, the whole sequence of {sequence}"
    return f"ltd.min_keep={scheduler.min_keep} is not below the sequence length {sequence}"


def vocabulary_problems(datamodule: L.LightningDataModule, module: L.LightningModule) -> list[str]:
    """A tokenizer with more ids than the model's embedding would index out of range."""
    data_vocab = getattr(datamodule, "vocab_size", None)
    model_vocab = embedded_vocab_size(module)
    if data_vocab is None or model_vocab is None or data_vocab <= model_vocab:
        return []
    source = getattr(datamodule, "path", None)
    where = f"data.path={source!r}: " if source else ""
    padded = -(-data_vocab // 64) * 64  # LitGPT's padding: whole tiles for the embedding and the LM head
    return [
        f"{where}the data's tokenizer has {data_vocab} tokens, more than model.vocab_size={model_vocab} "
        f"(set model.vocab_size={padded})"
    ]


def length_problems(datamodule: L.LightningDataModule, module: L.LightningModule) -> list[str]:
    """Sequences longer than the model's positions (a pretrained GPT-2's ``n_positions``) would
    fail at the first batch, after the run folder is written."""
    data_len, model_len = getattr(datamodule, "block_size", None), getattr(module, "max_seq_len", None)
    if not is_int(data_len) or not is_int(model_len) or data_len <= model_len:
        return []
    hparams = getattr(module, "hparams", {})
    source = hparams.get("pretrained") if isinstance(hparams, Mapping) else None
    whose = f"model.pretrained={source!r}" if source else "the model"
    return [f"data.block_size={data_len} is longer than the {model_len} positions of {whose}"]


SERVED_BY = {
    "lm": "data=text or data=tokens",
    "mlm": "data=mlm or data=tokens",
    "images": "data=digits or data=imagefolder",
}


def objective_problems(datamodule: Any, module: Any) -> list[str]:
    """The batches the data module (or its class) serves against those the module (or its
    class) trains on; ``auto``: a data module that serves the module's."""
    served, taken = getattr(datamodule, "produces", None), getattr(module, "objective", None)
    if not isinstance(served, str) or served == "auto" or not isinstance(taken, str) or served == taken:
        return []
    return [
        f"{_class_name(module)} trains on {taken} batches but {_class_name(datamodule)} serves {served} "
        f"batches: use {SERVED_BY.get(taken, 'a data module that serves them')}"
    ]


def declared_objective_problems(cfg: DictConfig) -> list[str]:
    """``objective_problems`` of the classes the model and data groups name: when building one
    of them failed, the mismatch is still the first thing to fix (a masked-LM data module's
    tokenizer check says nothing about a causal model)."""
    classes = [resolved_class(str(OmegaConf.select(cfg, f"{key}._target_", default=""))) for key in ("data", "model")]
    return objective_problems(*classes) if all(classes) else []


def _class_name(instance_or_class: Any) -> str:
    return (instance_or_class if isinstance(instance_or_class, type) else type(instance_or_class)).__name__


def batch_problems(datamodule: Any, module: Any) -> list[str]:
    """The data module's batches (``produces``) against what the module trains on
    (``objective``), and an image's channels and size against the ViT's: a mismatch would fail
    at the first batch, after files are written."""
    served = getattr(datamodule, "produces", None)
    problems = objective_problems(datamodule, module)
    if problems or served is None:
        return problems
    hparams = getattr(module, "hparams", {})
    for data_key, model_key in (("channels", "in_channels"), ("image_size", "image_size")):
        ours, theirs = getattr(datamodule, data_key, None), hparams.get(model_key) if served == "images" else None
        if ours is not None and theirs is not None and ours != theirs:
            problems.append(f"data.{data_key}={ours} does not match model.{model_key}={theirs}")
    return problems


def class_problems(datamodule: L.LightningDataModule, module: L.LightningModule) -> list[str]:
    """Labels the classifier head cannot produce would fail mid-run; say so now."""
    classes = getattr(datamodule, "classes", None)
    model_classes = getattr(getattr(module, "hparams", {}), "num_classes", None)
    if not classes or model_classes is None or len(classes) <= model_classes:
        return []
    return [f"the data has {len(classes)} classes, more than model.num_classes={model_classes}"]


def endless_run_warnings(trainer: L.Trainer, lr_schedule: Any) -> list[str]:
    """A run nothing ends: no step or epoch limit (Lightning's documented infinite training, so
    a warning, not an error), no ``max_time``, no layer-token budget stop, no early stopping."""
    from lightning.pytorch.callbacks import EarlyStopping, Timer

    limits = trainer.max_steps != -1 or trainer.max_epochs not in (-1, None)
    stoppers = any(isinstance(c, (Timer, EarlyStopping)) for c in trainer.callbacks)
    budget_stop = getattr(lr_schedule, "stop_at_budget", False)  # its total may be resolved only at the first batch
    if limits or stoppers or budget_stop:
        return []
    return [
        "trainer.max_steps=-1 and trainer.max_epochs=-1 with no trainer.max_time and no layer-token budget "
        "stop: the run trains until it is stopped (Ctrl-C, or SIGTERM, which checkpoints first)"
    ]


def data_content(datamodule: Any) -> str:
    """The fingerprint of what the data module reads: its ``path``'s content, or its class for
    data that ships with a package (the digits)."""
    if not hasattr(datamodule, "path"):
        return type(datamodule).__qualname__
    return content_fingerprint(datamodule.path)
