import csv
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch

from lightning_ltd.cli import ConfigError, build, run, train
from lightning_ltd.modules import GPTModule
from tests.conftest import compose_train

ROOT = Path(__file__).resolve().parents[1]


def test_model_config_instantiates_the_module(train_config):
    cfg = train_config()
    module = hydra.utils.instantiate(cfg.model)
    assert isinstance(module, GPTModule)
    logits = module(torch.randint(0, 256, (2, 32)))
    assert logits.shape == (2, 32, 256)
    assert module.hparams.ltd_layers is None or isinstance(module.hparams.ltd_layers, list)


@pytest.mark.parametrize("ltd", ["on", "off"])
def test_smoke_run_lowers_val_loss(train_config, tmp_path, ltd):
    summary = train(train_config(f"ltd={ltd}"))
    assert summary["steps"] == 30
    assert summary["val/loss"] < summary["val/loss_start"] - 0.5
    assert summary["val/ppl"] == pytest.approx(torch.tensor(summary["val/loss"]).exp().item(), rel=1e-4)
    full = 30 * 8 * 32 * 3
    assert summary["full_layer_tokens"] == full
    if ltd == "off":
        assert summary["layer_tokens"] == full and summary["schedule_saving"] == 0
    else:
        assert summary["layer_tokens"] < full and 0 < summary["schedule_saving"] < 1
    with open(next(tmp_path.rglob("metrics.csv"))) as metrics:
        rows = list(csv.DictReader(metrics))
    logged = {k for row in rows for k, v in row.items() if v}
    assert {"train/loss", "val/loss", "val/ppl", "train/keep", "train/layer_tokens"} <= logged
    assert {"lr-AdamW/pg1", "train/lr", "train/schedule_saving", "train/device/flops_per_sec"} <= logged
    for row in rows:  # LearningRateMonitor logs exactly the LR the schedule callback set
        if row.get("train/lr") and row.get("lr-AdamW/pg1"):
            assert float(row["lr-AdamW/pg1"]) == pytest.approx(float(row["train/lr"]), rel=1e-6)
    keeps = [float(r["train/keep"]) for r in rows if r.get("train/keep")]
    if ltd == "on":
        assert keeps[0] == 8 and keeps == sorted(keeps) and keeps[-1] == 32
    else:
        assert set(keeps) == {32.0}


@pytest.mark.parametrize(
    "override, message",
    [
        ("ltd.min_keep=-1", "ltd.min_keep=-1 must be a positive integer"),
        ("ltd.min_keep=40", "ltd.min_keep=40 exceeds the sequence length 32 of the model"),
        ("ltd.max_keep=64", "ltd.max_keep=64 exceeds the sequence length 32 of the model"),
        ("model.block_size=16", "data.block_size=32 exceeds model.block_size=16"),
        ("ltd.max_keep=6", "ltd.min_keep=8 must be <= max_keep=6"),
        ("model.ltd_layers=[1,3]", "model.ltd_layers=[1, 3]: dropping layer index 3 is out of range"),
        ("data.path=/no/such/file.txt", "data.path='/no/such/file.txt': no such file"),
        ("model.n_head=5", "model.n_embd=32 must be divisible by n_head=5"),
        ("lr.min_lr=0.01", "lr.min_lr=0.01 must be <= model.lr=0.003 (the decay would rise)"),
        ("seed=abc", "seed='abc' must be an integer"),
        ("model.betas=[0.9]", "model.betas=[0.9] must be two numbers in [0, 1)"),
        ("model.weight_decay=-1", "model.weight_decay=-1 must be a number >= 0"),
        ("trainer.val_check_interval=0", "trainer.val_check_interval=0 must be a positive integer, or a number in"),
        ("trainer.max_steps=ten", "trainer.max_steps='ten' must be a positive integer, or -1"),
        ("trainer.log_every_n_steps=-1", "trainer.log_every_n_steps=-1 must be a positive integer"),
        ("data.num_workers=-1", "data.num_workers=-1 must be an integer >= 0"),
        ("model.ltd_layers=[]", "model.ltd_layers: the model has no dropping layers"),
        ("model.n_layer=1", "model.ltd_layers: the model has no dropping layers"),
        ("model.compile_mode=fast", "model.compile_mode='fast' must be null or one of default, reduce-overhead"),
        ("experiment=gpt2_finetune_tiny", "model.pretrained must be set (experiment needs it)"),
        ("trainer=fsdp", "trainer.accelerator='gpu': no such device on this machine"),
        ("model.pretrained=/no/such/dir", "model.pretrained='/no/such/dir': no such directory"),
    ],
)
def test_bad_overrides_fail_at_start_naming_the_key(train_config, override, message):
    with pytest.raises(ConfigError) as err:
        build(train_config(override))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow  # a subprocess; tests/test_bad_inputs.py runs the same code path in-process
