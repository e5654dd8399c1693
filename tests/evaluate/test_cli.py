"""``lightning-ltd-eval`` on a checkpoint trained with dropping, its export, and bad inputs."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("lm_eval")
transformers = pytest.importorskip("transformers")

from hydra import compose, initialize_config_dir  # noqa: E402

from lightning_ltd.cli import train  # noqa: E402
from lightning_ltd.evaluate.cli import evaluate, run_command  # noqa: E402
from lightning_ltd.modules import GPTModule  # noqa: E402

from ..conftest import CONF_DIR, compose_train, make_tokenizer  # noqa: E402
from .conftest import CLOZE  # noqa: E402

pytestmark = pytest.mark.slow  # each test trains or evaluates a checkpoint (about 30-45 s in all)
TASKS = "tasks=[tiny_mc,tiny_cloze]"


def compose_eval(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eval", overrides=["bootstrap_iters=0", *overrides])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny GPT trained 12 steps with random-LTD and dropout 0.1: its last.ckpt."""
    run = tmp_path_factory.mktemp("run")
    train(compose_train(run, "trainer.max_steps=12", "model.dropout=0.1", "ltd.min_keep=8"))
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    module = GPTModule.load_from_checkpoint(trained, map_location="cpu")
    return module.save_pretrained(tmp_path_factory.mktemp("export") / "gpt2")


def cloze_metrics(results: dict) -> tuple[float, float]:
    rows = {(r["task"], r["metric"]): r["value"] for r in results["rows"]}
    return rows[("tiny_cloze", "perplexity")], rows[("tiny_cloze", "acc")]


def test_checkpoint_is_evaluated_without_dropping_and_equals_transformers_on_its_export(trained, exported, local_tasks):
    """The harness's cloze numbers from the checkpoint (trained with dropping) equal a plain
    computation with transformers' GPT2LMHeadModel on the exported folder (no wrapper at all)."""
    results = evaluate(compose_eval(f"ckpt_path={trained}", TASKS, f"include_path={local_tasks}"))
    reference = transformers.GPT2LMHeadModel.from_pretrained(exported).eval()
    logprobs, greedy = [], []
    for doc in CLOZE:
        words = doc["text"].split(" ")
        context, continuation = " ".join(words[:-1]).encode(), (" " + words[-1]).encode()
        ids = torch.tensor([list(context + continuation)[-33:]])  # the harness cuts to 32 inputs from the left
        with torch.no_grad():
            log_probs = F.log_softmax(reference(ids[:, :-1]).logits, dim=-1)[0, -len(continuation) :]
        target = ids[0, -len(continuation) :]
        logprobs.append(float(log_probs.gather(1, target[:, None]).sum()))
        greedy.append(bool((log_probs.argmax(-1) == target).all()))
    perplexity, acc = cloze_metrics(results)
    assert perplexity == pytest.approx(math.exp(-sum(logprobs) / len(logprobs)), rel=1e-4)
    assert acc == pytest.approx(sum(greedy) / len(greedy))


def test_the_gpt_module_the_hf_module_and_the_exported_folder_agree(trained, exported, local_tasks):
    from_checkpoint = evaluate(compose_eval(f"ckpt_path={trained}", TASKS, f"include_path={local_tasks}"))
    from_folder = evaluate(
        compose_eval(f"model.pretrained={exported}", "tokenizer=bytes", TASKS, f"include_path={local_tasks}")
    )
    for a, b in zip(from_checkpoint["rows"], from_folder["rows"], strict=True):
        assert (a["task"], a["metric"]) == (b["task"], b["metric"])
        assert a["value"] == pytest.approx(b["value"], rel=1e-4)


def test_results_are_written_beside_the_checkpoint_and_never_replaced(trained, local_tasks):
    folder = trained.with_name("last.lm_eval")
    before = set(folder.glob("*")) if folder.exists() else set()
    for _ in range(2):
        assert run_command(compose_eval(f"ckpt_path={trained}", "tasks=tiny_cloze", f"include_path={local_tasks}")) == 0
    new = set(folder.glob("*")) - before
    assert sorted(p.name.split("-")[0] for p in new) == ["results", "results", "summary", "summary"]
    summary = next(p for p in new if p.suffix == ".md").read_text()
    assert "| tiny_cloze | perplexity |" in summary and str(trained.resolve()) in summary


def test_the_checkpoint_records_its_tokenizer(trained, tmp_path):
    checkpoint = torch.load(trained, map_location="cpu", weights_only=True)
    assert checkpoint["tokenizer"] == "bytes"
    folder = make_tokenizer(tmp_path / "tok")
    run = tmp_path / "run"
    train(compose_train(run, "trainer.max_steps=2", f"data.tokenizer={folder}", "model.vocab_size=300"))
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["tokenizer"] == str(folder.resolve())


