"""Every bad setting, path and checkpoint a user may give: ``python train.py`` exits 2 with one
stderr line naming the key or path, before any work (no validation, no checkpoint, no metrics).
Each row runs through the entry point ``train.py`` runs (in this process: Hydra's main, its
callbacks, the task).

The table is the issue's 86 inputs and more; each row is (overrides, text the line must hold).
Placeholders in braces name files the ``files`` fixture makes. ``test_train.py`` keeps a fast
subset; this whole table is in the slow tier.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from lightning_ltd.cli import EXIT_BAD_INPUT, train
from lightning_ltd.data.prepare import prepare
from lightning_ltd.pretrained.tiny import tiny_gpt2, tiny_hf_bert, tiny_llama, tiny_tokenizer
from tests.conftest import QUICK, TINY, compose_train
from tests.helpers.entry import launched

HF_DATA = ["data.block_size=32", "data.batch_size=2", "data.max_bytes=120000", "ltd.min_keep=8"]
CASES: list[tuple[list[str], str]] = [
    # the run
    (["seed=abc"], "seed='abc' must be an integer"),
    (["seed=1.5"], "seed=1.5 must be an integer"),
    (["trainer.max_steps=ten"], "trainer.max_steps='ten'"),
    (["trainer.max_steps=-5"], "trainer.max_steps=-5"),
    (["trainer.max_steps=0"], "trainer.max_steps=0"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval=0"),
    (["trainer.val_check_interval=-3"], "trainer.val_check_interval=-3"),
    (["trainer.val_check_interval=abc"], "trainer.val_check_interval='abc'"),
    (["trainer.log_every_n_steps=-1"], "trainer.log_every_n_steps=-1"),
    (["trainer.accelerator=tpu"], "accelerator"),
    (["trainer.devices=0"], "devices"),
    (["trainer.precision=17"], "precision"),
    (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1"),
    (["+trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches=0"),
    (["trainer.limit_val_batches=-1"], "trainer.limit_val_batches=-1"),
    (["trainer=fsdp"], "trainer.accelerator='gpu': no such device"),
    # the model
    (["model.lr=-0.001"], "model.lr=-0.001 must be a number > 0"),
    (["model.lr=0"], "model.lr=0 must be a number > 0"),
    (["model.lr=abc"], "model.lr='abc'"),
    (["model.weight_decay=-1"], "model.weight_decay=-1"),
    (["model.betas=[0.9]"], "model.betas=[0.9]"),
    (["model.betas=[0.9,1.5]"], "model.betas=[0.9, 1.5]"),
    (["model.n_head=5"], "model.n_embd=32 must be divisible by n_head=5"),
    (["model.n_head=0"], "model.n_head=0"),
    (["model.n_layer=1"], "model.ltd_layers"),
    (["model.n_layer=0"], "model.n_layer=0"),
    (["model.n_embd=0"], "model.n_embd=0"),
    (["model.block_size=16"], "data.block_size=32 exceeds model.block_size=16"),
    (["model.dropout=1.5"], "model.dropout=1.5"),
    (["model.dropout=-0.1"], "model.dropout=-0.1"),
    (["model.ltd_layers=[]"], "model.ltd_layers"),
    (["model.ltd_layers=[1,3]"], "model.ltd_layers=[1, 3]"),
    (["model.ltd_layers=[a]"], "model.ltd_layers=['a']"),
    (["model.ltd_layers=[0,1]"], "dropping layer index 0 is the first layer, which sees every token"),
    (["model=hf_causal_lm", "model.pretrained={tiny_gpt2}", "model.ltd_layers=[3]", *HF_DATA], "index 3 is the last"),
    (["model.vocab_size=10"], "model.vocab_size=10"),
    (["model.position=foo"], "model.position='foo'"),
    (["model.compile_mode=fast"], "model.compile_mode='fast'"),
    (["model.pretrained=/no/such/dir"], "model.pretrained='/no/such/dir'"),
    (["model.pretrained={notes}"], "model.pretrained="),
    (["model.pretrained={broken_config}"], "config.json"),
    (["+model.foo=1"], "model: "),
    (["model.block_size=64", "ltd.min_keep=48"], "ltd.min_keep=48 exceeds data.block_size=32"),
    # the dropping schedule
    (["ltd.min_keep=-1"], "ltd.min_keep=-1"),
    (["ltd.min_keep=0"], "ltd.min_keep=0"),
    (["ltd.min_keep=40"], "ltd.min_keep=40 exceeds the sequence length 32"),
    (["ltd.max_keep=64"], "ltd.max_keep=64 exceeds the sequence length 32"),
    (["ltd.max_keep=6"], "ltd.min_keep=8 must be <= max_keep=6"),
    (["ltd.ramp_steps=-1"], "ltd.ramp_steps=-1"),
    (["ltd.granularity=0"], "ltd.granularity=0"),
    (["ltd.granularity=512"], "ltd.granularity=512 is not below the sequence length 32"),
    (["model=bert_small", "data=text"], "BERTModule trains on mlm batches but TextDataModule serves lm batches"),
    (["experiment=vit_digits", "data=text"], "ViTModule trains on images batches but TextDataModule serves lm"),
    (["model=gpt_small", "data=mlm"], "GPTModule trains on lm batches but MLMDataModule serves mlm batches"),
    (["data=digits"], "GPTModule trains on lm batches but DigitsDataModule serves images batches"),
    (
        ["experiment=vit_digits", "data=imagefolder", "data.path={images}", "data.channels=3"],
        "data.channels=3 does not match model.in_channels=1",
    ),
    (["ltd.granularity=32"], "nothing is ever dropped"),
    (["+trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 must be"),
    (["logger.name=../.."], "logger.name='../..' leaves logger.save_dir"),
    (["+logger.version=../../x"], "logger.version='../../x' leaves logger.save_dir"),
    (["trainer.max_steps=-1"], "lr.total_steps=-1 (from trainer.max_steps) must be"),
    (["model.lr=inf"], "model.lr=inf must be a number > 0"),
    (["model.weight_decay=nan"], "model.weight_decay=nan must be a number >= 0"),
    (["data=tokens", "data.path={lots_meta}"], "meta.json says vocab_size='lots', not a positive integer"),
    (["data=tokens", "data.path={bad_dtype_meta}"], "meta.json says dtype='float7'"),
    (["ckpt_path={good_ckpt}", "ltd.min_keep=16", "model.dropout=0.1"], "model.dropout: 0.0 -> 0.1"),
    (["ckpt_path={good_ckpt}", "seed=5"], "seed: 1234 -> 5"),
    (["ltd.granularity=abc"], "ltd.granularity='abc'"),
    (["ltd.min_keep=32"], "ltd.min_keep=32 is not below the sequence length 32: nothing is ever dropped"),
    (["ltd.ramp_steps=0"], "ltd.ramp_steps=0 starts the schedule at its end, the whole sequence of 32"),
    (["ckpt_path=123"], "ckpt_path=123 must be a string, or null"),
    (["+logger.flush_logs_every_n_steps=0"], "logger.flush_logs_every_n_steps=0 must be a positive integer"),
    (
        ["callbacks.model_checkpoint.filename=../../escaped"],
        "callbacks.model_checkpoint.filename='../../escaped' leaves callbacks.model_checkpoint.dirpath=",
    ),
    (["logger.save_dir=/proc/nope"], "logger.save_dir='/proc/nope': cannot write there (cannot create /proc/nope"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0 must be a positive integer"),
    (  # the tiny run drops the bar (QUICK): add it back
        [
            "+callbacks.progress_bar._target_=lightning.pytorch.callbacks.TQDMProgressBar",
            "+callbacks.progress_bar.refresh_rate=-1",
        ],
        "callbacks.progress_bar.refresh_rate=-1 must be an integer >= 0",
    ),
    (["data.seed=-3"], "data.seed=-3 must be an integer in [0, 4294967295]"),
    (["ckpt_path={empty_ckpt}"], "empty.ckpt is empty (a save that never completed?)"),
    (["ckpt_path={negative_step_ckpt}"], "global_step=-5 in negative_step.ckpt is not a step count"),
    (["trainer.precision=16-mixed"], "trainer.precision='16-mixed' needs a GPU (on CPU: bf16-mixed"),
    (
        ["trainer.limit_val_batches=0", "+callbacks.model_checkpoint.monitor=val/loss"],
        "callbacks.model_checkpoint.monitor='val/loss' watches a validation metric, but trainer.limit_val_batches=0",
    ),
    (
        ["lr=layer_token_budget", "lr.total_layer_tokens=0", "lr.warmup_layer_tokens=null"],
        "lr.total_layer_tokens=0 must be a positive integer",
    ),
    (["ckpt_path={weights_only_ckpt}"], "it holds no loops, optimizer_states or lr_schedulers (a weights-only save?)"),
    (["ckpt_path={int_moment_ckpt}"], "optimizer state(s) are stored in another dtype than this run's, e.g. "),
    # the optimizer and scheduler states against a fresh optimizer of the run's (checks/optimizer.py)
    (["ckpt_path={no_schedulers_ckpt}"], "it holds 0 LR scheduler state(s), this run has 1"),
    (["ckpt_path={lr_string_ckpt}"], "optimizer_states[0].param_groups[0].lr is 'fast', not a finite number"),
    (["ckpt_path={negative_moment_ckpt}"], "optimizer_states[0].state[0].exp_avg_sq holds negative values"),
    (
        ["experiment=vit_digits", "data=imagefolder", "data.path={one_per_class_images}"],
        "data.val_every=5: all 2 images go to validation",
    ),
    (["experiment=vit_finetune_tiny", "model.pretrained={notes}"], "not a weight file (not a torch.save file)"),
    (["model=bert_small", "data=mlm", "data.min_len=1000"], "data.min_len=1000 is longer than any segment"),
    # lengths that contradict each other, sizes beyond the model or the machine (round 7)
    (["+trainer.max_time=00:00:00:00"], "trainer.max_time='00:00:00:00' stops the run before its first step"),
    (["+trainer.min_steps=100"], "trainer.min_steps=100 is more than trainer.max_steps=30: the maximum stops first"),
    (["+trainer.min_epochs=3", "trainer.max_epochs=2"], "trainer.min_epochs=3 is more than trainer.max_epochs=2"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 must be a positive integer, or -1, or null"),  # 0 steps, exit 0
    (
        ["experiment=gpt2_finetune_tiny", "model.pretrained={tiny_gpt2}", "data.block_size=256"],
        "data.block_size=256 is longer than the 128 positions of model.pretrained='{tiny_gpt2}'",
    ),
    (
        [
            "experiment=vit_digits",
            "data=imagefolder",
            "data.path={images}",
            "data.image_size=100000",
            "model.image_size=32",
        ],
        "data.image_size=100000 makes images of more than Pillow's 89,478,485 pixels",
    ),
    (["trainer=ddp_cpu", "trainer.devices=1000"], "trainer.devices=1000 processes on the CPU, more than its"),
    (["+trainer.callbacks=[]"], "trainer.callbacks is set by the callbacks group"),
    (["+trainer.logger=false"], "trainer.logger is set by the logger group (logger=csv, or logger=null for none)"),
    (["ckpt_path={fingerprint_string_ckpt}"], "its run_fingerprint is a str, not a mapping"),
    (["ckpt_path={ledger_negative_ckpt}"], "its RandomLTDScheduler state has layer_tokens=-100, not a count"),
    (["ckpt_path={ledger_overfull_ckpt}"], "its RandomLTDScheduler state keeps 5000 layer-tokens of 4096"),
    (["ckpt_path={loops_string_ckpt}"], "its loops['fit_loop'] is a str, not a state mapping"),
    (["ckpt_path={callback_string_ckpt}"], "its callbacks['RandomLTDScheduler'] is a str, not a state mapping"),
    (["ckpt_path={step_ahead_ckpt}"], "global_step=6 disagrees with the 4 optimizer steps its loops count"),
    (["ckpt_path={batches_behind_ckpt}"], "global_step=4 exceeds the 1 training batches its loops count"),
    (["ckpt_path={progress_disordered_ckpt}"], "fit_loop.epoch_loop.batch_progress.total: completed=99 exceeds"),
    (["ckpt_path={scheduled_ahead_ckpt}"], "RandomLTDScheduler state has scheduled_step=1000, its global_step=4"),
    (
        ["ckpt_path={adam_step_ahead_ckpt}"],
        "optimizer_states[0].state[0].step=1000 exceeds the checkpoint's global_ste",
    ),
    (["ckpt_path={negative_lr_ckpt}"], "optimizer_states[0].param_groups[0].lr is -1.0, negative where this run's"),
    (["ckpt_path={scheduler_string_ckpt}"], "its lr_schedulers[0] is a str, not a state mapping"),
    (["ckpt_path={no_callbacks_ckpt}"], "it holds no RandomLTDScheduler state (the layer-token count the LR"),
    (["ckpt_path={no_fit_loop_ckpt}"], "its loops hold no 'fit_loop' (only ['predict_loop', 'test_loop', 'valid"),
    (["ckpt_path={epoch_string_ckpt}"], "epoch='x' in epoch_string_ckpt.ckpt is not an epoch count"),
    (["ckpt_path={old_lightning_ckpt}"], "pytorch-lightning_version='0.5.0' in old_lightning_ckpt.ckpt is older than"),
    (["ckpt_path={no_version_ckpt}"], "no pytorch-lightning_version in no_version_ckpt.ckpt"),
    (["ckpt_path={odd_version_ckpt}"], "pytorch-lightning_version='two' in odd_version_ckpt.ckpt is not a version"),
    # monitors and summary metrics against the metrics the module declares (monitoring.py)
    (
        ["+callbacks.model_checkpoint.monitor=val/nope", "callbacks.model_checkpoint.save_top_k=1"],
        "callbacks.model_checkpoint.monitor: GPTModule logs no 'val/nope' (its validation metrics: val/loss, val/ppl)",
    ),
    (["+callbacks.summary.metrics=[val/loss,val_acc]"], "callbacks.summary.metrics: GPTModule logs no 'val_acc'"),
    (
        [
            "experiment=bert_mlm",
            "+callbacks.early_stop._target_=lightning.pytorch.callbacks.EarlyStopping",
            "+callbacks.early_stop.monitor=val/ppl",
        ],
        "callbacks.early_stop.monitor: BERTModule logs no 'val/ppl' (its validation metrics: val/loss, val/mlm_acc)",
    ),
    (  # the mismatch comes first even when building the data module failed too
        ["data=mlm", "data.tokenizer={plain_tokenizer}"],
        "error: GPTModule trains on lm batches but MLMDataModule serves mlm batches: use data=text or data=tokens; "
        "data.tokenizer=",
    ),
    (["data.tokenizer={broken_tokenizer}"], "data.tokenizer='{broken_tokenizer}': not a readable tokenizer folder"),
    # every argument of Lightning's classes has a range (settings.py), subclasses included
    (["+trainer.min_steps=-3"], "trainer.min_steps=-3 must be an integer >= 0, or null"),
    (["+trainer.max_time=soon"], "trainer.max_time='soon' must be a string of the form DD:HH:MM:SS"),
    (["+trainer.overfit_batches=-1"], "trainer.overfit_batches=-1 must be an integer >= 0"),
    (["+trainer.gradient_clip_algorithm=l2"], "trainer.gradient_clip_algorithm='l2' must be null or one of"),
    (["trainer.devices=abc"], "trainer.devices='abc' must be a positive integer, or -1, or a string of the form"),
    (["callbacks.model_checkpoint.save_top_k=-2"], "callbacks.model_checkpoint.save_top_k=-2 must be an integer >= -1"),
    (["callbacks.model_summary.max_depth=-2"], "callbacks.model_summary.max_depth=-2 must be an integer >= -1"),
    (["trainer.default_root_dir={notes}"], "trainer.default_root_dir='{notes}': cannot write there"),
    (["callbacks.model_checkpoint.dirpath=''"], "callbacks.model_checkpoint.dirpath='' is an empty path"),
    (["data.path=''"], "data.path='' is an empty path (null for the default)"),
    (["data.path={shards}"], "data.path='{shards}': a prepared token folder (meta.json): read it with data=tokens"),
    (["ckpt_path=''"], "ckpt_path='' is an empty path"),
    (["paths.output_dir={notes}"], "paths.output_dir='{notes}': cannot write there ("),
    (["lr=step_cosine", "lr.total_steps=0"], "lr.total_steps=0 must be a positive integer"),
    (["lr=step_cosine", "lr.total_steps=null"], "lr.total_steps=None must be a positive integer for decay='cosine'"),
    (
        ["model.compile=true", "model.compile_mode=reduce-overhead"],
        "model.compile_mode='reduce-overhead' captures CUDA graphs and needs a GPU",
    ),
    # the learning rate
    (["lr.min_lr=0.01"], "lr.min_lr=0.01 must be <= model.lr=0.003"),
    (["lr.min_lr=-1"], "lr.min_lr=-1"),
    (["lr.warmup_steps=-1"], "lr.warmup_steps=-1"),
    (["lr.warmup_steps=abc"], "lr.warmup_steps='abc'"),
    (["lr.total_steps=-5"], "lr.total_steps=-5"),
    (["lr.decay=foo"], "lr.decay='foo'"),
    (["lr=layer_token_budget", "lr.total_layer_tokens=-1"], "lr.total_layer_tokens=-1"),
    (["lr=step_cosine", "lr.warmup_steps=-2"], "lr.warmup_steps=-2"),
    # curricula
    (["curriculum=rarity", "curriculum.rarity_start=0.015"], "curriculum.rarity_start=0.015 must be a whole percent"),
    (["curriculum=rarity", "curriculum.rarity_start=1"], "curriculum.rarity_start=1 must be a whole percent"),
    (["curriculum=rarity", "curriculum.rarity_start=0"], "curriculum.rarity_start=0 must be a whole percent"),
    (["curriculum=seqlen", "curriculum.steps=0"], "curriculum.steps=0 must be a positive integer"),
    # text data
    (["data.path=/no/such/file.txt"], "data.path='/no/such/file.txt'"),
    (["data.path={empty_file}"], "data.path="),
    (["data.path={empty_dir}"], "data.path="),
    (["data.path={short_text}"], "data.path="),
    (["data.block_size=0"], "data.block_size=0"),
    (["data.block_size=-1"], "data.block_size=-1"),
    (["data.batch_size=0"], "data.batch_size=0"),
    (["data.num_workers=-1"], "data.num_workers=-1"),
    (["data.num_workers=abc"], "data.num_workers='abc'"),
    (["data.max_bytes=0"], "data.max_bytes=0"),
    (["data.val_every=0"], "data.val_every=0"),
    (["data.tokenizer=/no/such/tokenizer"], "data.tokenizer='/no/such/tokenizer'"),
    # token shards
    (["data=tokens"], "data.path must be set"),
    (["data=tokens", "data.path={empty_dir}"], "meta.json"),
    (["data=tokens", "data.path={bad_meta}"], "meta.json"),
    (["data=tokens", "data.path={escaping_meta}"], "data.path="),
    (["data=tokens", "data.path={shards}", "data.objective=foo"], "data.objective='foo'"),
    (["data=tokens", "data.path={shards}", "data.mask_prob=1.5"], "data.mask_prob=1.5"),
    # masked-language-model data
    (["model=bert_small", "data=mlm", "data.mask_prob=1.5"], "data.mask_prob=1.5"),
    (["model=bert_small", "data=mlm", "data.pad_to_multiple_of=0"], "data.pad_to_multiple_of=0"),
    (["model=bert_small", "data=mlm", "data.min_len=0"], "data.min_len=0"),
    # images
    (["experiment=vit_digits", "data=imagefolder"], "data.path must be set"),
    (
        ["experiment=vit_digits", "data=imagefolder", "data.path={empty_class_images}", "data.batch_size=2"],
        "class folder(s) 'empty' hold no images",
    ),
    (["experiment=vit_digits", "data=imagefolder", "data.path={images}", "data.channels=2"], "data.channels=2"),
    (["experiment=vit_digits", "data.image_size=0"], "data.image_size=0"),
    (["experiment=vit_digits", "model.patch_size=5"], "must be divisible by patch_size=5"),
    (["experiment=gpt2_finetune_tiny"], "model.pretrained must be set"),
    (["data.num_workers=100000"], "data.num_workers=100000: 100000 loader processes of about"),  # an OOM, not a run
    (  # a warmup step consumes at least 576 layer-tokens in the tiny run: refused before it starts
        ["lr=layer_token_budget", "lr.warmup_layer_tokens=null", "lr.warmup_steps=3", "lr.total_layer_tokens=1000"],
        "lr.warmup_steps=3 is longer than lr.total_layer_tokens=1000: at least 1,728 against at most 1,000",
    ),
    # a folder transformers warns about (after loading it, or before failing to): the warning is held
    (["model=hf_causal_lm", "model.pretrained={tiny_hf_bert}", *HF_DATA], "BertLMHeadModel attends to later tokens"),
    (["model=hf_causal_lm", "model.pretrained={llama_unknown_type}", *HF_DATA], "has model type `nope`"),
    (
        ["model=hf_causal_lm", "model.pretrained={llama_missing_weight}", *HF_DATA],
        "its weights lack model.layers.1.mlp.up_proj.weight (1 of the network's",
    ),
    (
        ["model=hf_causal_lm", "model.pretrained={llama_cut_weights}", *HF_DATA],
        "AutoModelForCausalLM cannot load it (Error while deserializing header",
    ),
    (
        ["model=hf_causal_lm", "model.pretrained={llama_other_shape}", *HF_DATA],
        "lm_head.weight is [3, 3] in the weights, [512, 64] in config.json",
    ),
    # checkpoints to resume from
    (["ckpt_path=/nope.ckpt"], "ckpt_path='/nope.ckpt': no such checkpoint file"),
    (["ckpt_path={notes}"], "not a readable checkpoint (notes.txt is neither a torch.save zip nor a pickle)"),
    (["ckpt_path={random_pth}"], "ckpt_path="),
    (["ckpt_path={truncated_ckpt}"], "ckpt_path="),
    (["ckpt_path={empty_dir}"], "ckpt_path="),
    (["ckpt_path={good_ckpt}", "model.n_embd=64"], "model.n_embd=64 differs from the checkpoint's 32"),
    (["ckpt_path={good_ckpt}", "model.ltd_layers=[1]"], "model.ltd_layers=[1] differs from the checkpoint's"),
    (["ckpt_path={good_ckpt}", "data.path={long_text}"], "data.content: '(the embedded default corpus)' -> "),
    (["ckpt_path={good_ckpt}", "trainer.max_steps=4"], "trainer.max_steps=4: the checkpoint is already at step 4"),
    # callbacks and logger
    (["callbacks.model_checkpoint.dirpath={notes}"], "callbacks.model_checkpoint.dirpath="),
    (["callbacks.model_checkpoint.every_n_train_steps=-1"], "every_n_train_steps"),
    (["callbacks.throughput.window_size=0"], "callbacks.throughput"),
    (["logger.save_dir={notes}"], "logger.save_dir="),
    (
        ["trainer.limit_val_batches=0", "+callbacks.summary.metrics=[val/loss]"],
        "callbacks.summary.metrics=['val/loss'] watches a validation metric, but trainer.limit_val_batches=0",
    ),
    (
        [
            "trainer.limit_val_batches=0.0",
            "+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping",
            "+callbacks.stop.monitor=val/loss",
        ],
        "callbacks.stop.monitor='val/loss' watches a validation metric, but trainer.limit_val_batches=0.0",
    ),
    # a group's _target_: importable, and of the group's kind
    (["+callbacks.extra._target_=no.such.Callback"], "callbacks.extra._target_='no.such.Callback' cannot be imported"),
    (["model._target_=lightning_ltd.modules.Nope"], "model._target_='lightning_ltd.modules.Nope' cannot be imported"),
    (["+callbacks.extra._target_=builtins.dict"], "callbacks.extra._target_ built a builtins.dict, not a Lightning"),
    (["model._target_=builtins.dict"], "model._target_ built a builtins.dict, not a lightning_ltd.modules.RandomLTD"),
    (["data._target_=builtins.dict"], "data._target_ built a builtins.dict, not a LightningDataModule"),
    (["ltd._target_=builtins.dict"], "ltd._target_ built a builtins.dict, not a lightning_ltd.callbacks.RandomLTD"),
    (["lr._target_=builtins.dict"], "lr._target_ built a builtins.dict, not an LR schedule"),
    (["logger._target_=builtins.dict"], "logger._target_ built a builtins.dict, not a Lightning Logger"),
    (["trainer._target_=builtins.dict"], "trainer._target_ built a builtins.dict, not a lightning.pytorch.Trainer"),
    # durations
    (
        ["+trainer.max_time={{days:-1}}"],
        "trainer.max_time={{'days': -1}} must be a string of the form DD:HH:MM:SS, or a",
    ),
    (["+trainer.max_time={{fortnights:1}}"], "mapping of weeks, days, hours, minutes, seconds, milliseconds, microsec"),
    (["+trainer.max_time={{minutes:0}}"], "trainer.max_time={{'minutes': 0}} stops the run before its first step"),
    (
        ["callbacks.model_checkpoint.save_last=false", "callbacks.model_checkpoint.save_top_k=0"],
        "callbacks.model_checkpoint saves nothing (save_last=false, save_top_k=0)",
    ),
    (
        ["data.path={latin1_text}", "data.tokenizer={plain_tokenizer}", "model.vocab_size=512"],
        "data.path='{latin1_text}': not UTF-8 text: 8,000 of its 36,000 bytes are not UTF-8 (the first at byte 3)",
    ),
    (
        ["trainer.precision=16-true"],
        "trainer.precision='16-true' needs a GPU (on CPU: bf16-mixed, bf16-true or 32-true)",
    ),
    (
        ["lr=step_cosine", "lr.total_steps=2", "trainer.max_steps=4", "lr.min_lr=0"],
        "lr.total_steps=2 decays the LR to lr.min_lr=0 before trainer.max_steps=4: the last 2 steps would train",
    ),
    (
        ["trainer.val_check_interval=0.5", "+trainer.max_epochs=1", "trainer.max_steps=-1", "lr=constant"],
        "trainer.val_check_interval=0.5 (a fraction of an epoch) needs trainer.check_val_every_n_epoch=1",
    ),
    (["seed=null"], "seed=None must be an integer in [0, 4294967295]"),
    (["data.path={blank_text}"], "data.path='{blank_text}': the text is only whitespace"),
    (["model=bert_small", "data=mlm", "data.path={blank_text}"], "data.path='{blank_text}': the text is only white"),
]
"""The good checkpoint was trained with ``model.n_layer=4`` (dropping layers [1, 2]) and
``lr.warmup_steps=1``, so the rows that resume from it or its damaged copies set the same
(see ``case_overrides``)."""


def case_overrides(case: list[str], files: dict[str, Path]) -> list[str]:
    """The tiny GPT run for GPT rows; other models and data at their own sizes (built, never run)."""
    overrides = [item.format(**{k: str(v) for k, v in files.items()}) for item in case]
    if any("_ckpt}" in item for item in case):  # the good run's shape and warmup (see ``files``)
        overrides[:0] = ["model.n_layer=4", "lr.warmup_steps=1"]
    tiny = not any(item.startswith(("data=", "model=", "experiment=")) for item in case)
    return [*(TINY if tiny else QUICK), *overrides]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bad (and good) files the table refers to, made once."""
    root = tmp_path_factory.mktemp("inputs")
    made: dict[str, Path] = {}
    made["notes"] = root / "notes.txt"
    made["notes"].write_text("not a checkpoint\n")
    made["empty_file"] = root / "empty.txt"
    made["empty_file"].write_text("")
    made["empty_dir"] = root / "empty_dir"
    made["empty_dir"].mkdir()
    made["short_text"] = root / "short.txt"
    made["short_text"].write_text("too short")
    made["long_text"] = root / "long.txt"
    made["long_text"].write_text("the quick brown fox jumps over the lazy dog. " * 400)
    made["random_pth"] = root / "random.pth"
    made["random_pth"].write_bytes(os.urandom(4096))
    made["broken_config"] = root / "pretrained"
    made["broken_config"].mkdir()
    (made["broken_config"] / "config.json").write_text("{ not json")
    made["tiny_gpt2"] = tiny_gpt2(root / "tiny_gpt2")  # 128 positions
    made["tiny_hf_bert"] = tiny_hf_bert(root / "tiny_hf_bert")
    made["llama_unknown_type"] = tiny_llama(root / "llama_unknown_type")
    config = json.loads((made["llama_unknown_type"] / "config.json").read_text())
    (made["llama_unknown_type"] / "config.json").write_text(json.dumps({**config, "model_type": "nope"}))
    made["llama_cut_weights"] = tiny_llama(root / "llama_cut_weights")
    weights = made["llama_cut_weights"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    made["llama_missing_weight"] = tiny_llama(root / "llama_missing_weight")
    tensors = load_file(made["llama_missing_weight"] / "model.safetensors")
    tensors.pop("model.layers.1.mlp.up_proj.weight")
    save_file(tensors, made["llama_missing_weight"] / "model.safetensors")
    made["llama_other_shape"] = tiny_llama(root / "llama_other_shape")
    tensors = load_file(made["llama_other_shape"] / "model.safetensors")
    save_file({**tensors, "lm_head.weight": torch.zeros(3, 3)}, made["llama_other_shape"] / "model.safetensors")
    made["latin1_text"] = root / "latin1.txt"
    made["latin1_text"].write_bytes(("caf\u00e9 na\u00efve r\u00e9sum\u00e9 " * 2000).encode("latin-1"))
    made["blank_text"] = root / "blank.txt"
    made["blank_text"].write_text(" \n\t\n" * 5000)
    made["plain_tokenizer"] = root / "plain_tokenizer"
    tiny_tokenizer(made["plain_tokenizer"])  # a BPE without [MASK] and the other masked-LM specials
    made["broken_tokenizer"] = root / "broken_tokenizer"
    made["broken_tokenizer"].mkdir()
    (made["broken_tokenizer"] / "tokenizer.json").write_text("{ not json")

    made["shards"] = root / "shards"
    prepare([str(made["long_text"])], str(made["shards"]), val_fraction=0.2, progress=False)
    made["bad_meta"] = root / "bad_meta"
    made["bad_meta"].mkdir()
    (made["bad_meta"] / "meta.json").write_text("[1, 2")
    made["escaping_meta"] = root / "escaping_meta"
    made["escaping_meta"].mkdir()
    meta = json.loads((made["shards"] / "meta.json").read_text())
    escaping = json.dumps(meta).replace('"train/', '"../../train/')
    (made["escaping_meta"] / "meta.json").write_text(escaping)

    for name, change in (("lots_meta", {"vocab_size": "lots"}), ("bad_dtype_meta", {"dtype": "float7"})):
        made[name] = root / name
        shutil.copytree(made["shards"], made[name])
        (made[name] / "meta.json").write_text(json.dumps({**meta, **change}))

    made["one_per_class_images"] = root / "one_per_class_images"
    for index, name in enumerate("ab"):
        (made["one_per_class_images"] / name).mkdir(parents=True)
        Image.new("L", (8, 8), color=60 * index).save(made["one_per_class_images"] / name / "0.png")
    made["images"] = root / "images"
    made["empty_class_images"] = root / "empty_class_images"
    for folder, classes in ((made["images"], ("a", "b")), (made["empty_class_images"], ("a", "b", "empty"))):
        for index, name in enumerate(classes):
            (folder / name).mkdir(parents=True)
            for i in range(0 if name == "empty" else 6):
                Image.new("L", (8, 8), color=30 * index + i).save(folder / name / f"{i}.png")

    run = root / "good_run"
    train(
        compose_train(
            run,
            "model.n_layer=4",
            "trainer.max_steps=4",
            "lr.warmup_steps=1",
            "callbacks.model_checkpoint.every_n_train_steps=2",
            "validate_before_fit=false",
        )
    )
    made["good_ckpt"] = run / "checkpoints" / "last.ckpt"
    made["truncated_ckpt"] = root / "truncated.ckpt"
    data = made["good_ckpt"].read_bytes()
    made["truncated_ckpt"].write_bytes(data[: len(data) // 2])
    checkpoint = torch.load(made["good_ckpt"], weights_only=True)
    made["empty_ckpt"] = root / "empty.ckpt"
    made["empty_ckpt"].write_bytes(b"")
    made["negative_step_ckpt"] = root / "negative_step.ckpt"
    torch.save({**checkpoint, "global_step": -5}, made["negative_step_ckpt"])
    made["weights_only_ckpt"] = root / "weights_only.ckpt"
    torch.save(
        {k: v for k, v in checkpoint.items() if k not in ("loops", "optimizer_states", "lr_schedulers")},
        made["weights_only_ckpt"],
    )
    optimizer = checkpoint["optimizer_states"][0]
    for name, damaged in (
        ("no_schedulers_ckpt", {**checkpoint, "lr_schedulers": []}),  # Lightning's restore would restart the LR
        ("loops_string_ckpt", {**checkpoint, "loops": {**checkpoint["loops"], "fit_loop": "not a state"}}),
        ("callback_string_ckpt", {**checkpoint, "callbacks": {**checkpoint["callbacks"], "RandomLTDScheduler": "x"}}),
        ("step_ahead_ckpt", {**checkpoint, "global_step": checkpoint["global_step"] + 2}),
        ("epoch_string_ckpt", {**checkpoint, "epoch": "x"}),
        ("no_callbacks_ckpt", without(checkpoint, "callbacks")),
        ("scheduler_string_ckpt", {**checkpoint, "lr_schedulers": ["not a scheduler state"]}),
        (
            "no_fit_loop_ckpt",
            {**checkpoint, "loops": {k: v for k, v in checkpoint["loops"].items() if k != "fit_loop"}},
        ),
        ("old_lightning_ckpt", {**checkpoint, "pytorch-lightning_version": "0.5.0"}),
        ("no_version_ckpt", without(checkpoint, "pytorch-lightning_version")),
        ("odd_version_ckpt", {**checkpoint, "pytorch-lightning_version": "two"}),
        ("fingerprint_string_ckpt", {**checkpoint, "run_fingerprint": "not a fingerprint"}),
        (
            "ledger_negative_ckpt",
            {
                **checkpoint,
                "callbacks": {
                    **checkpoint["callbacks"],
                    "RandomLTDScheduler": {**checkpoint["callbacks"]["RandomLTDScheduler"], "layer_tokens": -100},
                },
            },
        ),
        (
            "ledger_overfull_ckpt",
            {
                **checkpoint,
                "callbacks": {
                    **checkpoint["callbacks"],
                    "RandomLTDScheduler": {
                        **checkpoint["callbacks"]["RandomLTDScheduler"],
                        "layer_tokens": 5000,
                        "full_layer_tokens": 4096,
                    },
                },
            },
        ),
        ("lr_string_ckpt", with_first_group_lr(checkpoint, "fast")),
        ("negative_lr_ckpt", with_first_group_lr(checkpoint, -1.0)),
        (
            "negative_moment_ckpt",
            {
                **checkpoint,
                "optimizer_states": [
                    {
                        **optimizer,
                        "state": {
                            **optimizer["state"],
                            0: {**optimizer["state"][0], "exp_avg_sq": -1 - optimizer["state"][0]["exp_avg_sq"]},
                        },
                    }
                ],
            },
        ),
    ):
        made[name] = root / f"{name}.ckpt"
        torch.save(damaged, made[name])
    made.update(counter_damaged(root, checkpoint))
    moments = checkpoint["optimizer_states"][0]["state"][0]
    moments["exp_avg"] = moments["exp_avg"].to(torch.int64)  # zeros once cast back: a silent restart
    made["int_moment_ckpt"] = root / "int_moment.ckpt"
    torch.save(checkpoint, made["int_moment_ckpt"])
    return made


def counter_damaged(root: Path, checkpoint: dict) -> dict[str, Path]:
    """Copies of ``checkpoint`` whose counters contradict each other or ``global_step``."""
    made = {}

    def saved(name: str, change) -> None:
        damaged = copy.deepcopy(checkpoint)
        change(damaged)
        made[name] = root / f"{name}.ckpt"
        torch.save(damaged, made[name])

    def batches(damaged: dict) -> dict:
        return damaged["loops"]["fit_loop"]["epoch_loop.batch_progress"]

    def one_batch(damaged: dict) -> None:
        for part in ("total", "current"):
            batches(damaged)[part].update(dict.fromkeys(batches(damaged)[part], 1))

    saved("batches_behind_ckpt", one_batch)
    saved("progress_disordered_ckpt", lambda c: batches(c)["total"].update(completed=99))
    saved("scheduled_ahead_ckpt", lambda c: c["callbacks"]["RandomLTDScheduler"].update(scheduled_step=1000))
    saved("adam_step_ahead_ckpt", lambda c: c["optimizer_states"][0]["state"][0].update(step=torch.tensor(1000.0)))
    return made


def with_first_group_lr(checkpoint: dict, lr: object) -> dict:
    """``checkpoint`` with its first optimizer's first parameter group at ``lr``."""
    optimizer = checkpoint["optimizer_states"][0]
    groups = [{**optimizer["param_groups"][0], "lr": lr}, *optimizer["param_groups"][1:]]
    return {**checkpoint, "optimizer_states": [{**optimizer, "param_groups": groups}]}


def without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


class LoggedRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def written_files(folder: Path) -> list[Path]:
    """Checkpoints and metrics under a run folder (Hydra's own config files are allowed)."""
    return [p for p in folder.rglob("*") if p.suffix in (".ckpt", ".csv") or p.name == "hparams.yaml"]


@pytest.mark.slow
@pytest.mark.parametrize("case, expected", CASES, ids=[" ".join(case) for case, _ in CASES])
def test_bad_input_stops_with_one_line_naming_it(files, tmp_path, capsys, monkeypatch, case, expected):
    """Through the entry point ``python train.py`` runs (Hydra's main, its callbacks, the task)."""
    run_dir = tmp_path / "run"
    logged = LoggedRecords()  # transformers' handler writes to the stderr it found at import, not capsys'
    logging.getLogger("transformers").addHandler(logged)
    try:
        with warnings.catch_warnings(record=True) as shown:
            code, err = launched(monkeypatch, capsys, *case_overrides(case, files), f"hydra.run.dir={run_dir}")
    finally:
        logging.getLogger("transformers").removeHandler(logged)
    assert not shown, [str(w.message) for w in shown]  # a warning would be more lines on stderr
    assert not logged.records, [r.getMessage() for r in logged.records]
    assert code == EXIT_BAD_INPUT, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert expected.format(**{k: str(v) for k, v in files.items()}) in err, err
    assert not written_files(run_dir), written_files(run_dir)


REFUSALS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "refusals.md"


def refusals_page() -> str:
    """``docs/refusals.md``, rendered from ``CASES`` (written by
    ``python -c "from tests.test_bad_inputs import write_refusals_page; write_refusals_page()"``)."""
    groups: dict[str, list[str]] = {}
    for overrides, message in CASES:
        first = overrides[0].lstrip("+~")
        group = first.split("=", 1)[0].split(".", 1)[0]
        shown = " ".join(overrides).replace("|", "\\|")
        groups.setdefault(group, []).append(f"| `{shown}` | `{message.replace('|', '/')}` |")
    lines = [
        "# What is refused",
        "",
        "Every input below stops `python train.py` before any work, with exit code 2 and one line on",
        f"stderr that holds the text shown (a test runs all {len(CASES)}; this page is rendered from that",
        "table, `tests/test_bad_inputs.py`, and a test fails when the two differ). Paths in braces are",
        "files the test makes: a text file, a folder of images, a checkpoint of another run, and so on.",
        "",
    ]
    for group, rows in groups.items():
        lines += [f"## `{group}`", "", "| overrides | the line holds |", "|---|---|", *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


def write_refusals_page() -> None:
    REFUSALS_PAGE.write_text(refusals_page())


def test_the_refusals_page_is_this_table():
    assert REFUSALS_PAGE.read_text() == refusals_page(), "regenerate docs/refusals.md (see refusals_page)"
