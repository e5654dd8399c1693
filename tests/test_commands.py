"""Every command shares one error boundary (``console.boundary``): bad input is one ``error:``
line and exit 2, a write the machine refuses is one line naming the file and exit 5, and
nothing already written is lost."""

import importlib
import importlib.metadata
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.command_catalogue import SHORT as CATALOGUE_RUN
from lightning_ltd.console import exit_code

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = sorted(
    set(re.findall(r"python -m (lightning_ltd[\w.]*)", " ".join(p.read_text() for p in ROOT.glob("**/*.md"))))
)
INSTALLED = sorted(
    e.name for e in importlib.metadata.entry_points(group="console_scripts") if e.value.startswith("lightning_ltd")
)
SHORT = [  # the catalogue's short run, saving every second step
    *(o for o in CATALOGUE_RUN if not o.startswith(("trainer.max_steps", "trainer.val_check_interval"))),
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "callbacks.model_checkpoint.every_n_train_steps=2",
]

HYDRA_RECORDS = re.compile(r"run(/\.hydra(/.*)?|/\w+\.log)?$")
"""What Hydra writes into a run folder before the task starts: the only files a refused run leaves."""

BAD_INPUTS = {  # command -> bad arguments ({file}: a file where a folder is meant; {missing}: no such path);
    # the Hydra commands' further rows: tests/test_bad_inputs.py, tests/evaluate (in-process)
    "train.py": [["curriculum=seqlen", "curriculum.steps=0"]],
    "lightning-ltd-train": [["trainer.max_steps=0"]],
    "lightning-ltd-eval": [["tasks=[x]", "device=cuda:7"]],
    "lightning_ltd.evaluate": [["tasks=[x]", "batch_size=0"]],
    "lightning_ltd.data.prepare": [
        ["--input", "{missing}", "--output", "{new}"],
        ["--input", "{text}", "--output", "{file}"],
        ["--output", "{new}"],
        ["--input", "{text}", "--output", "{new}", "--tokenizer", "{missing}"],
    ],
    "lightning_ltd.data.rarity": [["{file}", "--width", "3"], ["{missing}"], ["{missing}", "--width", "3"]],
    "lightning_ltd.pretrained.tiny": [["gpt2", "{file}"], ["gpt3", "{new}"], ["llama", "{file}/inside"]],
    "lightning-ltd-plot": [["{missing}"], ["{file}"], ["{file}", "--labels", "a", "b"]],
    "lightning_ltd.checks.reference": [["{file}/inside"], ["{missing}/page.md"], ["a", "b"]],
}


def command_line(name: str) -> list[str]:
    if name == "train.py":
        return [sys.executable, str(ROOT / "train.py")]
    if name in INSTALLED:
        return [str(Path(sys.executable).with_name(name))]
    return [sys.executable, "-m", name]


def test_every_installed_and_documented_command_has_bad_inputs_here():
    assert INSTALLED and DOCUMENTED
    assert set(INSTALLED) | set(DOCUMENTED) | {"train.py"} == set(BAD_INPUTS)


@pytest.mark.parametrize(
    "module",
    [
        "lightning_ltd.data.prepare",
        "lightning_ltd.data.rarity",
        "lightning_ltd.pretrained.tiny",
        "lightning_ltd.checks.reference",
        "lightning_ltd.plots.cli",
    ],
)
def test_every_command_main_is_the_boundary(module):
    assert getattr(importlib.import_module(module).main, "is_boundary", False)


def test_the_boundary_maps_failures_by_class(capsys):
    assert exit_code(OSError(27, "File too large", "/x/last.ckpt")) == 5
    assert exit_code(PermissionError(13, "Permission denied", "/x")) == 5
    assert exit_code(FileNotFoundError(2, "No such file or directory", "/x")) == 2
    assert exit_code(KeyboardInterrupt()) == 130
    assert exit_code(ValueError("a bug")) is None  # unexpected: keeps its traceback
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: /x/last.ckpt: File too large",
        "error: /x: Permission denied",
        "error: /x: No such file or directory",
        "error: interrupted",
    ]


def run(command: list[str], cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=600, preexec_fn=limit_file_size if limit else None
    )


def errors(done: subprocess.CompletedProcess) -> list[str]:  # stderr's lines but warnings
    return [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("warning:")]


IN_PROCESS = (
    "lightning_ltd.data.prepare",
    "lightning_ltd.data.rarity",
    "lightning_ltd.pretrained.tiny",
    "lightning_ltd.checks.reference",
)
"""Commands whose ``main(argv)`` runs here as in its own process (argparse: no Hydra state)."""