def one_line_error(capsys, *overrides: str) -> str:
    assert run_command(compose_eval(*overrides)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_bad_inputs_are_one_line_errors(trained, exported, local_tasks, tmp_path, capsys):
    local = f"include_path={local_tasks}"
    ckpt = f"ckpt_path={trained}"
    assert "did you mean tiny_mc" in one_line_error(capsys, ckpt, "tasks=[tiny_mcq]", local)
    assert "include_path='/no/such/tasks'" in one_line_error(capsys, ckpt, "tasks=[x]", "include_path=/no/such/tasks")
    assert "ckpt_path='/no/such.ckpt'" in one_line_error(capsys, "ckpt_path=/no/such.ckpt", TASKS, local)
    assert "tasks:" in one_line_error(capsys, ckpt, local)
    assert "batch_size=0" in one_line_error(capsys, ckpt, TASKS, local, "batch_size=0")
    assert "limit=1.5" in one_line_error(capsys, ckpt, TASKS, local, "limit=1.5")
    assert "exactly one" in one_line_error(capsys, ckpt, f"model.pretrained={exported}", TASKS, local)
    assert "no tokenizer" in one_line_error(capsys, f"model.pretrained={exported}", TASKS, local)
    assert "model.pretrained='/no/dir'" in one_line_error(capsys, "model.pretrained=/no/dir", TASKS, local)
    big = make_tokenizer(tmp_path / "big", vocab_size=400)
    assert "more than the model's 256" in one_line_error(capsys, ckpt, f"tokenizer={big}", TASKS, local)
    assert "device='cuda:7': this machine has" in one_line_error(capsys, ckpt, TASKS, local, "device=cuda:7")
    assert "eot_token_id=-1" in one_line_error(capsys, ckpt, TASKS, local, "eot_token_id=-1")
    bare = make_tokenizer(tmp_path / "bare", vocab_size=256)  # no end-of-text token, and our GPT's config has none
    assert "no end-of-text token" in one_line_error(capsys, ckpt, f"tokenizer={bare}", TASKS, local)
    assert run_command(compose_eval(ckpt, f"tokenizer={bare}", "eot_token_id=0", TASKS, local)) == 0
    capsys.readouterr()  # that run's own output
    (tmp_path / "a_file").write_text("x")
    assert "is a file, not a folder" in one_line_error(capsys, ckpt, TASKS, local, f"output_dir={tmp_path / 'a_file'}")
    poisoned = torch.load(trained, map_location="cpu", weights_only=True)
    name = next(k for k in poisoned["state_dict"] if poisoned["state_dict"][k].is_floating_point())
    poisoned["state_dict"][name] = torch.full_like(poisoned["state_dict"][name], float("nan"))
    torch.save(poisoned, tmp_path / "nan.ckpt")
    nan = one_line_error(capsys, f"ckpt_path={tmp_path / 'nan.ckpt'}", TASKS, local)
    assert f"{name} holds a NaN or inf (train.py refuses it too)" in nan
    nofield = (local_tasks / "tiny_mc.yaml").read_text().replace("task: tiny_mc", "task: tiny_nofield")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny_nofield.yaml").write_text(nofield.replace("{{question}}", "{{prompt}}"))
    assert run_command(compose_eval(ckpt, "tasks=[tiny_nofield]", f"include_path={tmp_path / 'tasks'}")) == 2
    lacking = capsys.readouterr().err.strip().splitlines()[-1]  # after datasets' own progress bar (main hides it)
    assert "a task's template does not fit its documents ('prompt' is undefined)" in lacking


def test_a_checkpoint_without_a_recorded_tokenizer_is_one_line(trained, local_tasks, tmp_path, capsys):
    """An older checkpoint of prepared shards: nothing says how its text was encoded."""
    checkpoint = torch.load(trained, map_location="cpu", weights_only=True)
    del checkpoint["tokenizer"]
    checkpoint["run_fingerprint"]["data._target_"] = "lightning_ltd.data.TokensDataModule"
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    err = one_line_error(capsys, f"ckpt_path={old}", TASKS, f"include_path={local_tasks}")
    assert "no tokenizer recorded" in err and "tokenizer=bytes" in err
    assert run_command(compose_eval(f"ckpt_path={old}", "tokenizer=bytes", TASKS, f"include_path={local_tasks}")) == 0


def test_an_older_text_checkpoint_falls_back_on_bytes(trained, local_tasks, tmp_path):
    checkpoint = torch.load(trained, map_location="cpu", weights_only=True)
    del checkpoint["tokenizer"]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    a = evaluate(compose_eval(f"ckpt_path={old}", "tasks=tiny_cloze", f"include_path={local_tasks}"))
    b = evaluate(compose_eval(f"ckpt_path={trained}", "tasks=tiny_cloze", f"include_path={local_tasks}"))
    assert a["rows"] == b["rows"]


def test_a_masked_lm_checkpoint_is_scored_by_pseudo_log_likelihood(local_tasks, tmp_path):
    run = tmp_path / "bert"
    train(
        compose_train(
            run, "experiment=bert_mlm", "trainer.max_steps=4", "model.n_layer=3", "model.n_embd=32", "model.n_head=2"
        )
    )
    ckpt = run / "checkpoints" / "last.ckpt"
    results = evaluate(compose_eval(f"ckpt_path={ckpt}", TASKS, f"include_path={local_tasks}", "limit=2"))
    values = {(r["task"], r["metric"]): r["value"] for r in results["rows"]}
    assert 0 <= values[("tiny_mc", "acc")] <= 1 and values[("tiny_cloze", "perplexity")] > 1


@pytest.mark.slow  # a fresh interpreter imports torch, lightning and the harness (about 15 s)
def test_module_command_runs_offline_and_bad_overrides_are_one_line(trained, local_tasks, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "lightning_ltd.evaluate", f"ckpt_path={trained}", "tasks=[tiny_cloze]"]
    done = subprocess.run(
        [*command, f"include_path={local_tasks}", f"output_dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        env={**env, "HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| tiny_cloze | perplexity |" in done.stdout
    assert list((tmp_path / "out").glob("results-*.json"))
    written = {p.name for p in tmp_path.iterdir()}
    assert not written & {"outputs", ".hydra"} and not list(tmp_path.glob("*.log"))  # Hydra wrote nothing here
    bad = subprocess.run([*command, "no_such_key=1"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no_such_key" in bad.stderr
