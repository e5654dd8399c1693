"""Training 2N steps straight equals N steps, a stop, and N more from ``ckpt_path``."""

import csv
from pathlib import Path

import pytest
import torch

from lightning_ltd.cli import train
from tests.conftest import compose_train

N = 10
COMMON = [f"lr.total_steps={2 * N}", f"callbacks.model_checkpoint.every_n_train_steps={N}", "ltd.ramp_steps=16"]


def losses(run_dir: Path) -> dict[int, float]:
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(metrics) if r.get("train/loss")}


@pytest.mark.parametrize(
    "settings",
    [
        [],
        pytest.param(["model.dropout=0.1", "data.num_workers=2"], marks=pytest.mark.slow),  # workers: about 4 s
        pytest.param(["model.dropout=0.1", "model.activation_checkpointing=true"], marks=pytest.mark.slow),
        pytest.param(["model.dropout=0.1", "trainer.precision=bf16-true"], marks=pytest.mark.slow),
        pytest.param(["model.dropout=0.1", "trainer.precision=bf16-mixed"], marks=pytest.mark.slow),
        pytest.param(  # mid-curriculum
            ["model.dropout=0.1", "curriculum=seqlen", "curriculum.min_len=8", "curriculum.steps=16"],
            marks=pytest.mark.slow,
        ),
    ],
    ids=[
        "plain",
        "dropout0.1-workers2",
        "dropout0.1-activation-checkpointing",
        "bf16-true",
        "bf16-mixed",
        "curriculum",
    ],
)
def test_resume_gives_the_same_losses_and_weights(tmp_path, settings):
    """Dropout masks are reseeded from (seed, rank, step, micro-batch) and kept indices are a pure
    function of them, so the checkpoint needs no RNG state, whatever the number of workers."""
    straight, first, second = tmp_path / "straight", tmp_path / "first", tmp_path / "second"
    common = [*COMMON, *settings]
    train(compose_train(straight, *common, f"trainer.max_steps={2 * N}"))
    train(compose_train(first, *common, f"trainer.max_steps={N}"))
    checkpoint = first / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, weights_only=True)  # plain types only
    assert state["global_step"] == N
    train(compose_train(second, *common, f"trainer.max_steps={2 * N}", f"ckpt_path={checkpoint}"))

    expected, resumed = losses(straight), losses(second)
    assert sorted(resumed) == list(range(N, 2 * N))
    assert [resumed[s] for s in sorted(resumed)] == [expected[s] for s in sorted(resumed)]  # bit for bit
    final = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    again = torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)
    for name, value in final["state_dict"].items():
        assert torch.equal(value, again["state_dict"][name]), name
    assert final["callbacks"]["RandomLTDScheduler"] == again["callbacks"]["RandomLTDScheduler"]
    assert "random_ltd_samplers" not in again  # kept indices derive from the step: no sampler state


@pytest.fixture(scope="module")
def step10_checkpoint(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("step10")
    train(compose_train(run_dir, *COMMON, f"trainer.max_steps={N}"))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.slow  # about 1.8 s
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.n_embd=64"], "model.n_embd=64 differs from the checkpoint's 32"),
        (["model.ltd_layers=[1]"], "model.ltd_layers=[1] differs from the checkpoint's None"),
        (["trainer.max_steps=5"], "trainer.max_steps=5: the checkpoint is already at step 10, nothing to train"),
        (["data.path=OTHER"], "data.content: "),
    ],
)
def test_a_checkpoint_that_does_not_fit_the_run_is_refused(tmp_path, step10_checkpoint, overrides, message):
    from lightning_ltd.cli import ConfigError, build

    (tmp_path / "other.txt").write_text("some other text of mine\n" * 3000)
    overrides = [o.replace("OTHER", str(tmp_path / "other.txt")) for o in overrides]
    with pytest.raises(ConfigError) as err:
        build(compose_train(tmp_path, *COMMON, f"ckpt_path={step10_checkpoint}", *overrides))
    assert message in str(err.value) and str(step10_checkpoint) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["text", "truncated", "foreign"])
def test_a_file_that_is_not_a_checkpoint_names_its_path(tmp_path, step10_checkpoint, kind):
    from lightning_ltd.cli import ConfigError, build

    bad = tmp_path / "bad.ckpt"
    if kind == "text":
        bad.write_text("notes, not a checkpoint")
    elif kind == "truncated":
        bad.write_bytes(step10_checkpoint.read_bytes()[:5000])
    else:
        torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ConfigError) as err:
        build(compose_train(tmp_path, *COMMON, f"ckpt_path={bad}"))
    expected = "not a Lightning checkpoint" if kind == "foreign" else "not a readable checkpoint"
    assert f"ckpt_path={str(bad)!r}: {expected}" in str(err.value) and "\n" not in str(err.value)


NAME = "model.transformer.h.0.attn.c_attn.weight"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda w, o: w.update({NAME: torch.zeros_like(w[NAME], dtype=torch.int64)}), "is int64, not float32"),
        (lambda w, o: w.update({NAME: w[NAME].half()}), "is float16, not float32"),
        (lambda w, o: w.update({NAME: w[NAME].double()}), "is float64, not float32"),
        (lambda w, o: w[NAME].view(-1)[3].fill_(float("nan")), f"{NAME} holds a NaN or inf"),
        (lambda w, o: o["state"][0]["exp_avg_sq"].view(-1)[0].fill_(float("inf")), "exp_avg_sq holds a NaN or inf"),
    ],
    ids=["int64", "float16", "float64", "nan-weight", "inf-moment"],
)
def test_a_checkpoint_tensor_of_another_dtype_or_not_finite_is_refused_naming_it(
    tmp_path, step10_checkpoint, damage, message
):
    from lightning_ltd.cli import ConfigError, build

    checkpoint = torch.load(step10_checkpoint, weights_only=True)
    damage(checkpoint["state_dict"], checkpoint["optimizer_states"][0])
    bad = tmp_path / "damaged.ckpt"
    torch.save(checkpoint, bad)
    with pytest.raises(ConfigError) as err:
        build(compose_train(tmp_path, *COMMON, f"ckpt_path={bad}", f"trainer.max_steps={2 * N}"))
    assert message in str(err.value) and str(bad) in str(err.value) and "\n" not in str(err.value)
