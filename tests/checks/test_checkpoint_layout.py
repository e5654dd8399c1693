"""Resume checks read DeepSpeed and sharded-FSDP checkpoint folders (built here as those
strategies write them) as they read single files, and refuse a layout the strategy cannot load."""

import pytest
import torch

from lightning_ltd.checks.checkpoint_layout import read_checkpoint
from lightning_ltd.checks.resume import resume_problems, strategy_kind
from lightning_ltd.cli import ConfigError, build, train
from tests.conftest import compose_train

COMMON = ["lr.total_steps=8", "callbacks.model_checkpoint.every_n_train_steps=4", "ltd.ramp_steps=8"]
NOT_WEIGHTS = ("state_dict", "optimizer_states")


@pytest.fixture(scope="module")
def step4(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("step4")
    train(compose_train(run_dir, *COMMON, "trainer.max_steps=4"))
    return run_dir / "checkpoints" / "last.ckpt"


def deepspeed_folder(checkpoint_file, folder, zero3=False):
    """What ``DeepSpeedStrategy.save_checkpoint`` writes: Lightning's dict without weights and
    optimizer as DeepSpeed's client state, beside the engine's module (names under Lightning's
    ``_forward_module`` wrapper; ZeRO-3: empty placeholders plus ``param_shapes``)."""
    checkpoint = torch.load(checkpoint_file, weights_only=True)
    weights = {f"_forward_module.{k}": v for k, v in checkpoint["state_dict"].items()}
    module = {k: torch.empty(0) for k in weights} if zero3 else weights
    states = {
        "module": module,
        "param_shapes": [{k: v.shape for k, v in weights.items()}] if zero3 else None,
        "global_steps": checkpoint["global_step"],
        "ds_version": "0.16.0",
        **{k: v for k, v in checkpoint.items() if k not in NOT_WEIGHTS},
    }
    (folder / "checkpoint").mkdir(parents=True)
    torch.save(states, folder / "checkpoint" / "mp_rank_00_model_states.pt")
    torch.save({"optimizer_state_dict": {}}, folder / "checkpoint" / "zero_pp_rank_0_mp_rank_00_optim_states.pt")
    (folder / "latest").write_text("checkpoint")
    return folder


def sharded_folder(checkpoint_file, folder):
    """What ``FSDPStrategy(state_dict_type="sharded").save_checkpoint`` writes: a distributed
    checkpoint of model and optimizer, and ``meta.pt`` with the rest."""
    import warnings

    import torch.distributed.checkpoint as dcp

    checkpoint = torch.load(checkpoint_file, weights_only=True)
    tensors = {"model": checkpoint["state_dict"], "optimizer_0": {"step": torch.tensor(4.0)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "assuming the intent is to save in a single process"
        dcp.save(tensors, checkpoint_id=str(folder))
    torch.save({k: v for k, v in checkpoint.items() if k not in NOT_WEIGHTS}, folder / "meta.pt")
    return folder


LAYOUTS = {
    "deepspeed": lambda file, folder: deepspeed_folder(file, folder),
    "deepspeed-zero3": lambda file, folder: deepspeed_folder(file, folder, zero3=True),
    "sharded": sharded_folder,
}
STRATEGY_FOR = {"deepspeed": "deepspeed", "deepspeed-zero3": "deepspeed", "sharded": "fsdp"}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_folder_reads_as_the_file_it_was_written_from(tmp_path, step4, layout):
    folder = LAYOUTS[layout](step4, tmp_path / "ckpt")
    from_file, _ = read_checkpoint(str(step4))
    from_folder, reason = read_checkpoint(str(folder))
    assert reason is None and from_folder.layout == layout.split("-")[0]
    assert from_folder.global_step == from_file.global_step == 4
    assert from_folder.weight_shapes == from_file.weight_shapes  # names and shapes, wrapper prefixes gone
    assert from_folder.hyper_parameters == from_file.hyper_parameters
    assert from_folder.callbacks == from_file.callbacks


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_folder_gets_the_same_checks_as_a_file(tmp_path, step4, layout):
    folder = LAYOUTS[layout](step4, tmp_path / "ckpt")
    strategy = STRATEGY_FOR[layout]
    module, _, _ = build(compose_train(tmp_path / "fits", *COMMON))
    assert resume_problems(str(folder), module, None, 8, strategy) == []
    assert "nothing to train" in resume_problems(str(folder), module, None, 4, strategy)[0]
    other, _, _ = build(compose_train(tmp_path / "other", *COMMON, "model.n_embd=64"))
    assert (
        "model.n_embd=64 differs from the checkpoint's 32" in resume_problems(str(folder), other, None, 8, strategy)[0]
    )
    wrong = resume_problems(str(folder), module, None, 8, "other")
    assert wrong and f"resumes with trainer={strategy} only" in wrong[0]


def test_the_command_line_refuses_a_layout_its_strategy_cannot_load_in_one_line(tmp_path, step4):
    folder = deepspeed_folder(step4, tmp_path / "ds")
    with pytest.raises(ConfigError, match=r"a DeepSpeed checkpoint folder resumes with trainer=deepspeed only") as err:
        build(compose_train(tmp_path / "run", *COMMON, f"ckpt_path={folder}"))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"DeepSpeed resumes from its own checkpoint folders, not a single file"):
        build(
            compose_train(
                tmp_path / "run2", *COMMON, "trainer=deepspeed", "trainer.accelerator=cpu", f"ckpt_path={step4}"
            )
        )


def test_a_folder_that_is_no_checkpoint_and_a_broken_one_are_named(tmp_path, step4):
    (tmp_path / "empty").mkdir()
    assert "not a checkpoint" in read_checkpoint(str(tmp_path / "empty"))[1]
    folder = deepspeed_folder(step4, tmp_path / "ds")
    (folder / "latest").write_text("elsewhere")
    assert "without elsewhere/mp_rank_00_model_states.pt" in read_checkpoint(str(folder))[1]


@pytest.mark.parametrize(
    ("value", "kind"),
    [("ddp", "other"), ("deepspeed_stage_3", "deepspeed"), ("fsdp", "fsdp"), ({"_target_": "x.FSDPStrategy"}, "fsdp")],
)
def test_strategy_kind(value, kind):
    assert strategy_kind(value) == kind


def poisoned(checkpoint_file, tmp_path, where):
    """A copy of the checkpoint with a NaN in one weight or one optimizer moment."""
    checkpoint = torch.load(checkpoint_file, weights_only=True)
    if where == "weight":
        name = next(k for k, v in checkpoint["state_dict"].items() if v.is_floating_point())
        checkpoint["state_dict"][name].view(-1)[0] = float("nan")
    else:
        checkpoint["optimizer_states"][0]["state"][0]["exp_avg_sq"].view(-1)[0] = float("inf")
    target = tmp_path / f"{where}.ckpt"
    torch.save(checkpoint, target)
    return target


def test_a_folder_with_a_nan_weight_is_refused_naming_it(tmp_path, step4):
    module, _, _ = build(compose_train(tmp_path / "fits", *COMMON))
    bad = poisoned(step4, tmp_path, "weight")
    for layout, strategy in (("deepspeed", "deepspeed"), ("sharded", "fsdp")):
        folder = LAYOUTS[layout](bad, tmp_path / layout)
        problems = resume_problems(str(folder), module, None, 8, strategy)
        assert len(problems) == 1 and "holds a NaN or inf" in problems[0], problems
        assert "model." in problems[0]
    zero3 = LAYOUTS["deepspeed-zero3"](step4, tmp_path / "zero3")  # placeholders only: nothing to scan
    assert read_checkpoint(str(zero3))[0].non_finite is None


def test_a_nan_optimizer_moment_is_found_in_every_layout(tmp_path, step4):
    """The file's optimizer states, a sharded folder's ``optimizer_0`` and a ZeRO partition."""
    bad = poisoned(step4, tmp_path, "moment")
    assert read_checkpoint(str(bad))[0].non_finite == "optimizer_states[0].state[0].exp_avg_sq"
    moments = torch.load(bad, weights_only=True)["optimizer_states"][0]["state"][0]
    folder = LAYOUTS["deepspeed"](step4, tmp_path / "ds")
    partition = folder / "checkpoint" / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    torch.save({"optimizer_state_dict": {"base_optimizer_state": {"state": {0: moments}}}}, partition)
    found = read_checkpoint(str(folder))[0].non_finite
    assert found == f"checkpoint/{partition.name}: optimizer_state_dict.base_optimizer_state.state[0].exp_avg_sq"

    import torch.distributed.checkpoint as dcp

    sharded = tmp_path / "sharded"
    with pytest.warns(UserWarning):
        dcp.save({"model": {"w": torch.ones(2)}, "optimizer_0": {"state": {"w": moments}}}, checkpoint_id=str(sharded))
    torch.save({"global_step": 4, "pytorch-lightning_version": "2.6.6"}, sharded / "meta.pt")
    assert read_checkpoint(str(sharded))[0].non_finite == "optimizer_0.state.w.exp_avg_sq"


def test_a_sharded_scan_reads_in_bounded_batches(tmp_path, step4, monkeypatch):
    """With a budget below one tensor every tensor is its own batch, and a late NaN is still found."""
    import lightning_ltd.checks.checkpoint_layout as layout

    monkeypatch.setattr(layout, "SCAN_BYTES", 1)
    checkpoint = torch.load(step4, weights_only=True)
    untied = [k for k, v in checkpoint["state_dict"].items() if v.is_floating_point() and "wte" not in k]
    last = [k for k in untied if "lm_head" not in k][-1]  # the head shares the embedding's storage
    checkpoint["state_dict"][last].view(-1)[-1] = float("nan")
    torch.save(checkpoint, tmp_path / "late.ckpt")
    folder = sharded_folder(tmp_path / "late.ckpt", tmp_path / "sharded")
    assert read_checkpoint(str(folder))[0].non_finite == f"model.{last}"


def progress(made: int, done: int, **current: object) -> dict:
    """A batch tracker: ``made`` batches ready, started and processed, ``done`` completed."""
    total = {"ready": made, "started": made, "processed": made, "completed": done}
    return {"total": total, "current": {**total, **current}}


def loops(batches: dict) -> dict:
    step = {"total": {"ready": 4, "completed": 4}, "current": {"ready": 4, "completed": 4}}
    fit = {"epoch_loop.batch_progress": batches, "epoch_loop.automatic_optimization.optim_progress": {"step": step}}
    return {"global_step": 4, "loops": {"fit_loop": fit}}


@pytest.mark.parametrize(
    "batches, problem",
    [
        (progress(8, 7), None),  # saved mid-batch: made ready, not yet completed
        (progress(4, 4), None),  # one batch a step
        (progress(3, 3), "global_step=4 exceeds the 3 training batches its loops count"),
        (progress(8, 9), "batch_progress.total: completed=9 exceeds processed=8"),
        (progress(8, 7, ready=9, started=10), "batch_progress.current: started=10 exceeds ready=9"),
        (progress(8, 7, started=-1), "batch_progress.current.started=-1 is not a count"),
        (progress(8, 7, started=True), "batch_progress.current.started=True is not a count"),
    ],
)
def test_progress_counts_agree_with_each_other_and_the_step(batches, problem):
    from lightning_ltd.checks.checkpoint_counters import progress_problem

    found = progress_problem(loops(batches))
    assert found == problem if problem is None else problem in found


def test_validation_trackers_are_left_alone():
    """Lightning saves a validation tracker with ``current`` above ``total`` (a checkpoint saved
    at the step that validates): not a damaged checkpoint."""
    from lightning_ltd.checks.checkpoint_counters import progress_problem

    checkpoint = loops(progress(4, 4))
    checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"] = {
        **progress(0, 0),
        "current": progress(2, 2)["current"],
    }
    assert progress_problem(checkpoint) is None
