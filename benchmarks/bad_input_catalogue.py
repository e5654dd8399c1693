"""A catalogue of bad inputs that ``tests/test_bad_inputs.py`` does not hold, each run through
``python train.py`` as a user would: how many end as they should (a non-zero exit with one
``error:`` line and, for a refused input, no checkpoint or metrics written).

    python benchmarks/bad_input_catalogue.py [--jobs 2] [--only SUBSTRING] [--json OUT]

Each row is (class, overrides); placeholders in braces name files made here. An outcome is
``one line`` (what we want), ``accepted`` (exit 0: the mistake went unnoticed), ``traceback``
(more than one stderr line) or ``wrote files`` (refused, but after writing a checkpoint or
metrics). The classes follow issue 22; the inputs are new samples of each class.
"""

from __future__ import annotations

import argparse
import fractions
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.n_layer=4",
    "model.n_embd=32",
    "model.n_head=2",
    "data.block_size=32",
    "data.batch_size=8",
    "data.max_bytes=120000",
    "ltd.min_keep=8",
    "ltd.ramp_steps=4",
    "ltd.granularity=4",
    "lr.warmup_steps=1",
    "trainer.max_steps=4",
    "trainer.val_check_interval=4",
    "trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "callbacks.model_checkpoint.every_n_train_steps=2",
]
"""A run of seconds: an input that is wrongly accepted finishes quickly too."""

VIT = ["experiment=vit_digits", "trainer.max_steps=2", "trainer.limit_val_batches=1", "data.batch_size=4"]

CATALOGUE: list[tuple[str, list[str]]] = [
    # settings of the wrong type or out of range
    ("range", ["trainer.max_steps=1.5"]),
    ("range", ["trainer.max_epochs=-2"]),
    ("range", ["trainer.val_check_interval=1.5"]),
    ("range", ["trainer.limit_val_batches=abc"]),
    ("range", ["+trainer.limit_train_batches=-1"]),
    ("range", ["+trainer.limit_train_batches=1.5"]),
    ("range", ["trainer.gradient_clip_val=inf"]),
    ("range", ["trainer.gradient_clip_val=nan"]),
    ("range", ["+trainer.gradient_clip_algorithm=foo"]),
    ("range", ["trainer.devices=abc"]),
    ("range", ["trainer.devices=-2"]),
    ("range", ["+trainer.num_nodes=0"]),
    ("range", ["trainer.strategy=foo"]),
    ("range", ["trainer.log_every_n_steps=abc"]),
    ("range", ["+trainer.max_time=abc"]),
    ("range", ["+trainer.accumulate_grad_batches=1.5"]),
    ("range", ["trainer.check_val_every_n_epoch=-1"]),
    ("range", ["trainer.num_sanity_val_steps=-5"]),
    ("range", ["+trainer.deterministic=maybe"]),
    ("range", ["+trainer.nope=1"]),
    ("range", ["validate_before_fit=maybe"]),
    ("range", ["seed=[1,2]"]),
    ("range", ["ckpt_path=123"]),
    ("range", ["model.betas=[0.9,-0.1]"]),
    ("range", ["model.betas=abc"]),
    ("range", ["model.betas=[nan,0.9]"]),
    ("range", ["model.dropout=nan"]),
    ("range", ["model.n_head=-2"]),
    ("range", ["model.vocab_size=abc"]),
    ("range", ["model.vocab_size=-1"]),
    ("range", ["model.ltd_layers=[1,1]"]),
    ("range", ["model.ltd_layers=5"]),
    ("range", ["model.n_embd=abc"]),
    ("range", ["model.block_size=0"]),
    ("range", ["model.weight_decay=inf"]),
    ("range", ["model.lr=-inf"]),
    ("range", ["model.compile=maybe"]),
    ("range", ["ltd.min_keep=abc"]),
    ("range", ["ltd.min_keep=8.5"]),
    ("range", ["ltd.ramp_steps=abc"]),
    ("range", ["ltd.ramp_steps=1.5"]),
    ("range", ["ltd.max_keep=0"]),
    ("range", ["ltd.granularity=-4"]),
    ("range", ["ltd.compile_buckets=0"]),
    ("range", ["+ltd.foo=1"]),
    ("range", ["lr.warmup_steps=1.5"]),
    ("range", ["lr.min_lr=nan"]),
    ("range", ["lr.min_lr=inf"]),
    ("range", ["lr=layer_token_budget", "lr.total_layer_tokens=abc"]),
    ("range", ["lr=layer_token_budget", "lr.total_layer_tokens=0", "lr.warmup_steps=null"]),
    ("range", ["lr.total_steps=abc"]),
    ("range", ["+lr.foo=1"]),
    ("range", ["data.block_size=abc"]),
    ("range", ["data.batch_size=1.5"]),
    ("range", ["data.val_every=-1"]),
    ("range", ["data.max_bytes=abc"]),
    ("range", ["callbacks.model_checkpoint.save_top_k=-5"]),
    ("range", ["+callbacks.model_checkpoint.mode=foo"]),
    ("range", ["+trainer.strategy=foo"]),
    ("range", ["trainer.precision=16-mixed"]),
    ("range", ["callbacks.model_checkpoint.every_n_train_steps=abc"]),
    ("range", ["callbacks.nonfinite_guard.skip_steps=-1"]),
    ("range", ["callbacks.nonfinite_guard.check_every_n_steps=0"]),
    ("range", ["+logger.flush_logs_every_n_steps=0"]),
    # composition: unknown options and keys, bad override grammar
    ("composition", ["ltd=maybe"]),
    ("composition", ["trainer=tpu"]),
    ("composition", ["lr=cosine"]),
    ("composition", ["model.lr=[1,"]),
    ("composition", ["modle.lr=0.1"]),
    # settings that would run but make no sense
    ("nonsense", ["ltd.min_keep=32", "ltd.max_keep=32"]),
    ("nonsense", ["model=bert_small", "data=mlm", "data.mask_prob=0", *VIT[1:2]]),
    ("nonsense", ["model=bert_small", "data=mlm", "data.mask_prob=nan", *VIT[1:2]]),
    ("nonsense", ["+callbacks.model_checkpoint.monitor=val/nope", "callbacks.model_checkpoint.save_top_k=1"]),
    (
        "nonsense",
        [
            "trainer.limit_val_batches=0",
            "+callbacks.model_checkpoint.monitor=val/loss",
            "callbacks.model_checkpoint.save_top_k=1",
        ],
    ),
    ("nonsense", ["ltd.ramp_steps=0"]),
    ("nonsense", ["data.batch_size=100000"]),
    ("nonsense", ["data.val_every=100000"]),
    ("nonsense", ["data=tokens", "data.path={shards}", "data.block_size=30000", "model.block_size=30000"]),
    # paths that leave the run folder or cannot be written
    ("paths", ["callbacks.model_checkpoint.filename=../../escaped"]),
    ("paths", ["logger.name=/tmp/elsewhere"]),
    ("paths", ["logger.save_dir=/proc/nope"]),
    ("paths", ["callbacks.model_checkpoint.dirpath=/proc/nope"]),
    ("paths", ["hydra.run.dir=/proc/nope"]),
    # data files
    ("data", ["data.path={binary}"]),
    ("data", ["data.path=/dev/null"]),
    ("data", ["data.tokenizer={broken_tokenizer}"]),
    ("data", ["data.tokenizer={notes}"]),
    ("data", ["data=tokens", "data.path={shards_missing}"]),
    ("data", ["data=tokens", "data.path={shards_short}"]),
    ("data", ["data=tokens", "data.path={shards_odd}"]),
    ("data", ["data=tokens", "data.path={notes}"]),
    ("data", ["data=tokens", "data.path={shards_negative}"]),
    ("data", ["data=tokens", "data.path={shards_no_train}"]),
    ("data", ["data.tokenizer={tokenizer}", "data.path={binary}", "model.vocab_size=512"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_huge}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_corrupt}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_one_class}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={notes}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_text_png}"]),
    # checkpoints to resume from
    ("checkpoint", ["ckpt_path={ckpt_no_state_dict}"]),
    ("checkpoint", ["ckpt_path={ckpt_wrong_shape}"]),
    ("checkpoint", ["ckpt_path={ckpt_extra_key}"]),
    ("checkpoint", ["ckpt_path={ckpt_missing_key}"]),
    ("checkpoint", ["ckpt_path={ckpt_no_loops}"]),
    ("checkpoint", ["ckpt_path={ckpt_nan_step}"]),
    ("checkpoint", ["ckpt_path={ckpt_int_moment}"]),
    ("checkpoint", ["ckpt_path={random_folder}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model=bert_small", "data=mlm"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.betas=[0.8,0.9]"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "lr.warmup_steps=3"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "+trainer.accumulate_grad_batches=2"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.weight_decay=0.01"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "ltd.granularity=8"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.position=rotary"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "data=tokens", "data.path={shards}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "trainer.gradient_clip_val=0.5"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "trainer.precision=bf16-true"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "data.block_size=16"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "ltd.compile_buckets=4", "model.compile=true"]),
]