@pytest.mark.parametrize(
    "case",
    [
        pytest.param((name, i), id=f"{name}-{i}", marks=[] if name in IN_PROCESS else [pytest.mark.slow])  # a process
        for name, cases in BAD_INPUTS.items()
        for i in range(len(cases))
    ],
)
def test_bad_input_to_every_command_is_one_line_and_exit_2_writing_nothing(case, tmp_path, capfd):
    name, index = case
    (tmp_path / "file").write_text("x")
    (tmp_path / "text.txt").write_text("some text to tokenize. " * 200)
    paths = {key: tmp_path / key for key in ("file", "missing", "new")} | {"text": tmp_path / "text.txt"}
    arguments = [part.format(**paths) for part in BAD_INPUTS[name][index]]
    if "train" in name:
        arguments.append(f"hydra.run.dir={tmp_path / 'run'}")
    before = sorted(tmp_path.rglob("*"))
    if name in IN_PROCESS:
        code, stderr = importlib.import_module(name).main(arguments), capfd.readouterr().err
    else:  # the installed script or python -m, in a process of its own
        done = run([*command_line(name), *arguments], tmp_path)
        code, stderr = done.returncode, done.stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert (code, len(lines)) == (2, 1), stderr[-2000:]
    assert lines[0].startswith("error: ")
    written = set(tmp_path.rglob("*")) - set(before)
    assert {p.relative_to(tmp_path) for p in written if not HYDRA_RECORDS.match(str(p.relative_to(tmp_path)))} == set()


def final_state(folder: Path) -> tuple[int, dict]:
    checkpoint = torch.load(next(folder.rglob("last.ckpt")), weights_only=True)
    return checkpoint["global_step"], checkpoint["state_dict"]


@pytest.mark.slow  # four runs of train.py
def test_a_real_file_size_limit_at_a_save_is_exit_5_the_last_checkpoint_intact_and_the_resume_exact(tmp_path):
    train = [sys.executable, str(ROOT / "train.py"), *SHORT]
    first, whole = tmp_path / "first", tmp_path / "whole"
    assert run([*train, "trainer.max_steps=2", f"hydra.run.dir={first}"], tmp_path).returncode == 0
    saved = next(first.rglob("last.ckpt"))
    kept = saved.read_bytes()
    resume = [*train, "trainer.max_steps=4", f"ckpt_path={saved}", f"hydra.run.dir={first}"]
    refused = run(resume, tmp_path, limit=len(kept) // 2)  # the next save cannot be written whole
    assert refused.returncode == 5, refused.stderr[-2000:]
    assert errors(refused) == [f"error: {saved}: File too large"]
    assert saved.read_bytes() == kept and not list(first.rglob("*.partial"))
    assert run(resume, tmp_path).returncode == 0
    assert run([*train, "trainer.max_steps=4", f"hydra.run.dir={whole}"], tmp_path).returncode == 0
    (step, resumed), (whole_step, straight) = final_state(first), final_state(whole)
    assert step == whole_step == 4
    assert all(torch.equal(resumed[key], straight[key]) for key in straight)


@pytest.mark.slow  # a corpus prepared and scored under a file-size limit
@pytest.mark.parametrize("writer", ["prepare", "rarity", "tiny"])
def test_the_other_writers_under_a_file_size_limit_are_exit_5_naming_the_path(writer, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("some text to tokenize. " * 4000)
    prepare = [sys.executable, "-m", "lightning_ltd.data.prepare", "--input", str(text), "--quiet", "--output"]
    if writer == "rarity":
        assert run([*prepare, str(tmp_path / "corpus")], tmp_path).returncode == 0
    command = {
        "prepare": [*prepare, str(tmp_path / "corpus")],
        "rarity": [
            sys.executable,
            "-m",
            "lightning_ltd.data.rarity",
            str(tmp_path / "corpus"),
            "--width",
            "2",
            "--quiet",
        ],
        "tiny": [sys.executable, "-m", "lightning_ltd.pretrained.tiny", "gpt2", str(tmp_path / "tiny")],
    }[writer]
    done = run(command, tmp_path, limit=20_000)
    assert done.returncode == 5, done.stderr[-2000:]
    assert len(errors(done)) == 1 and errors(done)[0].endswith("File too large"), done.stderr[-2000:]
    assert str(tmp_path) in errors(done)[0]


@pytest.mark.slow  # two prepare processes
def test_two_concurrent_prepare_runs_into_one_folder_the_second_is_refused_and_the_first_completes(tmp_path):
    import json
    import signal
    import time

    text = tmp_path / "text.txt"
    text.write_bytes(b"a corpus big enough to take a while to tokenize.\n" * 200_000)  # 10 MB
    out = tmp_path / "out"
    prepare = [sys.executable, "-m", "lightning_ltd.data.prepare", "--input", str(text), "--output", str(out)]
    first = subprocess.Popen([*prepare, "--quiet"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    lock = out / ".lightning-ltd.lock"
    deadline = time.monotonic() + 120
    while f'"pid": {first.pid}' not in (lock.read_text() if lock.exists() else ""):
        assert first.poll() is None and time.monotonic() < deadline, "the first prepare ended before it was seen"
        time.sleep(0.005)
    first.send_signal(signal.SIGSTOP)  # the first one holds the folder, mid-write
    try:
        second = run([*prepare, "--overwrite", "--quiet"], tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2 and len(errors(second)) == 1, second.stderr
    line = errors(second)[0]
    assert line.startswith(f"error: output='{out}': another process (pid {first.pid} on ")
    assert line.endswith("is writing into this folder; wait for it")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["bytes"] == text.stat().st_size and not lock.exists()
