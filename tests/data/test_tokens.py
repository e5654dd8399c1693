"""``data=tokens``: blocks read from prepared shards, exact resume, MLM masks, bad input."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_ltd.cli import ConfigError, build, train
from lightning_ltd.data.prepare import prepare
from lightning_ltd.data.text import default_corpus
from lightning_ltd.data.tokens import ShardBlocks, TokensDataModule
from lightning_ltd.errors import DataError
from tests.conftest import TINY, compose_train

TINY_TOKENS = [o for o in TINY if not o.startswith("data.max_bytes")]  # shards have no byte cap


def prepared(tmp_path: Path, size: int = 120_000, **kwargs) -> Path:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(default_corpus(size))
    out = tmp_path / "shards"
    prepare([str(corpus)], str(out), val_fraction=0.05, progress=False, **kwargs)
    return out


def test_blocks_are_consecutive_slices_of_each_shard(tmp_path):
    out = prepared(tmp_path, shard_tokens=20_480)
    meta = json.loads((out / "meta.json").read_text())
    blocks = ShardBlocks(out, meta["train"], meta["dtype"], 33)
    expected = [
        chunk
        for shard in meta["train"]
        for data in [np.fromfile(out / shard["file"], dtype=np.uint8).astype(np.int64)]
        for chunk in data[: len(data) // 33 * 33].reshape(-1, 33)
    ]
    assert len(blocks) == len(expected) and len(meta["train"]) > 2
    for index in (0, 1, 620, len(blocks) - 1):
        assert blocks[index].tolist() == expected[index].tolist()


def losses(run_dir: Path) -> dict[int, float]:
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(metrics) if r.get("train/loss")}


@pytest.mark.slow  # killed and resumed runs: 1-3 s each
@pytest.mark.parametrize(
    "settings",
    [
        ["data.num_workers=0"],
        ["data.num_workers=2", "model.dropout=0.1"],
        ["experiment=bert_mlm", "data.num_workers=2"],
    ],
    ids=["gpt", "gpt-workers2-dropout", "bert-mlm-workers2"],
)
def test_kill_at_a_mid_epoch_checkpoint_and_resume_gives_the_same_losses(tmp_path, settings):
    shards = prepared(tmp_path)
    common = [
        *TINY_TOKENS,
        "data=tokens",
        f"data.path={shards}",
        "lr.total_steps=20",
        "callbacks.model_checkpoint.every_n_train_steps=10",
        *settings,
    ]
    straight, first, second = tmp_path / "straight", tmp_path / "first", tmp_path / "second"
    train(compose_train(straight, *common, "trainer.max_steps=20", tiny=False))
    train(compose_train(first, *common, "trainer.max_steps=10", tiny=False))
    checkpoint = first / "checkpoints" / "last.ckpt"
    loader_state = torch.load(checkpoint, weights_only=True)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert loader_state[0]["batches_served"] == 10 and loader_state[0]["epoch"] == 0  # mid-epoch
    train(compose_train(second, *common, "trainer.max_steps=20", f"ckpt_path={checkpoint}", tiny=False))
    expected, resumed = losses(straight), losses(second)
    assert sorted(resumed) == list(range(10, 20))
    assert [resumed[s] for s in sorted(resumed)] == [expected[s] for s in sorted(resumed)]  # bit for bit


def mlm_module(tmp_path: Path, workers: int = 0) -> TokensDataModule:
    data = TokensDataModule(str(prepared(tmp_path)), block_size=32, batch_size=4, num_workers=workers, seed=3)
    data.use_objective("mlm")
    data.setup("fit")
    return data


def test_mlm_masks_are_a_pure_function_of_seed_epoch_and_index(tmp_path):
    data = mlm_module(tmp_path)
    rows = data.train_set
    assert torch.equal(rows[(0, 5)][1], rows[(0, 5)][1])
    epochs = [rows[(epoch, 5)] for epoch in range(4)]
    assert len({tuple(inputs.tolist()) for inputs, _ in epochs}) == 4  # a new masking every epoch
    inputs, _ = epochs[0]
    assert inputs[0] == 257 and inputs[-1] == 258  # [CLS] ... [SEP] (byte vocabulary)
    batch = next(iter(data.train_dataloader()))
    assert batch["input_ids"].shape[1] == 32 and bool(batch["attention_mask"].all())  # blocks: one width
    targets = torch.stack([rows[(0, i)][1] != -100 for i in range(400)]).float().mean()
    assert 0.12 < targets < 0.18  # 15 % of the tokens are targets


def test_mlm_masks_differ_across_workers_and_epochs(tmp_path):
    """The old collator gave every worker the same generator: batch pairs had identical masks."""
    data = mlm_module(tmp_path, workers=2)
    loader = data.train_dataloader()
    first_epoch = [batch["labels"] != -100 for _, batch in zip(range(6), loader, strict=False)]
    patterns = {tuple(mask.flatten().tolist()) for mask in first_epoch}
    assert len(patterns) == 6  # consecutive batches come from the two workers: all differ
    loader.sampler.set_epoch(1)
    second_epoch = [batch["labels"] != -100 for _, batch in zip(range(6), loader, strict=False)]
    assert all(not torch.equal(a, b) for a, b in zip(first_epoch, second_epoch, strict=True))


def test_model_vocabulary_is_checked_against_the_prepared_one(tmp_path, train_config):
    from tests.conftest import make_tokenizer

    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(default_corpus(60_000))
    prepare([str(corpus)], str(tmp_path / "bpe"), str(make_tokenizer(tmp_path / "tok")), progress=False)
    tokens = [*TINY_TOKENS, "data=tokens", f"data.path={tmp_path / 'bpe'}"]
    module, _, _ = build(train_config(*tokens, tiny=False))  # model.vocab_size=null: the data's, padded to 64
    assert module.hparams.vocab_size == 320 and module.model.config.vocab_size == 320
    with pytest.raises(
        ConfigError,
        match=r"data.path=.*the data's tokenizer has 300 tokens, more than model.vocab_size=256 "
        r"\(set model.vocab_size=320\)",
    ):
        build(train_config(*tokens, "model.vocab_size=256", tiny=False))  # set by hand: as set


@pytest.mark.parametrize(
    "case, message",
    [
        ("unset", "data.path must be set"),
        ("missing", "no such directory"),
        ("not_prepared", "not a prepared folder"),
        ("broken_meta", "meta.json is not valid JSON"),
        ("truncated_shard", "is missing or not"),
        ("too_short", "fewer than one block"),
    ],
)
def test_bad_shard_folders_fail_at_start_naming_the_path(tmp_path, train_config, case, message):
    if case == "too_short":
        corpus = tmp_path / "tiny.txt"
        corpus.write_bytes(b"just a few words\n")
        prepare([str(corpus)], str(tmp_path / "shards"), progress=False)
        path = tmp_path / "shards"
    else:
        path = prepared(tmp_path) if case in ("broken_meta", "truncated_shard") else tmp_path / "plain"
    if case == "not_prepared":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    elif case == "broken_meta":
        (path / "meta.json").write_text("{oops")
    elif case == "truncated_shard":
        shard = path / "train-00000.bin"
        shard.write_bytes(shard.read_bytes()[:100])
    overrides = [*TINY_TOKENS, "data=tokens"] + ([] if case == "unset" else [f"data.path={path}"])
    with pytest.raises((ConfigError, DataError)) as err:
        build(train_config(*overrides, tiny=False))
    assert message in str(err.value) and "\n" not in str(err.value)
    if case != "unset":
        assert str(path) in str(err.value)


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_mid_epoch_checkpoint(tmp_path):
    """``python train.py`` dies hard at step 13 (after the step-10 checkpoint), then resumes."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    shards = prepared(tmp_path)
    common = [
        *TINY_TOKENS,
        "data=tokens",
        f"data.path={shards}",
        "data.num_workers=2",
        "model.dropout=0.1",
        "lr.total_steps=20",
        "trainer.max_steps=20",
        "callbacks.model_checkpoint.every_n_train_steps=10",
    ]

    def run(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "train.py", *common, f"hydra.run.dir={run_dir}", *extra]
        return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)

    assert run(tmp_path / "straight").returncode == 0
    crash = ["+callbacks.crash._target_=tests.helpers.crash.CrashAt", "+callbacks.crash.step=13"]
    killed = run(tmp_path / "killed", *crash)
    assert killed.returncode == 9
    checkpoint = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 10
    assert run(tmp_path / "resumed", f"ckpt_path={checkpoint}").returncode == 0
    expected, resumed = losses(tmp_path / "straight"), losses(tmp_path / "resumed")
    assert sorted(resumed) == list(range(10, 20))
    assert [resumed[s] for s in sorted(resumed)] == [expected[s] for s in sorted(resumed)]


