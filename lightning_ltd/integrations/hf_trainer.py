"""``RandomLTDCallback``: random-LTD in Hugging Face's ``Trainer`` and the trainers built on it (TRL).

Written as a ``TrainerCallback`` because that is the Trainer's one public extension point: it
sees every optimizer step and micro-batch boundary, the logs and the checkpoint state, on every
rank. The method's pieces are the Lightning driver's own (``ltd.schedule``, ``ltd.lr``,
``ltd.ledger``), so both drivers keep the same tokens and count the same layer-tokens.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import validate_call
from torch import nn
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from lightning_ltd.errors import raise_if
from lightning_ltd.ltd import RandomLTD, find_ltd_layers, find_routers, set_rank, step_seed
from lightning_ltd.ltd.ledger import LayerTokenLedger, saved_state_problems
from lightning_ltd.ltd.lr import STRICT, LayerTokenLRScheduler, RunShape, ScheduledLayerTokens
from lightning_ltd.ltd.schedule import (
    KeptLengthSchedule,
    effective_tokens,
    full_layer_tokens,
    kept_tokens,
    layer_tokens_per_step,
)
from lightning_ltd.ranges import Count, PositiveInt

TOKEN_INPUTS = ("input_ids", "inputs_embeds")
"""The keyword arguments whose first two sizes are a batch's rows and width."""