HELD_OUT: list[tuple[str, list[str]]] = [
    ("range", ["trainer.val_check_interval=0.0"]),
    ("range", ["trainer.limit_val_batches=1.5"]),
    ("range", ["trainer.log_every_n_steps=0"]),
    ("range", ["callbacks.throughput.window_size=abc"]),
    ("range", ["callbacks.lr_monitor.logging_interval=hour"]),
    ("range", ["callbacks.progress_bar.refresh_rate=-1"]),
    ("range", ["callbacks.summary.baseline_tokens=-5"]),
    ("range", ["callbacks.preemption.usr1=maybe"]),
    ("range", ["model.activation_checkpointing=maybe"]),
    ("range", ["model.n_layer=abc"]),
    ("range", ["model.position=rotary", "model.n_embd=30", "model.n_head=2"]),
    ("range", ["ltd.step_seeding=maybe"]),
    ("range", ["ltd.enabled=abc"]),
    ("range", ["lr=step_cosine", "lr.min_lr=0.1"]),
    ("range", ["lr=constant", "lr.warmup_steps=-3"]),
    ("range", ["data.seed=-3"]),
    ("range", ["seed=4294967296"]),
    ("range", [*VIT, "data.image_size=abc"]),
    ("range", [*VIT, "model.patch_size=0"]),
    ("range", ["model=bert_small", "data=mlm", "data.pad_to_multiple_of=abc", *VIT[1:2]]),
    ("nonsense", [*VIT, "model.num_classes=1"]),
    ("paths", ["hydra.run.dir={notes}"]),
    ("paths", ["logger.save_dir={notes}/sub"]),
    ("data", ["data.path={hidden_only}"]),
    ("data", ["data.path={dangling}"]),
    ("data", ["data.num_workers=2", "data.path={binary}"]),
    ("data", ["data=tokens", "data.path={shards_train_string}"]),
    ("data", ["data=tokens", "data.path={shards_vocab_small}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_zero_byte}"]),
    ("data", ["model.pretrained={empty_dir}"]),
    ("data", ["model.pretrained={random_folder}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "data.batch_size=4"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.n_head=4"]),
    ("checkpoint", ["ckpt_path={ckpt_bool_weight}"]),
    ("checkpoint", ["ckpt_path={ckpt_inf_weight}"]),
    ("checkpoint", ["ckpt_path={ckpt_zero_byte}"]),
    ("checkpoint", ["ckpt_path={ckpt_hparams_string}"]),
    ("checkpoint", ["ckpt_path={ckpt_negative_step}"]),
]
"""Round 3: written after the catalogue's fixes, run once before any fix of its own."""