def test_meta_naming_a_shard_outside_its_folder_is_refused(tmp_path):
    shards = prepared(tmp_path)
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 64)
    meta = json.loads((shards / "meta.json").read_text())
    meta["train"][0]["file"] = "../secret.bin"
    (shards / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"names shard '\.\./secret\.bin', outside the folder"):
        TokensDataModule(str(shards))


@pytest.mark.slow  # a subprocess with 2 workers: about 8 s
def test_many_shards_read_under_a_low_open_file_limit_with_workers(tmp_path):
    """200 shards, 2 workers, a shuffled epoch, at most 64 descriptors for the whole process
    tree: the pool closes the least recently used shard instead of keeping all 200 open."""
    import subprocess
    import sys
    import textwrap

    import numpy as np

    for number in range(200):
        np.arange(number * 40, number * 40 + 40, dtype=np.uint16).tofile(tmp_path / f"shard{number:03d}.bin")
    script = textwrap.dedent(f"""
        import resource, torch
        from pathlib import Path
        from torch.utils.data import DataLoader
        from lightning_ltd.data.loading import ResumableSampler
        from lightning_ltd.data.tokens import ShardBlocks
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        shards = [{{"file": f"shard{{n:03d}}.bin", "tokens": 40}} for n in range(200)]
        blocks = ShardBlocks(Path({str(tmp_path)!r}), shards, "uint16", 10)
        loader = DataLoader(blocks, batch_size=20, sampler=ResumableSampler(len(blocks), seed=1), num_workers=2)
        seen = torch.cat([b.reshape(-1) for b in loader])
        assert sorted(seen.tolist()) == list(range(8000)), "every token once"
        print("ok", len(blocks))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ok", "800"]


def test_the_pool_of_open_files_stays_bounded_and_reuses_the_recent(tmp_path):
    from lightning_ltd.data.tokens import OpenFiles

    files = []
    for number in range(10):
        (tmp_path / f"f{number}").write_bytes(b"x")
        files.append(str(tmp_path / f"f{number}"))
    pool = OpenFiles(3)
    first = pool.fd(files[0])
    for file in files[1:3]:
        pool.fd(file)
    assert pool.fd(files[0]) == first  # reused, now the most recent
    pool.fd(files[3])  # closes files[1], the least recently used
    assert len(pool) == 3 and pool.fd(files[0]) == first
    for file in files:
        pool.fd(file)
    assert len(pool) == 3
    pool.close()
    assert len(pool) == 0


@pytest.mark.slow  # two short train.py runs: about 12 s
@pytest.mark.parametrize("workers", [0, 2])
def test_token_ids_beyond_the_declared_vocabulary_stop_the_run_naming_the_shard(tmp_path, capsys, workers):
    """A meta.json that under-reports its vocabulary passes the start check (100 <= the model's
    256); the first block read with a larger id stops the run in one line, in a worker too."""
    import json as json_module

    from lightning_ltd.cli import EXIT_BAD_INPUT, run_command
    from lightning_ltd.data.prepare import prepare
    from tests.conftest import TINY, compose_train

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 800)  # bytes up to 'z' = 122
    prepare([str(corpus)], str(tmp_path / "shards"), val_fraction=0.2, progress=False)
    meta_file = tmp_path / "shards" / "meta.json"
    meta_file.write_text(json_module.dumps({**json_module.loads(meta_file.read_text()), "vocab_size": 100}))
    data = [o for o in TINY if not o.startswith("data.")] + ["data.block_size=32", "data.batch_size=8"]
    cfg = compose_train(
        tmp_path / "run",
        *data,
        "data=tokens",
        f"data.path={tmp_path / 'shards'}",
        f"data.num_workers={workers}",
        "trainer.max_steps=2",
        tiny=False,
    )
    assert run_command(cfg) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: path=") and "-00000.bin" in err[-1]
    assert "is not below the vocabulary size 100 that meta.json declares" in err[-1]


@pytest.mark.parametrize(
    "settings",
    [[], pytest.param(["data.num_workers=2", "model.dropout=0.1"], marks=pytest.mark.slow)],  # workers: about 3 s
    ids=["in-process", "workers2-dropout"],
)
def test_a_shard_cut_short_under_a_running_fit_is_one_line_naming_it(tmp_path, settings):
    import lightning as L

    from lightning_ltd.cli import run

    out = prepared(tmp_path)

    class CutShards(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 2:
                for shard in out.glob("train-*.bin"):
                    shard.write_bytes(b"")

    tokens = ["data=tokens", f"data.path={out}", "model.vocab_size=256"]
    cfg = compose_train(tmp_path, *tokens, *TINY_TOKENS, *settings, tiny=False)
    module, datamodule, trainer = build(cfg)
    trainer.callbacks.append(CutShards())
    with pytest.raises(
        DataError, match=r"train-00000.bin'?: read 0 of 33 bytes at byte [\d,]+: the shard was cut short"
    ):
        run(cfg, module, datamodule, trainer)
