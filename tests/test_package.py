"""The package as users get it: configs inside it (``pkg://lightning_ltd.conf``), the Compose API,
a config folder of one's own, every model config on its own, and a wheel installed into a fresh
virtual environment running the console command."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir, initialize_config_module
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import OmegaConf

import lightning_ltd
from lightning_ltd.cli import build, train
from lightning_ltd.pretrained.tiny import tiny_hf_bert, tiny_llama
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
SHORT = [*TINY, "trainer.max_steps=3", "trainer.val_check_interval=3", "lr.warmup_steps=1"]


def write_user_folder(folder: Path) -> Path:
    """A config folder of one's own: a model variant and a primary config over the packaged ones."""
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "my_gpt.yaml").write_text("defaults:\n  - gpt_small\n  - _self_\nn_embd: 48\n")
    (folder / "my_train.yaml").write_text(
        "defaults:\n  - train\n  - override model: my_gpt\n  - _self_\n"
        "hydra:\n  searchpath:\n    - pkg://lightning_ltd.conf\n"
    )
    return folder


def test_compose_api_config_trains_and_writes_under_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with initialize_config_module("lightning_ltd.conf", version_base="1.3"):
        cfg = compose("train", overrides=SHORT)
    summary = train(cfg)
    assert summary["steps"] == 3
    assert list((tmp_path / "outputs").rglob("metrics.csv"))  # no Hydra run folder: outputs/<date>/<time>


def test_a_config_folder_of_ones_own_extends_the_packaged_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_user_folder(tmp_path / "my_conf")
    with initialize_config_dir(config_dir=str(folder), version_base="1.3"):
        cfg = compose("my_train", overrides=[o for o in SHORT if not o.startswith("model.n_embd")])
    assert cfg.model.n_embd == 48 and cfg.model._target_ == "lightning_ltd.modules.GPTModule"
    assert train(cfg)["steps"] == 3


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")))
def test_every_model_config_instantiates_alone(name, tmp_path):
    cfg = OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml")
    small = {"n_layer": 3, "ltd_layers": [1]} if name in ("bert_large", "vit_b16") else {}  # fewer layers
    if name.startswith("hf_"):  # any Hugging Face folder: the tiny ones, written here
        small = {"pretrained": str((tiny_llama if name == "hf_causal_lm" else tiny_hf_bert)(tmp_path / name))}
    if name == "litgpt":  # its own environment runs it (tests/modules/test_litgpt.py)
        pytest.importorskip("litgpt")
        small = {"config": "pythia-14m"}
    module = hydra.utils.instantiate(cfg, **small)
    assert module.num_layers == small.get("n_layer", cfg.get("n_layer", 4))


def test_null_callbacks_are_skipped(train_config):
    _, _, trainer = build(train_config("callbacks.lr_monitor=null"))
    assert not any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)


def test_the_public_names_are_exported_at_the_top():
    for name in ("apply_random_ltd", "GPTModule", "RandomLTDScheduler", "LayerTokenLR", "GPT", "StepOutput"):
        assert name in lightning_ltd.__all__ and hasattr(lightning_ltd, name)
    assert (Path(lightning_ltd.__file__).parent / "py.typed").exists()


def run_checked(command: list, cwd: Path | None = None) -> str:
    """Run ``command``; on failure, fail with the child's own stderr (not a bare CalledProcessError)."""
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def venv_seeing_this_environment(env_dir: Path) -> None:
    """A new virtual environment that sees this interpreter's packages (the dependencies), after its
    own: ``venv.create(system_site_packages=True)`` would see the *base* interpreter's, which, when
    the suite itself runs in a virtual environment, lacks them."""
    venv.create(env_dir, with_pip=False)
    (child_site,) = (env_dir / "lib").glob("python*/site-packages")
    (child_site / "parent_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")


@pytest.mark.slow
def test_wheel_in_a_fresh_virtual_environment(tmp_path):
    """Build the wheel from a copy of the sources, install it (no dependencies: they come from this
    environment's site-packages), and run the console command and ``pkg://`` composition from elsewhere."""
    source = tmp_path / "source"
    source.mkdir()
    for item in ("pyproject.toml", "README.md", "lightning_ltd", "conf"):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, source / item)
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels]
    run_checked([*pip_wheel, source])
    env_dir = tmp_path / "env"
    venv_seeing_this_environment(env_dir)
    python, command = env_dir / "bin" / "python", env_dir / "bin" / "lightning-ltd-train"
    wheel = next(wheels.glob("lightning_ltd-*.whl"))
    run_checked([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel])
    work = tmp_path / "elsewhere"
    work.mkdir()

    where = run_checked([python, "-c", "import lightning_ltd; print(lightning_ltd.__file__)"], cwd=work).strip()
    assert where.startswith(str(env_dir)), where  # the wheel, not the checkout

    folder = write_user_folder(work / "my_conf")
    overrides = [o for o in SHORT if not o.startswith("model.n_embd")]
    run = subprocess.run(
        [command, "--config-dir", folder, "model=my_gpt", *overrides, f"hydra.run.dir={work / 'run'}"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "optimizer steps       3" in run.stdout + run.stderr
    assert list((work / "run").rglob("metrics.csv")) and list((work / "run").rglob("last.ckpt"))
    bad = subprocess.run(
        [command, "ltd.min_keep=0", f"hydra.run.dir={work / 'bad'}"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "error: ltd.min_keep=0 must be a positive integer"

    script = (
        "from hydra import compose, initialize_config_module\n"
        "from lightning_ltd import train\n"
        "with initialize_config_module('lightning_ltd.conf', version_base='1.3'):\n"
        f"    cfg = compose('train', overrides={SHORT!r})\n"
        "print(train(cfg)['steps'])\n"
    )
    composed = subprocess.run([python, "-c", script], cwd=work, capture_output=True, text=True, timeout=300)
    assert composed.returncode == 0 and composed.stdout.strip().splitlines()[-1] == "3", composed.stderr[-2000:]


def test_every_public_name_and_method_has_a_docstring():
    """Methods that override a documented Lightning or PyTorch hook inherit its docstring."""
    import inspect

    missing = []
    for name in lightning_ltd.__all__:
        obj = getattr(lightning_ltd, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            public = not attr.startswith("_") and (callable(member) or isinstance(member, (property, classmethod)))
            if public and not inspect.getdoc(getattr(obj, attr)) and not getattr(member, "__doc__", None):
                missing.append(f"{name}.{attr}")
    assert not missing