def test_cli_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "ltd.min_keep=0", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: ltd.min_keep=0 must be a positive integer"


def test_training_really_drops_and_validation_never_does(train_config):
    """After validate-before-fit the module must be back in train mode, dropping tokens."""
    cfg = train_config("trainer.max_steps=6", "trainer.val_check_interval=3")
    module, datamodule, trainer = build(cfg)
    layer = module.ltd_layers()[0]
    calls = []
    layer.register_forward_pre_hook(lambda m, args: calls.append((m.training, m.drops(args[0].shape[1]))))
    run(cfg, module, datamodule, trainer)
    training_calls = [drops for training, drops in calls if training]
    assert len(training_calls) == 6 and all(training_calls)
    assert not any(drops for training, drops in calls if not training)
    assert len(calls) > 6  # validation ran too


def test_user_text_and_rotary_positions(train_config, tmp_path):
    corpus = tmp_path / "my_corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("the quick brown fox jumps over the lazy dog. " * 300)
    summary = train(train_config(f"data.path={corpus}", "model.position=rotary", "trainer.max_steps=20"))
    assert summary["val/loss"] < summary["val/loss_start"] - 1.0


@pytest.mark.slow  # two runs: about 1 s
def test_compute_matched_runs_differ_by_one_override(tmp_path):
    budget = [
        "lr=layer_token_budget",
        "lr.total_layer_tokens=15360",
        "lr.warmup_layer_tokens=1000",
        "lr.warmup_steps=null",
    ]
    baseline = train(compose_train(tmp_path / "baseline", *budget, "ltd=off"))
    dropping = train(compose_train(tmp_path / "dropping", *budget, "ltd=on"))
    assert baseline["steps"] == 20  # 8 rows x 32 tokens x 3 layers = 768 layer-tokens a step
    assert baseline["layer_tokens"] == 15360
    assert dropping["steps"] > 20 and 15360 <= dropping["layer_tokens"] < 15360 + 768


def test_progress_bar_off_needs_no_second_override(train_config):
    """The default callbacks hold a progress bar; ``trainer.enable_progress_bar=false`` alone drops it."""
    bar = "+callbacks.bar._target_=lightning.pytorch.callbacks.TQDMProgressBar"  # the quick runs drop the default
    _, _, trainer = build(train_config(bar, "trainer.enable_progress_bar=false"))
    assert trainer.progress_bar_callback is None


def test_summary_reports_both_savings_and_logs_them(train_config, tmp_path):
    """Schedule saving: against the same batches at full length. Budget saving: against a baseline
    of ``baseline_tokens`` full-length tokens (here 1.5x this run's effective-token budget)."""
    budget = [
        "lr=layer_token_budget",
        "lr.total_layer_tokens=null",
        "lr.total_tokens=5120",
        "lr.warmup_layer_tokens=null",
    ]
    tokens = ["lr.warmup_steps=null", "lr.warmup_tokens=256", "callbacks.summary.baseline_tokens=7680"]
    summary = train(train_config(*budget, *tokens))
    assert summary["effective_tokens"] == summary["layer_tokens"] / 3
    assert 5120 <= summary["effective_tokens"] < 5120 + 8 * 32  # stopped at its budget (within one step)
    assert summary["budget_saving"] == pytest.approx(1 - summary["effective_tokens"] / 7680)
    assert 0 < summary["schedule_saving"] < summary["budget_saving"] < 0.34
    with open(next(tmp_path.rglob("metrics.csv"))) as metrics:
        rows = list(csv.DictReader(metrics))
    logged = {k: float(v) for row in rows for k, v in row.items() if v and k.startswith("summary/")}
    assert logged["summary/budget_saving"] == pytest.approx(summary["budget_saving"])
    assert logged["summary/schedule_saving"] == pytest.approx(summary["schedule_saving"])
    assert any(row.get("train/effective_tokens") for row in rows)


def test_missing_checkpoint_named(train_config):
    with pytest.raises(ConfigError, match=r"ckpt_path='/nope\.ckpt': no such checkpoint file"):
        build(train_config("ckpt_path=/nope.ckpt"))


def test_a_short_run_caps_the_warmup_with_one_warning(train_config):
    with pytest.warns(UserWarning, match=r"lr.warmup_steps=50 is longer than the run \(lr.total_steps=20\)"):
        _, _, trainer = build(train_config("trainer.max_steps=20", "lr.warmup_steps=50"))
    assert trainer.max_steps == 20


def test_several_bad_groups_are_reported_together(train_config):
    with pytest.raises(ConfigError) as err:
        build(train_config("data.path=/no/such/file.txt", "model.n_head=5", "ltd.min_keep=-1", "trainer.max_steps=0"))
    message = str(err.value)
    assert "\n" not in message
    for part in (
        "trainer.max_steps=0",
        "ltd.min_keep=-1",
        "data.path='/no/such/file.txt'",
        "model.n_embd=32 must be divisible by n_head=5",
    ):
        assert part in message