HELD_OUT_2: list[tuple[str, list[str]]] = [
    ("range", ["trainer.val_check_interval=-0.5"]),
    ("range", ["trainer.gradient_clip_val=abc"]),
    ("range", ["+trainer.accumulate_grad_batches=-2"]),
    ("range", ["+trainer.min_steps=-3"]),
    ("range", ["+trainer.fast_dev_run=abc"]),
    ("range", ["+trainer.overfit_batches=-1"]),
    ("range", ["+trainer.detect_anomaly=maybe"]),
    ("range", ["+trainer.reload_dataloaders_every_n_epochs=-1"]),
    ("range", ["callbacks.model_checkpoint.save_last=maybe"]),
    ("range", ["callbacks.nonfinite_guard.skip_steps=abc"]),
    ("range", ["callbacks.throughput.window_size=1"]),
    ("range", ["callbacks.model_summary.max_depth=-2"]),
    ("range", ["model.lr=1e400"]),
    ("range", ["model.betas=[0.9,0.95,0.99]"]),
    ("range", ["model.dropout=1"]),
    ("range", ["model.bias=2"]),
    ("range", ["model.ltd_layers=[-1]"]),
    ("range", ["model.ltd_layers=[1.5]"]),
    ("range", ["ltd.max_keep=-3"]),
    ("range", ["ltd.granularity=1.5"]),
    ("range", ["lr.decay=Cosine"]),
    ("range", ["lr.min_lr=abc"]),
    ("range", ["lr=step_cosine", "lr.total_steps=0"]),
    ("range", ["data.max_bytes=-5"]),
    ("nonsense", ["model.compile=true", "model.compile_mode=reduce-overhead"]),
    ("nonsense", ["data=tokens", "data.path={shards}", "data.objective=mlm"]),
    ("nonsense", [*VIT, "data.batch_size=100000"]),
    ("nonsense", [*VIT, "model.in_channels=3"]),
    ("paths", ["trainer.default_root_dir={notes}"]),
    ("paths", ["callbacks.model_checkpoint.dirpath={notes}/x"]),
    ("data", ["data.path={empty_dir}/nested"]),
    ("data", ["data=tokens", "data.path={shards}", "data.batch_size=0"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.vocab_size=300"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "ltd.min_keep=12"]),
    ("checkpoint", ["ckpt_path={ckpt_fp16_weight}"]),
    ("checkpoint", ["ckpt_path={ckpt_state_dict_list}"]),
    ("checkpoint", ["ckpt_path={good_run}/checkpoints"]),
]
"""Round 4: written after round 3's fixes, run once before any fix of its own."""

HELD_OUT_3: list[tuple[str, list[str]]] = [
    ("range", ["trainer.max_epochs=1.5"]),
    ("range", ["+trainer.min_epochs=abc"]),
    ("range", ["+trainer.limit_test_batches=-2"]),
    ("range", ["+trainer.benchmark=maybe"]),
    ("range", ["+trainer.profiler=fast"]),
    ("range", ["trainer.num_sanity_val_steps=abc"]),
    ("range", ["callbacks.model_checkpoint.every_n_train_steps=-5"]),
    ("range", ["callbacks.model_checkpoint.auto_insert_metric_name=maybe"]),
    ("range", ["callbacks.lr_monitor.log_momentum=maybe"]),
    ("range", ["callbacks.throughput.window_size=0"]),
    ("range", ["callbacks.nonfinite_guard.check_every_n_steps=-2"]),
    ("range", ["model.n_head=2.5"]),
    ("range", ["model.lr=true"]),
    ("range", ["model.weight_decay=abc"]),
    ("range", ["ltd.min_keep=-8"]),
    ("range", ["lr=layer_token_cosine", "lr.min_lr=-0.5"]),
    ("range", ["lr=layer_token_budget", "lr.warmup_layer_tokens=-1"]),
    ("range", ["data.block_size=0"]),
    ("range", ["data.num_workers=-1"]),
    ("range", ["data.val_every=1"]),
    ("range", ["model=bert_small", "data=mlm", "data.mask_prob=1.5", *VIT[1:2]]),
    ("range", [*VIT, "model.patch_size=5"]),
    ("range", [*VIT, "model.num_classes=0"]),
    ("nonsense", ["ltd.min_keep=16", "ltd.max_keep=8"]),
    ("nonsense", ["model.ltd_layers=[]"]),
    ("nonsense", ["trainer.val_check_interval=1000"]),
    ("nonsense", ["data=text", "data.path={shards}"]),
    ("nonsense", ["data=tokens", "data.path={long}"]),
    ("data", ["model=hf_causal_lm", "model.pretrained={tokenizer}"]),
    ("paths", ["logger.version=../../x"]),
    ("paths", ["callbacks.model_checkpoint.dirpath=''"]),
    ("paths", ["paths.output_dir={notes}"]),
    ("data", ["data.path={empty_dir}"]),
    ("data", ["data.tokenizer={empty_dir}"]),
    ("data", ["data=tokens", "data.path={empty_dir}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={empty_dir}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.n_layer=6"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "seed=7"]),
    ("checkpoint", ["ckpt_path={good_run}"]),
    ("checkpoint", ["ckpt_path={tokenizer}/tokenizer.json"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.bias=false"]),
]
"""Round 5: written after round 4's fixes, run once before any fix of its own."""

HF = [
    "data.block_size=32",
    "data.batch_size=2",
    "data.max_bytes=120000",
    "ltd.min_keep=8",
    "ltd.ramp_steps=2",
    "ltd.granularity=4",
    "lr.warmup_steps=1",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
]
"""The Hugging Face modules' small run (their keys differ from ``TINY``'s ``model.*``)."""

LLAMA = ["model=hf_causal_lm", "model.pretrained={tiny_llama}", *HF]
HF_BERT = ["model=hf_masked_lm", "model.pretrained={tiny_hf_bert}", "data=mlm", *HF]

HELD_OUT_4: list[tuple[str, list[str]]] = [
    ("range", ["seed=abc"]),
    ("range", ["data.seed=1.5"]),
    ("range", ["trainer.precision=42"]),
    ("range", ["trainer.accelerator=tpu"]),
    ("range", ["+logger.flush_logs_every_n_steps=-3"]),
    ("range", ["+callbacks.model_checkpoint.every_n_epochs=abc"]),
    ("range", ["+callbacks.summary.metrics=abc"]),
    ("range", ["model.n_embd=0"]),
    ("range", ["ltd.ramp_steps=-1"]),
    ("range", ["lr=step_cosine", "lr.warmup_steps=abc"]),
    ("range", [*LLAMA, "model.dropout=1.5"]),
    ("range", [*LLAMA, "model.attn_implementation=flash"]),
    ("range", [*LLAMA, "model.ltd_layers=[99]"]),
    ("range", [*VIT, "data.val_every=0"]),
    ("range", ["model=bert_small", "data=mlm", "data.min_len=-1", *VIT[1:2]]),
    ("nonsense", ["model=bert_small", "data=mlm", "data.min_len=1000", *VIT[1:2]]),
    ("nonsense", ["+callbacks.model_checkpoint.monitor=val/nope", "callbacks.model_checkpoint.save_top_k=1"]),
    ("nonsense", ["+callbacks.summary.metrics=[val/nope]"]),
    ("nonsense", ["+trainer.limit_train_batches=0.0"]),
    ("nonsense", [*LLAMA, "data=mlm"]),
    ("nonsense", [*HF_BERT, "data=text"]),
    ("nonsense", ["model=hf_masked_lm", "model.pretrained={tiny_llama}", "data=mlm", *HF]),
    ("paths", ["callbacks.model_checkpoint.filename=../../escape"]),
    ("paths", ["logger.name={notes}_dir/abs"]),
    ("paths", ["callbacks.model_checkpoint.dirpath=/proc/nope"]),
    ("paths", ["hydra.run.dir=/proc/nope/run"]),
    ("data", ["data=tokens", "data.path={shards_dtype_float}"]),
    ("data", ["data=tokens", "data.path={shards_no_dtype}"]),
    ("data", ["data=tokens", "data.path={shards}/meta.json"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_one_per_class}"]),
    ("data", ["data.tokenizer={notes}"]),
    ("data", ["experiment=vit_finetune_tiny", "model.pretrained={notes}", *VIT[1:]]),
    ("data", ["experiment=vit_finetune_tiny", "model.pretrained={tiny_gpt2}/model.safetensors", *VIT[1:]]),
    ("data", ["experiment=gpt2_finetune_tiny", "model.pretrained={tiny_llama}", *HF]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.weight_decay=0.2"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "+trainer.accumulate_grad_batches=2"]),
    ("checkpoint", ["ckpt_path={ckpt_truncated}"]),
    ("checkpoint", ["ckpt_path={ckpt_negative_moment}"]),
    ("checkpoint", ["ckpt_path={ckpt_no_hparams}"]),
    ("checkpoint", ["ckpt_path={ckpt_no_lr_schedulers}"]),
    ("checkpoint", ["ckpt_path={ckpt_lr_string}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "lr=layer_token_budget"]),
]
"""Round 6: written after round 5's fixes, run once before any fix of its own. Five rows first
named keys the configs do not hold without Hydra's ``+`` (so they tested Hydra's own check);
they were corrected and run once before any fix of theirs."""

HELD_OUT_5: list[tuple[str, list[str]]] = [
    ("range", ["model.betas=[0.9,1.0]"]),
    ("range", ["ltd.granularity=0"]),
    ("range", ["trainer.gradient_clip_val=-1"]),
    ("range", ["callbacks.nonfinite_guard.skip_steps=-1"]),
    ("range", ["callbacks.model_checkpoint.save_top_k=abc"]),
    ("range", ["model.dropout=-0.1"]),
    ("range", [*LLAMA, "model.activation_checkpointing=abc"]),
    ("range", [*HF_BERT, "data.mask_prob=0"]),
    ("nonsense", ["trainer.max_steps=0"]),
    ("nonsense", ["data.block_size=100000"]),
    ("nonsense", ["data.batch_size=100000"]),
    ("nonsense", [*VIT, "ltd.min_keep=1000"]),
    ("nonsense", ["+trainer.max_time=00:00:00:00"]),
    ("nonsense", ["+trainer.min_steps=100"]),
    ("nonsense", ["experiment=gpt2_finetune_tiny", "model.pretrained={tiny_gpt2}", *HF, "data.block_size=256"]),
    ("paths", ["data.path=~no_such_user_here/corpus.txt"]),
    ("paths", ["logger.name=''"]),
    ("data", ["data=tokens", "data.path={shards_meta_list}"]),
    ("data", ["data=tokens", "data.path={shards_tokens_float}"]),
    ("data", ["data=tokens", "data.path={shards_extra_bytes}"]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_no_weights}", *HF]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_unknown_type}", *HF]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_vocab_string}", *HF]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_good}", "data.image_size=100000"]),
    ("checkpoint", ["ckpt_path={ckpt_loops_string}"]),
    ("checkpoint", ["ckpt_path={ckpt_scheduler_state_string}"]),
    ("checkpoint", ["ckpt_path={ckpt_step_ahead}"]),
    ("checkpoint", ["ckpt_path={ckpt_vit}"]),
    ("checkpoint", ["ckpt_path={ckpt_hf}", *LLAMA, "trainer.max_steps=4", "model.dropout=0.1"]),
    ("checkpoint", ["ckpt_path={ckpt_hf}", *LLAMA, "trainer.max_steps=4", "model.pretrained={tiny_hf_bert}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "trainer.precision=64-true"]),
    ("checkpoint", ["ckpt_path={ckpt_moment_shape}"]),
]
"""Round 7: written after round 6's fixes, run once before any fix of its own."""

HELD_OUT_6: list[tuple[str, list[str]]] = [
    ("range", ["data.path=[a.txt,b.txt]"]),
    ("range", ["+trainer.enable_checkpointing=maybe"]),
    ("range", ["ltd.min_keep=1e3"]),
    ("range", ["lr=layer_token_budget", "lr.total_layer_tokens=1.5", "lr.warmup_steps=null"]),
    ("nonsense", ["trainer=ddp_cpu", "trainer.devices=1000"]),
    ("nonsense", ["+trainer.callbacks=[]"]),
    ("nonsense", ["+trainer.logger=false"]),
    ("nonsense", ["+trainer.enable_checkpointing=false"]),
    ("nonsense", ["lr=layer_token_budget", "lr.total_layer_tokens=1", "lr.warmup_layer_tokens=null"]),
    ("nonsense", ["data=tokens", "data.path={shards}", "data.block_size=100000"]),
    ("paths", ["data.path=/dev/zero"]),
    ("paths", ["data.path={fifo}"]),
    ("paths", ["model.pretrained=/dev/null"]),
    ("paths", ["ckpt_path=/dev/null"]),
    ("paths", ["hydra.run.dir=''"]),
    ("data", ["data=tokens", "data.path={shards_val_missing}"]),
    ("data", ["data=tokens", "data.path={shards_vocab_zero}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_good}", "data.channels=3", "model.in_channels=1"]),
    ("data", ["model=hf_masked_lm", "model.pretrained={tiny_hf_bert}", "data=mlm", "data.tokenizer={tokenizer}", *HF]),
    ("checkpoint", ["ckpt_path={ckpt_tensor_pickle}"]),
    ("checkpoint", ["ckpt_path={ckpt_fingerprint_string}"]),
    ("checkpoint", ["ckpt_path={ckpt_ledger_negative}"]),
    ("checkpoint", ["ckpt_path={ckpt_ledger_string}"]),
    ("checkpoint", ["ckpt_path={ckpt_global_batch_other}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "+trainer.accumulate_grad_batches=1"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "data.num_workers=1"]),
]
"""Round 8: written after round 7's fixes, run once before any fix of its own. The last two rows
are valid (an unchanged default written out; a key a resume may change): their right outcome is exit 0."""


HELD_OUT_7: list[tuple[str, list[str]]] = [  # round 9; "valid" rows are right when accepted
    ("range", ["data.batch_size=-1"]),
    ("range", ["ltd.max_keep=abc"]),
    ("range", ["trainer.val_check_interval=1e9"]),
    ("range", ["+trainer.max_time={{days:-1}}"]),
    ("range", ["model.vocab_size=0"]),
    ("range", ["lr=step_cosine", "lr.decay=exp"]),
    ("range", ["trainer.devices=[0]"]),
    ("range", ["trainer.max_steps=null"]),
    ("nonsense", ["data.num_workers=1000"]),
    ("nonsense", ["+callbacks.extra._target_=no.such.Callback"]),
    ("nonsense", ["+callbacks.extra._target_=builtins.dict"]),
    ("nonsense", ["model._target_=builtins.dict"]),
    (
        "nonsense",
        [
            "+callbacks.early_stop._target_=lightning.pytorch.callbacks.EarlyStopping",
            "+callbacks.early_stop.monitor=val/loss",
            "+callbacks.early_stop.patience=-1",
        ],
    ),
    ("nonsense", ["trainer.limit_val_batches=0", "+callbacks.summary.metrics=[val/loss]"]),
    ("paths", ["hydra.run.dir={finished_run}"]),
    ("paths", ["logger.save_dir=/dev/null"]),
    ("paths", ["data.tokenizer={tiny_llama}/tokenizer.json", "model.vocab_size=512"]),
    ("paths", ["ckpt_path=~/no_such_checkpoint.ckpt"]),
    ("paths", ["data.path={symlink_loop}"]),
    ("data", ["data.path={whitespace_only}"]),
    ("data", ["data=tokens", "data.path={shards_meta_invalid_json}"]),
    ("data", ["data=tokens", "data.path={shards_zero_tokens}"]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_truncated_weights}", *HF]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_bad_tokenizer}", *HF]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_config_list}", *HF]),
    ("checkpoint", ["ckpt_path={ckpt_old_lightning}"]),
    ("checkpoint", ["ckpt_path={ckpt_no_version}"]),
    ("checkpoint", ["ckpt_path={ckpt_compiled_prefix}"]),
    ("checkpoint", ["ckpt_path={ckpt_meta_tensor}"]),
    ("checkpoint", ["ckpt_path={ckpt_two_param_groups}"]),
    ("checkpoint", ["ckpt_path={ckpt_epoch_string}"]),
    ("checkpoint", ["ckpt_path={ckpt_dangling}"]),
    ("valid", ["+trainer.fast_dev_run=true"]),
    ("valid", ["trainer.precision=bf16-mixed"]),
    ("valid", [*VIT, "data=imagefolder", "data.path={images_with_notes}"]),
    ("valid", [*VIT, "data=imagefolder", "data.path={images_rgba}"]),
    ("valid", ["ckpt_path={good_ckpt}", "+trainer.max_time=00:01:00:00"]),
    ("valid", ["ckpt_path={good_ckpt}", "trainer.log_every_n_steps=1"]),
]


HELD_OUT_8: list[tuple[str, list[str]]] = [  # round 10; "valid" rows are right when accepted
    ("range", ["data.block_size=1"]),
    ("range", ["seed=true"]),
    ("range", ["trainer.max_epochs=0", "trainer.max_steps=-1"]),
    ("range", ["lr.warmup_steps=-1"]),
    ("range", ["ltd.ramp_steps=1e12"]),
    ("range", ["model.ltd_layers=[0,1,2,3]"]),
    ("range", ["callbacks.nonfinite_guard.skip_steps=-1"]),
    ("range", ["callbacks.throughput.window_size=1.5"]),
    ("range", ["ltd.compile_buckets=0"]),
    ("range", ["data.mask_prob=1.5", "data=tokens", "data.path={shards}"]),
    ("nonsense", ["trainer=ddp_cpu", "trainer.devices=3"]),
    ("nonsense", ["+trainer.max_time={{hours:1}}", "+trainer.max_time_extra=1"]),
    ("nonsense", ["callbacks.model_checkpoint.save_last=false", "callbacks.model_checkpoint.save_top_k=0"]),
    ("nonsense", ["callbacks.preemption.usr1=maybe"]),
    (
        "nonsense",
        ["+callbacks.x._target_=lightning.pytorch.callbacks.ModelCheckpoint", "+callbacks.x.monitor=val/nope"],
    ),
    ("nonsense", ["+trainer.strategy=nope"]),
    ("nonsense", ["lr=layer_token_budget", "lr.total_layer_tokens=10"]),
    ("paths", ["hydra.run.dir=/dev/null/x"]),
    ("paths", ["ckpt_path={shards}"]),
    ("paths", ["data.tokenizer={notes}"]),
    ("paths", ["model=hf_causal_lm", "model.pretrained={tiny_llama}/config.json", *HF]),
    ("paths", ["callbacks.model_checkpoint.dirpath={notes}/sub"]),
    ("data", ["data.path={latin1_text}", "data.tokenizer={tokenizer}", "model.vocab_size=512"]),
    ("data", ["data=tokens", "data.path={shards_no_val_key}"]),
    ("data", ["data=tokens", "data.path={shards_file_is_dir}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_nested_deeper}"]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_one_layer}", *HF]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_no_tokenizer}", *HF]),
    ("checkpoint", ["ckpt_path={ckpt_weights_as_lists}"]),
    ("checkpoint", ["ckpt_path={ckpt_no_optimizer_entries}"]),
    ("checkpoint", ["ckpt_path={ckpt_no_callbacks}"]),
    ("checkpoint", ["ckpt_path={ckpt_gzipped}"]),
    ("checkpoint", ["ckpt_path={ckpt_custom_class}"]),
    ("checkpoint", ["ckpt_path={ckpt_loops_no_fit}"]),
    ("valid", ["logger=null"]),
    ("valid", ["callbacks.lr_monitor=null", "callbacks.throughput=null"]),
    ("valid", ["trainer.precision=bf16-true"]),
    ("valid", [*VIT, "data=imagefolder", "data.path={images_upper_case}"]),
    ("valid", ["+trainer.max_time={{hours:1,minutes:30}}"]),
    ("valid", ["data.path={text_and_binary}"]),
    ("valid", ["ckpt_path={good_ckpt}", "trainer.max_steps=12", "callbacks.model_checkpoint.every_n_train_steps=3"]),
]
"""Round 10: written after round 9's fixes, run once before any fix of its own."""


HELD_OUT_9: list[tuple[str, list[str]]] = [  # round 11; "valid" rows are right when accepted
    ("range", ["model.position=rotary", "model.n_embd=30", "model.n_head=2"]),
    ("range", ["data.batch_size=1e3"]),
    ("range", ["model.betas=[0.9,0.95,0.99]"]),
    ("range", ["lr.warmup_layer_tokens=-5", "lr.warmup_steps=null"]),
    ("range", ["data.val_every=0"]),
    ("range", ["model.vocab_size=300000000"]),
    ("range", ["callbacks.nonfinite_guard.check_every_n_steps=0"]),
    ("nonsense", ["+trainer.gradient_clip_algorithm=value", "trainer.gradient_clip_val=0"]),
    (
        "nonsense",
        [
            "+callbacks.es._target_=lightning.pytorch.callbacks.EarlyStopping",
            "+callbacks.es.monitor=val/loss",
            "+callbacks.es.mode=sideways",
        ],
    ),
    ("nonsense", ["+callbacks.model_checkpoint.every_n_epochs=1"]),
    ("nonsense", ["trainer.precision=16-true"]),
    ("nonsense", ["data=digits"]),
    ("nonsense", ["lr=step_cosine", "lr.total_steps=2", "trainer.max_steps=4"]),
    ("paths", ["data.path=relative/missing.txt"]),
    ("paths", ["hydra.run.dir={notes}"]),
    ("paths", ["ckpt_path={good_run}/checkpoints"]),
    ("paths", ["data.tokenizer={tiny_hf_bert}"]),
    ("data", ["data=tokens", "data.path={shards_dtype_small}"]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_lopsided}"]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_short_positions}", *HF]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_vocab_mismatch}", *HF]),
    ("checkpoint", ["ckpt_path={ckpt_hparams_edited}"]),
    ("checkpoint", ["ckpt_path={ckpt_negative_lr}"]),
    ("checkpoint", ["ckpt_path={ckpt_scheduler_string}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "+trainer.accumulate_grad_batches=2"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "ltd=off"]),
    ("valid", ["trainer.val_check_interval=0.5", "+trainer.max_epochs=1", "trainer.max_steps=-1", "lr=constant"]),
    ("valid", ["callbacks.model_checkpoint.every_n_train_steps=0"]),
    ("valid", ["ltd.granularity=3"]),
    ("valid", ["trainer.limit_val_batches=0", "validate_before_fit=true"]),
    ("valid", ["ltd.enabled=false", "ltd.min_keep=1000"]),
    ("valid", ["seed=null"]),
    ("valid", [*VIT, "data=imagefolder", "data.path={images_cmyk_16bit}"]),
    ("valid", ["data.path={text_many_empty_files}"]),
    ("valid", ["data.path={text_one_long_line}"]),
    ("valid", ["model=hf_causal_lm", "model.pretrained={llama_bf16}", *HF]),
    ("valid", ["ckpt_path={ckpt_extra_top_key}"]),
]
"""Round 11: written after round 10's fixes, run once before any fix of its own."""


HELD_OUT_10: list[tuple[str, list[str]]] = [  # round 12; "valid" rows are right when accepted
    ("range", ["ltd.granularity=true"]),
    ("range", ["model.n_layer=true"]),
    ("range", ["+trainer.accumulate_grad_batches=0"]),
    ("range", ["trainer.limit_val_batches=-1"]),
    ("range", ["model.n_head=0"]),
    ("range", ["ltd.min_keep=0"]),
    ("range", ["lr=layer_token_budget", "lr.total_layer_tokens=null", "lr.total_tokens=-1"]),
    ("range", ["data.max_bytes=0"]),
    ("range", ["callbacks.summary.baseline_tokens=abc"]),
    ("range", ["trainer.log_every_n_steps=-1"]),
    (
        "range",
        [
            "+callbacks.swa._target_=lightning.pytorch.callbacks.StochasticWeightAveraging",
            "+callbacks.swa.swa_lrs=-1",
        ],
    ),
    ("nonsense", ["trainer=fsdp"]),
    ("nonsense", ["trainer=deepspeed"]),
    ("nonsense", [*VIT, "data=tokens", "data.path={shards}"]),
    ("nonsense", ["+callbacks.model_checkpoint.train_time_interval={{minutes:1}}"]),
    ("nonsense", ["ltd.max_keep=64"]),
    ("nonsense", ["trainer.max_epochs=0"]),
    ("nonsense", ["trainer.precision=transformer-engine"]),
    ("paths", ["data.path={notes}"]),
    ("paths", ["model=hf_causal_lm", "model.pretrained=someone/tiny-random-llama", *HF]),
    ("paths", ["hydra.run.dir={notes}/x"]),
    ("paths", ["ckpt_path={good_run}/checkpoints/nope.ckpt"]),
    ("paths", ["data.path={images_good}"]),
    ("paths", ["logger.save_dir=''"]),
    ("data", ["data=tokens", "data.path={shards_escape}"]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_empty_config}", *HF]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_missing_weight}", *HF]),
    ("data", ["model=hf_masked_lm", "model.pretrained={hf_bert_no_mask_token}", "data=mlm", *HF]),
    ("data", [*VIT, "data=imagefolder", "data.path={images_no_class_folders}"]),
    ("checkpoint", ["ckpt_path={ckpt_global_step_float}"]),
    ("checkpoint", ["ckpt_path={ckpt_optimizer_extra_param}"]),
    ("checkpoint", ["ckpt_path={ckpt_batches_behind}"]),
    ("checkpoint", ["ckpt_path={ckpt_scheduled_ahead}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "model.position=rotary"]),
    ("valid", ["data.num_workers=2"]),
    ("valid", ["model.dropout=0.1", "trainer.precision=bf16-mixed"]),
    ("valid", ["model.activation_checkpointing=true"]),
    ("valid", ["+trainer.accumulate_grad_batches=2"]),
    ("valid", ["data.path={text_bom_crlf}"]),
    ("valid", [*VIT, "data=imagefolder", "data.path={images_mixed_sizes}"]),
    ("valid", ["ckpt_path={good_ckpt}", "trainer.max_steps=6", "callbacks.throughput.window_size=3"]),
    ("valid", ["lr=constant"]),
    ("valid", [*LLAMA, "model.dropout=0.1"]),
]
"""Round 12: written after round 11's fixes, run once before any fix of its own."""


BERT = ["experiment=bert_mlm", "trainer.max_steps=2", "trainer.limit_val_batches=1", "data.batch_size=4"]

HELD_OUT_11: list[tuple[str, list[str]]] = [  # round 13; "valid" rows are right when accepted
    ("range", ["data.block_size=1e400"]),
    ("range", ["model.betas=[0.9]"]),
    ("range", ["callbacks.throughput.window_size=-1"]),
    ("range", [*BERT, "data.mask_prob=-0.1"]),
    ("range", ["trainer.num_sanity_val_steps=-2"]),
    ("range", ["lr.decay=''"]),
    ("range", ["seed='7'"]),
    ("range", ["callbacks.model_checkpoint.every_n_train_steps=1.5"]),
    ("nonsense", ["lr=layer_token_budget", "lr.stop_at_budget=false"]),
    ("nonsense", ["trainer.max_steps=-1", "trainer.max_epochs=-1", "lr=constant"]),
    ("nonsense", [*BERT, "data=digits"]),
    ("nonsense", ["trainer.accelerator=mps"]),
    ("nonsense", ["model.n_head=3"]),
    ("paths", ["data.tokenizer={shards}"]),
    ("paths", ["model=hf_causal_lm", "model.pretrained={good_ckpt}", *HF]),
    ("paths", ["ckpt_path={ckpt_dir_named}"]),
    ("paths", ["data.path={text_gz}"]),
    ("data", ["data=tokens", "data.path={shards_vocab_over_dtype}"]),
    ("data", ["model=hf_causal_lm", "model.pretrained={llama_bad_heads}", *HF]),
    ("checkpoint", ["ckpt_path={ckpt_betas_short}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "lr=constant"]),
    ("checkpoint", ["ckpt_path={ckpt_hf}"]),
    ("checkpoint", ["ckpt_path={good_ckpt}", "data=tokens", "data.path={shards}"]),
    ("valid", ["ckpt_path={resume_run}/checkpoints/last.ckpt", "hydra.run.dir={resume_run}", "trainer.max_steps=6"]),
    ("valid", ["logger.name=a/b/c"]),
    ("valid", ["data.path={text_dir_loop}"]),
    ("valid", [*VIT, "data=imagefolder", "data.path={images_gif}"]),
    ("valid", ["ltd=off", "model.ltd_layers=[1]"]),
    ("valid", ["model.dropout=0.1", "data.num_workers=1", "trainer.precision=bf16-true"]),
    ("valid", BERT),
    ("valid", ["lr=step_cosine"]),
    ("valid", ["callbacks.model_checkpoint.every_n_train_steps=1"]),
]
"""Round 13: written after round 12's fixes, run once before any fix of its own."""


def make_files(root: Path) -> dict[str, Path]:
    """The files the catalogue names: text, tokenizers, shards, images, checkpoints."""
    from lightning_ltd.data.prepare import prepare
    from lightning_ltd.pretrained.tiny import tiny_tokenizer

    made = {"notes": root / "notes.txt", "binary": root / "binary.txt", "long": root / "long.txt"}
    made["notes"].write_text("not a checkpoint\n")
    made["binary"].write_bytes(os.urandom(200_000))
    made["long"].write_text("the quick brown fox jumps over the lazy dog. " * 400)
    made["broken_tokenizer"] = root / "broken_tokenizer"
    made["broken_tokenizer"].mkdir()
    (made["broken_tokenizer"] / "tokenizer.json").write_text("{ not json")
    made["random_folder"] = root / "random_folder"
    made["random_folder"].mkdir()
    (made["random_folder"] / "weights.bin").write_bytes(os.urandom(1024))

    made["shards"] = root / "shards"
    prepare([str(made["long"])], str(made["shards"]), val_fraction=0.2, progress=False)
    meta = json.loads((made["shards"] / "meta.json").read_text())
    names = ("shards_missing", "shards_short", "shards_odd", "shards_negative", "shards_no_train")
    for name in (*names, "shards_train_string", "shards_vocab_small"):
        made[name] = root / name
        shutil.copytree(made["shards"], made[name])
    (made["shards_missing"] / "train-00000.bin").unlink()
    train_bin = made["shards_short"] / "train-00000.bin"
    train_bin.write_bytes(train_bin.read_bytes()[:5000])  # meta.json still says 13906 tokens
    odd = {**meta, "dtype": "uint16", "vocab_size": 256}  # 13906 bytes are not whole uint16 tokens
    (made["shards_odd"] / "meta.json").write_text(json.dumps(odd))
    negative = {**meta, "train": [{**meta["train"][0], "tokens": -5}]}
    (made["shards_negative"] / "meta.json").write_text(json.dumps(negative))
    (made["shards_no_train"] / "meta.json").write_text(json.dumps({**meta, "train": []}))
    (made["shards_train_string"] / "meta.json").write_text(json.dumps({**meta, "train": "abc"}))
    (made["shards_vocab_small"] / "meta.json").write_text(json.dumps({**meta, "vocab_size": 40}))
    for name, changed in (("shards_dtype_float", {**meta, "dtype": "float32"}), ("shards_no_dtype", None)):
        made[name] = root / name
        shutil.copytree(made["shards"], made[name])
        written = changed or {key: value for key, value in meta.items() if key != "dtype"}
        (made[name] / "meta.json").write_text(json.dumps(written))
    for name in ("shards_meta_list", "shards_tokens_float", "shards_extra_bytes"):
        made[name] = root / name
        shutil.copytree(made["shards"], made[name])
    (made["shards_meta_list"] / "meta.json").write_text(json.dumps([meta]))
    for name in ("shards_val_missing", "shards_vocab_zero"):
        made[name] = root / name
        shutil.copytree(made["shards"], made[name])
    (made["shards_val_missing"] / meta["val"][0]["file"]).unlink()
    (made["shards_vocab_zero"] / "meta.json").write_text(json.dumps({**meta, "vocab_size": 0}))
    made["fifo"] = root / "fifo.txt"
    os.mkfifo(made["fifo"])  # a reader blocks until a writer opens it: never, here
    floats = {**meta, "train": [{**meta["train"][0], "tokens": 1.5}]}
    (made["shards_tokens_float"] / "meta.json").write_text(json.dumps(floats))
    with open(made["shards_extra_bytes"] / "train-00000.bin", "ab") as grown:
        grown.write(b"appended after meta.json was written")
    made["empty_dir"] = root / "empty_dir"
    made["empty_dir"].mkdir()
    made["hidden_only"] = root / "hidden_only"
    made["hidden_only"].mkdir()
    (made["hidden_only"] / ".notes.txt").write_text("the quick brown fox " * 1000)
    made["dangling"] = root / "dangling.txt"
    made["dangling"].symlink_to(root / "gone.txt")
    made["tokenizer"] = root / "tokenizer"
    tiny_tokenizer(made["tokenizer"])  # at most 512 tokens

    for name, classes in (("images_corrupt", "ab"), ("images_one_class", "a"), ("images_text_png", "ab")):
        made[name] = root / name
        for index, label in enumerate(classes):
            (made[name] / label).mkdir(parents=True)
            for i in range(6):
                Image.new("L", (8, 8), color=30 * index + i).save(made[name] / label / f"{i}.png")
    (made["images_corrupt"] / "a" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    (made["images_text_png"] / "b" / "2.png").write_text("a text file with an image's name\n")
    made["images_good"] = root / "images_good"
    shutil.copytree(made["images_one_class"], made["images_good"] / "a", dirs_exist_ok=True)
    shutil.copytree(made["images_one_class"] / "a", made["images_good"] / "b")
    made["images_one_per_class"] = root / "images_one_per_class"
    for index, label in enumerate("ab"):
        (made["images_one_per_class"] / label).mkdir(parents=True)
        Image.new("L", (8, 8), color=60 * index).save(made["images_one_per_class"] / label / "0.png")
    made["images_zero_byte"] = root / "images_zero_byte"
    for label in "ab":
        shutil.copytree(made["images_one_class"] / "a", made["images_zero_byte"] / label)
    (made["images_zero_byte"] / "a" / "0.png").write_bytes(b"")
    made["images_huge"] = root / "images_huge"
    shutil.copytree(made["images_corrupt"], made["images_huge"])
    Image.new("1", (20000, 20000)).save(made["images_huge"] / "a" / "3.png")  # 400 M pixels, a few kB

    from lightning_ltd.pretrained.tiny import tiny_gpt2, tiny_hf_bert, tiny_llama

    for name, writer in (("tiny_llama", tiny_llama), ("tiny_hf_bert", tiny_hf_bert), ("tiny_gpt2", tiny_gpt2)):
        made[name] = writer(root / name)
    for name, change in (
        ("llama_no_weights", None),
        ("llama_unknown_type", {"model_type": "nope"}),
        ("llama_vocab_string", {"vocab_size": "lots"}),
    ):
        made[name] = root / name
        shutil.copytree(made["tiny_llama"], made[name])
        if change is None:
            (made[name] / "model.safetensors").unlink()
        else:
            config = json.loads((made[name] / "config.json").read_text())
            (made[name] / "config.json").write_text(json.dumps({**config, **change}))
    made.update(make_round_9_files(root, made))
    made.update(make_round_10_files(root, made))
    made.update(make_round_11_files(root, made))
    made.update(make_round_12_files(root, made))
    made.update(make_round_13_files(root, made))
    made.update(make_checkpoints(root, made))
    return made


def make_round_9_files(root: Path, made: dict[str, Path]) -> dict[str, Path]:
    """Text, shards, image folders and Hugging Face folders of round 9."""
    extra = {"symlink_loop": root / "loop.txt", "whitespace_only": root / "whitespace.txt"}
    extra["symlink_loop"].symlink_to(extra["symlink_loop"])
    extra["whitespace_only"].write_text(" \n\t\n" * 5000)
    meta = json.loads((made["shards"] / "meta.json").read_text())
    for name in ("shards_meta_invalid_json", "shards_zero_tokens"):
        extra[name] = root / name
        shutil.copytree(made["shards"], extra[name])
    (extra["shards_meta_invalid_json"] / "meta.json").write_text(json.dumps(meta)[:-20])
    (extra["shards_zero_tokens"] / meta["train"][0]["file"]).write_bytes(b"")
    zero = {**meta, "train": [{**meta["train"][0], "tokens": 0}]}
    (extra["shards_zero_tokens"] / "meta.json").write_text(json.dumps(zero))
    extra["images_with_notes"] = root / "images_with_notes"
    shutil.copytree(made["images_good"], extra["images_with_notes"])
    (extra["images_with_notes"] / "a" / "README.txt").write_text("where these images came from\n")
    (extra["images_with_notes"] / ".DS_Store").write_bytes(os.urandom(64))
    extra["images_rgba"] = root / "images_rgba"
    for index, label in enumerate("ab"):
        (extra["images_rgba"] / label).mkdir(parents=True)
        for i in range(6):
            Image.new("RGBA", (8, 8), color=(30 * index, i, 9, 128)).save(extra["images_rgba"] / label / f"{i}.png")
    for name in ("llama_truncated_weights", "llama_bad_tokenizer", "llama_config_list"):
        extra[name] = root / name
        shutil.copytree(made["tiny_llama"], extra[name])
    weights = extra["llama_truncated_weights"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (extra["llama_bad_tokenizer"] / "tokenizer.json").write_text("{ not json")
    config = json.loads((extra["llama_config_list"] / "config.json").read_text())
    (extra["llama_config_list"] / "config.json").write_text(json.dumps([config]))
    return extra


def make_round_10_files(root: Path, made: dict[str, Path]) -> dict[str, Path]:
    """Text, shards, image folders and Hugging Face folders of round 10."""
    extra = {"latin1_text": root / "latin1.txt", "text_and_binary": root / "text_and_binary"}
    extra["latin1_text"].write_bytes(("caf\u00e9 na\u00efve r\u00e9sum\u00e9 " * 2000).encode("latin-1"))
    extra["text_and_binary"].mkdir()
    (extra["text_and_binary"] / "a.txt").write_text("the quick brown fox jumps over the lazy dog. " * 400)
    (extra["text_and_binary"] / "b.bin").write_bytes(b"\x00\x01\x02" * 1000)
    meta = json.loads((made["shards"] / "meta.json").read_text())
    for name in ("shards_no_val_key", "shards_file_is_dir"):
        extra[name] = root / name
        shutil.copytree(made["shards"], extra[name])
    (extra["shards_no_val_key"] / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "val"}))
    shard = extra["shards_file_is_dir"] / meta["train"][0]["file"]
    shard.unlink()
    shard.mkdir()
    extra["images_nested_deeper"] = root / "images_nested_deeper"
    shutil.copytree(made["images_good"], extra["images_nested_deeper"] / "train")
    extra["images_upper_case"] = root / "images_upper_case"
    shutil.copytree(made["images_good"], extra["images_upper_case"])
    for image in list(extra["images_upper_case"].rglob("*.png")):
        image.rename(image.with_suffix(".PNG"))
    extra["llama_one_layer"] = root / "llama_one_layer"
    shutil.copytree(made["tiny_llama"], extra["llama_one_layer"])
    config = json.loads((extra["llama_one_layer"] / "config.json").read_text())
    (extra["llama_one_layer"] / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))
    extra["llama_no_tokenizer"] = root / "llama_no_tokenizer"
    shutil.copytree(made["tiny_llama"], extra["llama_no_tokenizer"])
    for file in extra["llama_no_tokenizer"].glob("*token*"):
        file.unlink()
    return extra


def make_round_11_files(root: Path, made: dict[str, Path]) -> dict[str, Path]:
    """Text, shards, image folders and Hugging Face folders of round 11."""
    from safetensors.torch import load_file, save_file

    extra = {"text_many_empty_files": root / "many_empty", "text_one_long_line": root / "one_line.txt"}
    extra["text_many_empty_files"].mkdir()
    for i in range(2000):
        (extra["text_many_empty_files"] / f"empty_{i}.txt").write_text("")
    (extra["text_many_empty_files"] / "real.txt").write_text("the quick brown fox jumps over the lazy dog. " * 400)
    extra["text_one_long_line"].write_text("the quick brown fox jumps over the lazy dog " * 4000)
    meta = json.loads((made["shards"] / "meta.json").read_text())
    extra["shards_dtype_small"] = root / "shards_dtype_small"
    shutil.copytree(made["shards"], extra["shards_dtype_small"])
    (extra["shards_dtype_small"] / "meta.json").write_text(json.dumps({**meta, "vocab_size": 300}))
    extra["images_lopsided"] = root / "images_lopsided"
    shutil.copytree(made["images_good"] / "a", extra["images_lopsided"] / "a")
    (extra["images_lopsided"] / "b").mkdir()
    shutil.copy(made["images_good"] / "b" / "0.png", extra["images_lopsided"] / "b" / "0.png")
    extra["images_cmyk_16bit"] = root / "images_cmyk_16bit"
    for label in "ab":
        (extra["images_cmyk_16bit"] / label).mkdir(parents=True)
        for i in range(6):
            if label == "a":
                Image.new("CMYK", (8, 8), color=(i * 20, 0, 0, 0)).save(extra["images_cmyk_16bit"] / label / f"{i}.jpg")
            else:
                pixels = np.full((8, 8), 1000 * i, dtype=np.uint16)
                Image.fromarray(pixels).save(extra["images_cmyk_16bit"] / label / f"{i}.png")
    for name, change in (
        ("llama_short_positions", {"max_position_embeddings": 16}),
        ("llama_vocab_mismatch", {"vocab_size": 100}),
        ("llama_bf16", {"torch_dtype": "bfloat16"}),
    ):
        extra[name] = root / name
        shutil.copytree(made["tiny_llama"], extra[name])
        config = json.loads((extra[name] / "config.json").read_text())
        (extra[name] / "config.json").write_text(json.dumps({**config, **change}))
    weights = extra["llama_bf16"] / "model.safetensors"
    save_file({k: v.bfloat16() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
    return extra


def make_round_12_files(root: Path, made: dict[str, Path]) -> dict[str, Path]:
    """Text, shards, image folders and Hugging Face folders of round 12."""
    from safetensors.torch import load_file, save_file

    extra = {"text_bom_crlf": root / "bom_crlf.txt"}
    extra["text_bom_crlf"].write_bytes(b"\xef\xbb\xbf" + b"the quick brown fox jumps over the lazy dog.\r\n" * 400)
    meta = json.loads((made["shards"] / "meta.json").read_text())
    extra["shards_escape"] = root / "shards_escape"
    shutil.copytree(made["shards"], extra["shards_escape"])
    shutil.copy(made["shards"] / meta["train"][0]["file"], root / "outside.bin")
    escaped = {**meta, "train": [{**meta["train"][0], "file": "../outside.bin"}]}
    (extra["shards_escape"] / "meta.json").write_text(json.dumps(escaped))
    extra["llama_empty_config"] = root / "llama_empty_config"
    shutil.copytree(made["tiny_llama"], extra["llama_empty_config"])
    (extra["llama_empty_config"] / "config.json").write_text("{}")
    extra["llama_missing_weight"] = root / "llama_missing_weight"
    shutil.copytree(made["tiny_llama"], extra["llama_missing_weight"])
    weights = extra["llama_missing_weight"] / "model.safetensors"
    tensors = load_file(weights)
    dropped = sorted(name for name in tensors if "layers.0.self_attn.q_proj" in name)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, weights, metadata={"format": "pt"})
    extra["hf_bert_no_mask_token"] = root / "hf_bert_no_mask_token"
    shutil.copytree(made["tiny_hf_bert"], extra["hf_bert_no_mask_token"])
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = extra["hf_bert_no_mask_token"] / name
        if path.exists():
            config = json.loads(path.read_text())
            config.pop("mask_token", None)
            path.write_text(json.dumps(config))
    tokenizer_json = extra["hf_bert_no_mask_token"] / "tokenizer.json"
    if tokenizer_json.exists():
        tokenizer = json.loads(tokenizer_json.read_text())
        tokenizer["added_tokens"] = [t for t in tokenizer.get("added_tokens", []) if t["content"] != "[MASK]"]
        tokenizer_json.write_text(json.dumps(tokenizer))
    extra["images_no_class_folders"] = root / "images_no_class_folders"
    extra["images_no_class_folders"].mkdir()
    for i in range(12):
        Image.new("L", (8, 8), color=10 * i).save(extra["images_no_class_folders"] / f"{i}.png")
    extra["images_mixed_sizes"] = root / "images_mixed_sizes"
    for index, label in enumerate("ab"):
        (extra["images_mixed_sizes"] / label).mkdir(parents=True)
        for i in range(6):
            size = (4 + 5 * i, 30 - 4 * i)
            Image.new("L", size, color=40 * index + i).save(extra["images_mixed_sizes"] / label / f"{i}.png")
    return extra


def make_round_13_files(root: Path, made: dict[str, Path]) -> dict[str, Path]:
    """Text, shards, image folders and Hugging Face folders of round 13."""
    extra = {"text_gz": root / "corpus.txt.gz", "text_dir_loop": root / "text_dir_loop"}
    extra["text_gz"].write_bytes(gzip.compress(b"the quick brown fox jumps over the lazy dog. " * 4000))
    extra["text_dir_loop"].mkdir()
    (extra["text_dir_loop"] / "a.txt").write_text("the quick brown fox jumps over the lazy dog. " * 400)
    (extra["text_dir_loop"] / "back").symlink_to(extra["text_dir_loop"], target_is_directory=True)
    meta = json.loads((made["shards"] / "meta.json").read_text())
    extra["shards_vocab_over_dtype"] = root / "shards_vocab_over_dtype"
    shutil.copytree(made["shards"], extra["shards_vocab_over_dtype"])
    over = {**meta, "dtype": "uint8", "vocab_size": 70000}
    (extra["shards_vocab_over_dtype"] / "meta.json").write_text(json.dumps(over))
    extra["llama_bad_heads"] = root / "llama_bad_heads"
    shutil.copytree(made["tiny_llama"], extra["llama_bad_heads"])
    config = json.loads((extra["llama_bad_heads"] / "config.json").read_text())
    heads = {"num_attention_heads": 3, "num_key_value_heads": 3}
    (extra["llama_bad_heads"] / "config.json").write_text(json.dumps({**config, **heads}))
    extra["images_gif"] = root / "images_gif"
    for index, label in enumerate("ab"):
        (extra["images_gif"] / label).mkdir(parents=True)
        for i in range(6):
            frames = [Image.new("P", (8, 8), color=30 * index + i + k) for k in range(3)]
            frames[0].save(extra["images_gif"] / label / f"{i}.gif", save_all=True, append_images=frames[1:])
    return extra


def make_checkpoints(root: Path, made: dict[str, Path]) -> dict[str, Path]:
    """A good tiny run's last checkpoint and damaged copies of it."""
    run = root / "good_run"
    result = subprocess.run(
        [sys.executable, "train.py", *TINY, f"hydra.run.dir={run}"], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"the good run failed: {result.stderr[-2000:]}")
    good = run / "checkpoints" / "last.ckpt"
    checkpoints = {"good_ckpt": good, "good_run": run}
    base = torch.load(good, map_location="cpu", weights_only=False)

    def damaged(name: str, change) -> None:
        checkpoint = torch.load(good, map_location="cpu", weights_only=False)
        change(checkpoint)
        checkpoints[name] = root / f"{name}.ckpt"
        torch.save(checkpoint, checkpoints[name])

    first = next(iter(base["state_dict"]))
    damaged("ckpt_no_state_dict", lambda c: c.pop("state_dict"))
    damaged("ckpt_wrong_shape", lambda c: c["state_dict"].__setitem__(first, torch.zeros(3, 3)))
    damaged("ckpt_extra_key", lambda c: c["state_dict"].__setitem__("model.extra.weight", torch.zeros(2)))
    damaged("ckpt_missing_key", lambda c: c["state_dict"].pop(first))
    damaged("ckpt_no_loops", lambda c: c.pop("loops"))

    def nan_step(c):
        c["optimizer_states"][0]["state"][0]["step"] = torch.tensor(float("nan"))

    def int_moment(c):
        state = c["optimizer_states"][0]["state"][0]
        state["exp_avg"] = state["exp_avg"].to(torch.int64)

    damaged("ckpt_bool_weight", lambda c: c["state_dict"].__setitem__(first, c["state_dict"][first].bool()))
    damaged("ckpt_inf_weight", lambda c: c["state_dict"][first].view(-1).__setitem__(0, float("inf")))
    damaged("ckpt_hparams_string", lambda c: c.__setitem__("hyper_parameters", "not a dict"))
    damaged("ckpt_negative_step", lambda c: c.__setitem__("global_step", -5))
    damaged("ckpt_fp16_weight", lambda c: c["state_dict"].__setitem__(first, c["state_dict"][first].half()))
    damaged("ckpt_state_dict_list", lambda c: c.__setitem__("state_dict", list(c["state_dict"].values())))
    checkpoints["ckpt_zero_byte"] = root / "zero_byte.ckpt"
    checkpoints["ckpt_zero_byte"].write_bytes(b"")
    damaged("ckpt_nan_step", nan_step)

    def negative_moment(c):
        state = c["optimizer_states"][0]["state"][0]
        state["exp_avg_sq"] = -state["exp_avg_sq"] - 1.0  # finite, but Adam takes its square root

    def lr_string(c):
        c["optimizer_states"][0]["param_groups"][0]["lr"] = "fast"

    damaged("ckpt_negative_moment", negative_moment)
    damaged("ckpt_no_hparams", lambda c: c.pop("hyper_parameters"))
    damaged("ckpt_no_lr_schedulers", lambda c: c.pop("lr_schedulers"))
    damaged("ckpt_lr_string", lr_string)

    def moment_shape(c):
        state = c["optimizer_states"][0]["state"][0]
        state["exp_avg"] = torch.zeros(7)

    damaged("ckpt_moment_shape", moment_shape)
    damaged("ckpt_loops_string", lambda c: c["loops"].__setitem__("fit_loop", "not a loop state"))
    damaged("ckpt_scheduler_state_string", lambda c: c["callbacks"].__setitem__("RandomLTDScheduler", "not a state"))
    damaged("ckpt_step_ahead", lambda c: c.__setitem__("global_step", c["global_step"] + 2))

    def ledger(value):
        return lambda c: c["callbacks"]["RandomLTDScheduler"].__setitem__("layer_tokens", value)

    damaged("ckpt_fingerprint_string", lambda c: c.__setitem__("run_fingerprint", "not a fingerprint"))
    damaged("ckpt_ledger_negative", ledger(-100))
    damaged("ckpt_ledger_string", ledger("lots"))
    damaged("ckpt_global_batch_other", lambda c: c["callbacks"]["RandomLTDScheduler"].__setitem__("global_batch", 3))
    damaged("ckpt_old_lightning", lambda c: c.__setitem__("pytorch-lightning_version", "0.5.0"))
    damaged("ckpt_no_version", lambda c: c.pop("pytorch-lightning_version"))
    damaged(
        "ckpt_compiled_prefix",
        lambda c: c.__setitem__("state_dict", {f"_orig_mod.{k}": v for k, v in c["state_dict"].items()}),
    )
    damaged("ckpt_meta_tensor", lambda c: c["state_dict"].__setitem__(first, c["state_dict"][first].to("meta")))

    def two_param_groups(c):
        groups = c["optimizer_states"][0]["param_groups"]
        groups.append({**groups[-1], "params": [max(p for g in groups for p in g["params"]) + 1]})

    damaged("ckpt_two_param_groups", two_param_groups)
    damaged("ckpt_epoch_string", lambda c: c.__setitem__("epoch", "x"))
    checkpoints["ckpt_dangling"] = root / "dangling.ckpt"
    checkpoints["ckpt_dangling"].symlink_to(root / "gone.ckpt")
    checkpoints["finished_run"] = root / "finished_run"
    shutil.copytree(run, checkpoints["finished_run"])
    checkpoints["ckpt_tensor_pickle"] = root / "tensor.ckpt"
    torch.save(torch.zeros(3), checkpoints["ckpt_tensor_pickle"])
    for name, overrides in (
        ("ckpt_vit", VIT),
        ("ckpt_hf", [*LLAMA, "callbacks.model_checkpoint.every_n_train_steps=2"]),
    ):
        other = root / f"{name}_run"
        filled = [item.format(**{k: str(v) for k, v in made.items()}) for item in overrides]
        result = subprocess.run(
            [sys.executable, "train.py", *filled, f"hydra.run.dir={other}"], cwd=ROOT, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"the {name} run failed: {result.stderr[-2000:]}")
        checkpoints[name] = other / "checkpoints" / "last.ckpt"
    checkpoints["ckpt_truncated"] = root / "truncated.ckpt"
    checkpoints["ckpt_truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    damaged("ckpt_int_moment", int_moment)
    damaged(
        "ckpt_weights_as_lists",
        lambda c: c.__setitem__("state_dict", {k: v.tolist() for k, v in c["state_dict"].items()}),
    )
    damaged("ckpt_no_optimizer_entries", lambda c: c.__setitem__("optimizer_states", []))
    damaged("ckpt_no_callbacks", lambda c: c.pop("callbacks"))
    damaged("ckpt_loops_no_fit", lambda c: c["loops"].pop("fit_loop"))
    checkpoints["ckpt_gzipped"] = root / "gzipped.ckpt"
    checkpoints["ckpt_gzipped"].write_bytes(gzip.compress(good.read_bytes()))
    checkpoints["ckpt_custom_class"] = root / "custom_class.ckpt"
    torch.save({**base, "extra": fractions.Fraction(1, 3)}, checkpoints["ckpt_custom_class"])
    damaged("ckpt_hparams_edited", lambda c: c["hyper_parameters"].__setitem__("n_layer", 6))

    def negative_lr(c):
        c["optimizer_states"][0]["param_groups"][0]["lr"] = -1.0

    damaged("ckpt_negative_lr", negative_lr)
    damaged("ckpt_scheduler_string", lambda c: c.__setitem__("lr_schedulers", ["not a scheduler state"]))
    damaged("ckpt_extra_top_key", lambda c: c.__setitem__("my_notes", {"who": "me"}))
    damaged("ckpt_global_step_float", lambda c: c.__setitem__("global_step", float(c["global_step"])))

    def optimizer_extra_param(c):
        state = c["optimizer_states"][0]["state"]
        state[max(state) + 100] = {key: value for key, value in state[0].items()}

    def batches_behind(c):
        progress = c["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        for counts in (progress["total"], progress["current"]):
            counts.update({key: 1 for key in counts})

    damaged("ckpt_optimizer_extra_param", optimizer_extra_param)
    damaged("ckpt_batches_behind", batches_behind)

    def betas_short(c):
        c["optimizer_states"][0]["param_groups"][0]["betas"] = (0.9,)

    damaged("ckpt_betas_short", betas_short)
    checkpoints["ckpt_dir_named"] = root / "folder.ckpt"
    checkpoints["ckpt_dir_named"].mkdir()
    checkpoints["resume_run"] = root / "resume_run"
    shutil.copytree(run, checkpoints["resume_run"])
    damaged(
        "ckpt_scheduled_ahead",
        lambda c: c["callbacks"]["RandomLTDScheduler"].__setitem__("scheduled_step", 1000),
    )
    return checkpoints


def outcome(case: list[str], files: dict[str, Path], work: Path) -> dict[str, object]:
    """Run one case through ``train.py``; classify how it ended."""
    run_dir = work / f"run_{abs(hash(tuple(case)))}"
    overrides = [item.format(**{k: str(v) for k, v in files.items()}) for item in case]
    base = [] if any(o.startswith(("experiment=", "model=")) for o in overrides) else TINY
    if "data=tokens" in overrides:
        base = [o for o in base if not o.startswith("data.max_bytes=")]  # token shards have no such key
    if not any(o.startswith("hydra.run.dir=") for o in overrides):
        overrides.append(f"hydra.run.dir={run_dir}")
    if any("ckpt" in item for item in case):
        base = [*base, "trainer.max_steps=8"]  # the checkpoints are at step 4
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "train.py", *base, *overrides], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        return {
            "case": " ".join(case),
            "verdict": "hang",
            "exit": None,
            "stderr_lines": 0,
            "last_line": "",
            "seconds": 300,
        }
    err = result.stderr.strip().splitlines()
    wrote = [p.name for p in run_dir.rglob("*") if p.suffix in (".ckpt", ".csv")] if run_dir.exists() else []
    if result.returncode == 0:
        verdict = "accepted"
    elif len(err) != 1 or not err[0].startswith("error: "):
        verdict = "traceback"
    elif result.returncode == 2 and wrote:
        verdict = "wrote files"
    else:
        verdict = "one line"
    return {
        "case": " ".join(case),
        "verdict": verdict,
        "exit": result.returncode,
        "stderr_lines": len(err),
        "last_line": err[-1][:300] if err else "",
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default="", help="run the cases whose text holds this")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    parser.add_argument("--held-out", type=int, default=0, help="1 to 11: the rows of rounds 3 to 13")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bad_input_catalogue_"))
    files = make_files(work)
    rounds = (CATALOGUE, HELD_OUT, HELD_OUT_2, HELD_OUT_3, HELD_OUT_4, HELD_OUT_5, HELD_OUT_6, HELD_OUT_7, HELD_OUT_8)
    rounds += (HELD_OUT_9, HELD_OUT_10, HELD_OUT_11)
    rows_of = rounds[args.held_out]
    cases = [(kind, case) for kind, case in rows_of if args.only in " ".join(case)]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda item: {"class": item[0], **outcome(item[1], files, work)}, cases))
    for row in rows:
        code = "-" if row["exit"] is None else row["exit"]  # a hang has no exit code
        print(f"{row['verdict']:<12} {code:>4}  {row['class']:<12} {row['case']}\n{'':23}{row['last_line']}")
    handled = sum(row["verdict"] == ("accepted" if row["class"] == "valid" else "one line") for row in rows)
    share = 100 * handled / max(len(rows), 1)
    print(f"\n{handled} of {len(rows)} handled as one line (a valid row: accepted) ({share:.1f} %)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return rows


if __name__ == "__main__":
    main()