class RandomLTDCallback(TrainerCallback, ExportableState):
    """Drive a model wrapped by ``apply_random_ltd`` inside ``transformers.Trainer`` or TRL's trainers.

    - Before each optimizer step, the MSLG kept length of ``state.global_step``; before each
      micro-batch, the plan counter (step, micro-batch) and, with ``step_seeding``, the global RNG
      (dropout): both are pure functions of where the run is, so a resume redraws them exactly.
    - Every training forward's layer-tokens are counted from its ``input_ids`` shape (padding
      included, as the blocks compute it). On logging steps the counts are summed over ranks and
      the Trainer's logs get ``keep``, ``layer_tokens``, ``effective_tokens`` and
      ``schedule_saving``. Reporters (``report_to``) that run before this callback do not see
      them: put it first (``trainer.callback_handler.callbacks.insert(0, callback)``) for those.
    - A ``LayerTokenLRScheduler`` handed to the Trainer (``optimizers=(optimizer, scheduler)``)
      is started with the run's shape at ``on_train_begin``; a ``LayerTokenLR`` with
      ``stop_at_budget`` ends training at the first step that reaches its budget.
    - Its totals go into ``trainer_state.json`` with each checkpoint, so ``resume_from_checkpoint``
      continues the count and the LR where they were, also on another number of processes.

    Args:
        max_keep: kept length at the end of the ramp: the rows' length (rows may be shorter,
            padded per batch). The LayerToken LR counts each row at this width.
        min_keep: kept length at step 0.
        ramp_steps: optimizer steps over which the kept length grows; None: the whole run
            (``state.max_steps``).
        granularity: kept lengths are multiples of this (8 or 16 for tensor cores).
        enabled: False trains at full length but still counts layer-tokens and drives the LR.
        step_seeding: reseed the global RNG before every micro-batch from (seed, rank, step,
            micro-batch), the router's seed.
    """

    @validate_call(config=STRICT)
    def __init__(
        self,
        max_keep: PositiveInt,
        min_keep: PositiveInt = 32,
        ramp_steps: Count | None = None,
        granularity: PositiveInt = 8,
        enabled: bool = True,
        step_seeding: bool = True,
    ) -> None:
        raise_if([f"min_keep={min_keep} must be <= max_keep={max_keep}"] if min_keep > max_keep else [])
        self.settings = {
            "max_keep": max_keep,
            "min_keep": min_keep,
            "ramp_steps": ramp_steps,
            "granularity": granularity,
            "enabled": enabled,
            "step_seeding": step_seeding,
        }
        self.ledger = LayerTokenLedger()
        self.schedule: KeptLengthSchedule | None = None
        self.scheduled: ScheduledLayerTokens | None = None
        self.lr_scheduler: LayerTokenLRScheduler | None = None
        self.anchor = (0, 0)  # (step, scheduled layer-tokens before it) where the last save stood
        self.stop_step: int | None = None  # where the layer-token budget stopped training
        self.micro_batch = 0
        self._routers: list[Any] = []
        self._layers = (0, 0)  # (blocks, dropping blocks)
        self._rank = 0
        self._hook: Any = None

    # ---- the run begins: find the model's routers, build the schedule, restore the counts -----------

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kwargs: Any
    ) -> None:
        self._routers = find_routers(model) if model is not None else []
        if not self._routers:
            raise ValueError(
                "RandomLTDCallback: the model has no random-LTD layers; wrap it first: apply_random_ltd(model)"
            )
        self._rank = args.process_index
        set_rank(model, self._rank)
        self._layers = counted_layers(model)
        settings = self.settings
        ramp = settings["ramp_steps"] if settings["ramp_steps"] is not None else max(state.max_steps, 1)
        self.schedule = KeptLengthSchedule(
            settings["enabled"], settings["min_keep"], settings["max_keep"], ramp, settings["granularity"]
        )
        self._restore(state)
        shape = RunShape(
            global_batch=args.train_batch_size * args.world_size * args.gradient_accumulation_steps,
            seq_len=settings["max_keep"],
            n_layer=self._layers[0],
            n_dropping=self._layers[1],
            keep_at=self.schedule.keep_at,
        )
        self.scheduled = ScheduledLayerTokens(shape, self.anchor)
        scheduler = kwargs.get("lr_scheduler")
        scheduler = getattr(scheduler, "scheduler", scheduler)  # accelerate's AcceleratedScheduler wraps it
        self.lr_scheduler = scheduler if isinstance(scheduler, LayerTokenLRScheduler) else None
        if self.lr_scheduler is not None:
            self.lr_scheduler.counter = None  # a new run's shape: resolve its totals again
            self.lr_scheduler.start(self.scheduled, state.global_step)
        if self._hook is not None:
            self._hook.remove()
        self._hook = model.register_forward_pre_hook(self._count, with_kwargs=True)  # type: ignore[union-attr]

    def _restore(self, state: Any) -> None:
        """The counts saved with the checkpoint the Trainer resumed from (none on a fresh run)."""
        saved = state.stateful_callbacks.get(type(self).__name__, {})
        attributes = (saved[0] if isinstance(saved, list) else saved).get("attributes", {})
        self.ledger, self.anchor, self.stop_step = LayerTokenLedger(), (0, 0), None  # a new train() starts afresh
        if not attributes or state.global_step == 0:
            return
        raise_if([f"resume_from_checkpoint: {p}" for p in saved_state_problems(type(self).__name__, attributes)])
        self.ledger.load_state_dict(attributes)
        self.anchor = (attributes["scheduled_step"], attributes["scheduled_layer_tokens"])

    # ---- each optimizer step and micro-batch -----------------------------------------------------

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._route(state.global_step, 0)

    def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._route(state.global_step, self.micro_batch + 1)

    def _route(self, step: int, micro_batch: int) -> None:
        """The kept length and the plan of (step, micro-batch), and its dropout seed."""
        assert self.schedule is not None, "on_train_begin runs first"
        self.micro_batch = micro_batch
        keep = self.schedule.keep_at(step)
        for router in self._routers:
            router.keep = keep
            router.set_counter(step, micro_batch)
        if self.settings["step_seeding"]:
            torch.manual_seed(step_seed(self._routers[0].seed, self._rank, step, micro_batch))

    def _count(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        """Forward pre-hook of the model: one training forward's layer-tokens (host integers)."""
        if not module.training or torch._C._current_graph_task_id() != -1:  # -1: not a recompute in backward
            return
        tokens = next((kwargs[name] for name in TOKEN_INPUTS if kwargs.get(name) is not None), None)
        if tokens is None and args and isinstance(args[0], torch.Tensor):
            tokens = args[0]
        if tokens is None or tokens.ndim < 2:
            return
        rows, width = tokens.shape[0], tokens.shape[1]
        n_layer, n_dropping = self._layers
        keep = self._routers[0].keep
        self.ledger.add(
            layer_tokens_per_step(rows, width, keep, n_layer, n_dropping), full_layer_tokens(rows, width, n_layer)
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        assert self.scheduled is not None
        scheduler = self.lr_scheduler
        budget = None if scheduler is None else scheduler.schedule.budget
        if budget is not None and self.scheduled.before(state.global_step) >= budget:
            control.should_training_stop = True
            control.should_log = True
            control.should_save = args.save_strategy != "no"
            self.stop_step = state.global_step
        if control.should_log or control.should_save or control.should_training_stop:
            self.sync(args)  # every rank is here: the one collective, where a total is read
        if control.should_save:
            self.anchor = (state.global_step, self.scheduled.before(state.global_step))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.sync(args)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def sync(self, args: Any) -> None:
        """Sum every rank's pending counts into the ledger (a collective: every rank calls it)."""
        if args.world_size == 1 or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            self.ledger.sync()
            return

        def reduce(values: list[int]) -> list[int]:
            local = torch.tensor(values, dtype=torch.int64, device=args.device)
            torch.distributed.all_reduce(local)
            return local.tolist()

        self.ledger.sync(reduce)

    # ---- logs and checkpoints ----------------------------------------------------------------------

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Training logs get the ledger's totals (synced at this step's end) and the kept length."""
        if logs is None or "loss" not in logs or self.schedule is None:
            return
        n_layer = self._layers[0]
        metrics = {
            "keep": kept_tokens(self.schedule.keep_at(max(state.global_step - 1, 0)), self.settings["max_keep"]),
            "layer_tokens": self.ledger.consumed,
            "effective_tokens": effective_tokens(self.ledger.consumed, n_layer),
            "schedule_saving": self.ledger.saving,
        }
        logs.update(metrics)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(metrics)  # the Trainer copied the logs there just before

    def state(self) -> dict[str, Any]:
        """What ``trainer_state.json`` keeps: the settings and the counts as of the last save."""
        return {
            "args": dict(self.settings),
            "attributes": {
                **self.ledger.state_dict(),
                "scheduled_step": self.anchor[0],
                "scheduled_layer_tokens": self.anchor[1],
            },
        }


def counted_layers(model: nn.Module) -> tuple[int, int]:
    """(blocks, dropping blocks) of a wrapped model: the block lists that hold its ``RandomLTD``
    layers count whole, since their other blocks see every token."""
    dropping = len(find_ltd_layers(model))
    lists = [
        module
        for module in model.modules()
        if isinstance(module, (nn.ModuleList, nn.Sequential))
        and any(isinstance(child, RandomLTD) for child in module.children())
    ]
    return max(sum(len(blocks) for blocks in lists), dropping), dropping