def test_a_failed_file_operation_mid_run_is_one_line_naming_the_file(train_config, capsys, monkeypatch):
    """A full disk at the checkpoint save: exit 5, one line with the file, no traceback."""
    import errno

    from lightning_ltd.checkpoint import AtomicCheckpointIO
    from lightning_ltd.cli import EXIT_OS_ERROR, run_command

    def full_disk(self, checkpoint, path, storage_options=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", full_disk)
    assert run_command(train_config("trainer.max_steps=4")) == EXIT_OS_ERROR
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and last.endswith("last.ckpt: No space left on device")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (  # 10 steps at the fewest kept tokens are 5,760 layer-tokens (not refused at start); the schedule's are 6,048
            [
                "lr=layer_token_budget",
                "lr.warmup_layer_tokens=null",
                "lr.warmup_steps=10",
                "lr.total_layer_tokens=5760",
            ],
            "error: lr.warmup_steps=10 is longer than lr.total_layer_tokens=5760: 6,048 against 5,760",
        ),
        (
            ["+callbacks.model_checkpoint.monitor=train/nope", "callbacks.model_checkpoint.save_top_k=1"],
            "error: trainer: `ModelCheckpoint(monitor='train/nope')` could not find the monitored key",
        ),
    ],
)
def test_a_setting_judged_only_once_the_run_started_is_one_line(train_config, capsys, overrides, message):
    """The LR schedule resolves against the run's shape at its first batch (what no shape could
    make sense of is refused at start: the table in ``test_bad_inputs.py``); Lightning looks a
    checkpoint monitor of a training metric up at the first save (validation metrics are checked
    at start, ``monitoring.py``): what they refuse is one line, exit 2."""
    from lightning_ltd.cli import EXIT_BAD_INPUT, run_command

    code = run_command(
        train_config("trainer.max_steps=4", "callbacks.model_checkpoint.every_n_train_steps=2", *overrides)
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and err[-1].startswith(message), err
    assert not any(line.startswith("Traceback") for line in err)


def test_a_cadence_longer_than_the_run_warns_in_one_line(train_config):
    """Validation every 10 batches in a 4-step run never validates during the fit; with 3 batches
    per step the run is 12 batches long and does."""
    import warnings

    from lightning_ltd.cli import build
    from lightning_ltd.errors import SettingWarning

    with pytest.warns(SettingWarning) as caught:
        build(train_config("trainer.max_steps=4", "trainer.val_check_interval=10", "trainer.log_every_n_steps=5"))
    assert sorted(str(w.message) for w in caught if str(w.message).startswith("trainer.")) == [
        "trainer.log_every_n_steps=5 is longer than the run (trainer.max_steps=4, 4 batches): no training metric "
        "is logged",
        "trainer.val_check_interval=10 is longer than the run (trainer.max_steps=4, 4 batches): no validation "
        "between the first step and the last",
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"trainer\.", category=SettingWarning)
        build(
            train_config("trainer.max_steps=4", "trainer.val_check_interval=10", "+trainer.accumulate_grad_batches=3")
        )


def test_an_allocation_beyond_the_machine_is_one_line_with_its_size():
    """torch's CPU allocator reports a C++ assertion; a MemoryError has no size to report."""
    from lightning_ltd.checks.groups import out_of_memory

    torch_message = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
        "allocate 160000000256 bytes. Error code 12 (Cannot allocate memory)"
    )
    assert (
        str(out_of_memory("model", torch_message))
        == "model: does not fit in memory (149.0 GiB at once): check its sizes"
    )
    assert (
        str(out_of_memory("data", MemoryError())) == "data: does not fit in memory (more than is free): check its sizes"
    )
    assert out_of_memory("model", RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None


@pytest.mark.parametrize(
    "overrides, endless",
    [
        (["trainer.max_steps=-1", "trainer.max_epochs=-1", "lr=constant"], True),
        (["lr=layer_token_budget", "lr.stop_at_budget=false", "lr.warmup_steps=null", "trainer.max_steps=-1"], True),
        (["trainer.max_steps=-1", "trainer.max_epochs=-1", "lr=constant", "+trainer.max_time={minutes: 5}"], False),
        (["lr=layer_token_budget", "lr.warmup_steps=null"], False),  # the budget ends it
        (["trainer.max_steps=-1", "trainer.max_epochs=2", "lr=constant"], False),
    ],
)
def test_a_run_nothing_ends_is_warned_of_at_start(tmp_path, overrides, endless):
    """Lightning's infinite training (both limits -1) is legal: one warning line, not an error."""
    import warnings

    from lightning_ltd.errors import SettingWarning

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        build(compose_train(tmp_path, *overrides))
    found = [
        str(w.message)
        for w in shown
        if issubclass(w.category, SettingWarning) and "until it is stopped" in str(w.message)
    ]
    assert len(found) == int(endless)
