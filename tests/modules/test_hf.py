"""Any local Hugging Face checkpoint through ``train.py``: ``model=hf_causal_lm`` and
``model=hf_masked_lm`` on tiny random-weight folders written here (no download)."""

import csv
from pathlib import Path

import pytest
import torch
import transformers

from lightning_ltd.cli import ConfigError, build, train
from lightning_ltd.data.prepare import prepare
from lightning_ltd.modules import HFCausalLMModule, HFMaskedLMModule
from lightning_ltd.pretrained.tiny import tiny_hf_bert, tiny_llama
from tests.conftest import QUICK, compose_train

N = 8
SMALL = [
    *QUICK,
    "data.block_size=64",
    "data.batch_size=4",
    "ltd.min_keep=16",
    "ltd.ramp_steps=10",
    "ltd.granularity=8",
    "lr.warmup_steps=2",
    "trainer.limit_val_batches=2",
]


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory) -> Path:
    return tiny_hf_bert(tmp_path_factory.mktemp("bert"))


def compose_hf(out: Path, folder: Path, *overrides: str, model: str = "hf_causal_lm"):
    in_memory = [] if "data=tokens" in overrides else ["data.max_bytes=60000"]  # shards have no byte limit
    return compose_train(
        out, f"model={model}", f"model.pretrained={folder}", *SMALL, *in_memory, *overrides, tiny=False
    )


def losses(run_dir: Path) -> dict[int, float]:
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(metrics) if r.get("train/loss")}


def test_module_wraps_the_middle_layers_and_trains_in_train_mode(llama):
    module = HFCausalLMModule.from_pretrained(llama, dropout=0.1)
    layers = module.model.model.layers
    assert [type(layer).__name__ for layer in layers] == [
        "LlamaDecoderLayer",
        "RandomLTD",
        "RandomLTD",
        "LlamaDecoderLayer",
    ]
    assert (module.num_layers, module.max_seq_len, module.hparams.ltd_layers) == (4, 256, [1, 2])
    assert module.model.training  # from_pretrained's eval mode would neither drop nor apply dropout
    assert module.model.config.attention_dropout == 0.1


@pytest.mark.slow  # a few seconds: the full suite runs it
def test_train_py_resumes_bit_exact_with_dropout_and_saves_a_loadable_folder(tmp_path, llama):
    common = ["model.dropout=0.1", f"lr.total_steps={2 * N}", f"callbacks.model_checkpoint.every_n_train_steps={N}"]
    straight, first, second = tmp_path / "straight", tmp_path / "first", tmp_path / "second"
    summary = train(compose_hf(straight, llama, *common, f"trainer.max_steps={2 * N}"))
    assert summary["steps"] == 2 * N and summary["val/loss"] < summary["val/loss_start"]
    train(compose_hf(first, llama, *common, f"trainer.max_steps={N}"))
    checkpoint = first / "checkpoints" / "last.ckpt"
    train(compose_hf(second, llama, *common, f"trainer.max_steps={2 * N}", f"ckpt_path={checkpoint}"))
    expected, resumed = losses(straight), losses(second)
    assert sorted(resumed) == list(range(N, 2 * N))
    assert [resumed[s] for s in sorted(resumed)] == [expected[s] for s in sorted(resumed)]  # bit for bit
    final = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    again = torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(value, again[name]) for name, value in final.items())

    module = HFCausalLMModule.load_from_checkpoint(second / "checkpoints" / "last.ckpt").eval()
    saved = module.save_pretrained(tmp_path / "finetuned")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(saved, local_files_only=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(saved, local_files_only=True)
    ids = torch.tensor([tokenizer("def main(): return the quick brown fox")["input_ids"]])
    assert torch.equal(reloaded(ids).logits, module(ids))
    assert torch.equal(module.model.model.embed_tokens.weight, final["model.model.embed_tokens.weight"])


@pytest.mark.slow  # about 2 s
def test_tokens_shards_prepared_with_the_folder_tokenizer(tmp_path, llama):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. def main(): return 0\n" * 400)
    prepare([str(corpus)], str(tmp_path / "shards"), tokenizer=str(llama), progress=False)
    summary = train(
        compose_hf(tmp_path / "run", llama, "data=tokens", f"data.path={tmp_path / 'shards'}", "trainer.max_steps=6")
    )
    assert summary["steps"] == 6


@pytest.mark.slow  # about 1 s
def test_masked_lm_on_padded_batches_with_the_folder_tokenizer(tmp_path, hf_bert):
    summary = train(
        compose_hf(tmp_path, hf_bert, "data=mlm", "data.block_size=64", "trainer.max_steps=15", model="hf_masked_lm")
    )
    assert summary["steps"] == 15 and summary["val/loss"] < summary["val/loss_start"]
    module = HFMaskedLMModule.from_pretrained(hf_bert)
    assert [type(layer).__name__ for layer in module.model.bert.encoder.layer][1:3] == ["RandomLTD", "RandomLTD"]


def test_activation_checkpointing_keeps_gradients(llama):
    batch = torch.randint(0, 512, (2, 65), generator=torch.Generator().manual_seed(0))
    grads = []
    for checkpointing in (False, True):
        module = HFCausalLMModule.from_pretrained(llama, dropout=0.1, activation_checkpointing=checkpointing)
        module.keep = 16
        torch.manual_seed(3)
        module.model_step(batch).loss.backward()
        grads.append({n: p.grad for n, p in module.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([], "model.pretrained must be set"),
        (["model.pretrained=/nonexistent/llama"], "model.pretrained='/nonexistent/llama': no such directory"),
        (["model.pretrained=FOLDER", "model.ltd_layers=[5]"], "model.ltd_layers=[5]: dropping layer index 5"),
        (["model.pretrained=FOLDER", "model.dropout=1.5"], "model.dropout=1.5 must be a number in [0, 1), or null"),
        (["model.pretrained=FOLDER", "model.activation_checkpointing=maybe"], "model.activation_checkpointing='maybe'"),
        (["model.pretrained=NOTOKENIZER"], "data.tokenizer='NOTOKENIZER': no tokenizer in the folder"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(tmp_path, llama, overrides, message):
    bare = tmp_path / "weights_only"  # a model folder without a tokenizer
    transformers.AutoModelForCausalLM.from_pretrained(llama).save_pretrained(bare)
    overrides = [o.replace("NOTOKENIZER", str(bare)).replace("FOLDER", str(llama)) for o in overrides]
    with pytest.raises(ConfigError) as err:
        build(compose_train(tmp_path, "model=hf_causal_lm", *SMALL, *overrides, tiny=False))
    assert message.replace("NOTOKENIZER", str(bare)) in str(err.value) and "\n" not in str(err.value)


def test_an_encoder_folder_is_refused_as_a_causal_lm(tmp_path, hf_bert):
    """transformers loads a BERT folder as ``BertLMHeadModel`` with a warning only; it attends both
    ways, so next-token training would read its targets. With ``is_decoder`` it is causal and loads."""
    from lightning_ltd.pretrained import PretrainedError

    with pytest.raises(PretrainedError, match="its BertLMHeadModel attends to later tokens"):
        HFCausalLMModule(pretrained=str(hf_bert))
    decoder = tmp_path / "bert_decoder"
    config = transformers.AutoConfig.from_pretrained(hf_bert)
    config.is_decoder = True
    transformers.BertLMHeadModel.from_pretrained(hf_bert, config=config).save_pretrained(decoder)
    assert HFCausalLMModule(pretrained=str(decoder)).num_layers == 4


def without_weight(source: Path, target: Path, part: str) -> str:
    """A copy of the folder ``source`` whose weights lack the first tensor whose name holds ``part``."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    tensors = load_file(target / "model.safetensors")
    dropped = sorted(name for name in tensors if part in name)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, target / "model.safetensors", {"format": "pt"})
    return dropped


@pytest.mark.parametrize("part", ["layers.0.self_attn.q_proj", "embed_tokens", "norm.weight"])
def test_a_folder_missing_a_weight_of_the_network_is_refused(tmp_path, llama, part):
    """transformers starts a missing weight from random values with a log note only."""
    from lightning_ltd.pretrained import PretrainedError

    dropped = without_weight(llama, tmp_path / "partial", part)
    with pytest.raises(PretrainedError, match=f"its weights lack model.{dropped.removeprefix('model.')}") as err:
        HFCausalLMModule(pretrained=str(tmp_path / "partial"))
    assert "\n" not in str(err.value) and "they would start random" in str(err.value)


def test_a_new_task_head_on_a_pretrained_body_loads(tmp_path, hf_bert):
    """A BERT body (``AutoModel``'s export, no MLM head) under ``ForMaskedLM``: the head is new,
    as fine-tuning expects, and the body's weights are the folder's."""
    body = tmp_path / "bert_body"
    transformers.AutoModel.from_pretrained(hf_bert).save_pretrained(body)
    for name in hf_bert.iterdir():
        if "token" in name.name or name.name == "vocab.txt":
            (body / name.name).write_bytes(name.read_bytes())
    module = HFMaskedLMModule(pretrained=str(body))
    reference = transformers.AutoModel.from_pretrained(body)
    loaded = module.model.bert.embeddings.word_embeddings.weight
    torch.testing.assert_close(loaded, reference.embeddings.word_embeddings.weight)


def test_train_py_refuses_a_partial_folder_in_one_line(tmp_path, llama):
    dropped = without_weight(llama, tmp_path / "partial", "mlp.down_proj")
    with pytest.raises(ConfigError) as err:
        build(compose_hf(tmp_path, tmp_path / "partial"))
    assert f"model.pretrained='{tmp_path / 'partial'}': its weights lack {dropped}" in str(err.value)


@pytest.mark.slow  # about 2.3 s
def test_a_bloom_folder_is_one_line_saying_what_to_set_and_then_trains_dropping(tmp_path):
    """No sdpa path and no position limit in its config: each is one line naming the key to set;
    with both set, BLOOM trains through train.py (its ALiBi bias gathered with the kept keys)."""
    from tests.conftest import make_tokenizer

    folder = tmp_path / "bloom"
    config = transformers.BloomConfig(vocab_size=320, hidden_size=32, n_layer=4, n_head=4)
    transformers.BloomForCausalLM(config).save_pretrained(folder)
    make_tokenizer(folder)
    with pytest.raises(ConfigError, match=r"model.pretrained=.*has no attn_implementation='sdpa': set model\.attn"):
        build(compose_hf(tmp_path / "a", folder))
    eager = ["model.attn_implementation=eager"]
    with pytest.raises(ConfigError, match=r"model\.max_seq_len=None: BloomConfig has no position limit \(ALiBi\)"):
        build(compose_hf(tmp_path / "b", folder, *eager))
    summary = train(compose_hf(tmp_path / "c", folder, *eager, "model.max_seq_len=128"))
    assert summary["steps"] > 0 and summary["schedule_saving"] > 0


@pytest.mark.slow  # about 2.5 s
def test_a_family_without_an_sdpa_path_says_to_set_eager_and_then_trains(tmp_path):
    """Gemma 2 (soft-capped attention): transformers refuses sdpa; the line names the key."""
    from tests.conftest import make_tokenizer

    folder = tmp_path / "gemma2"
    sizes = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2}
    config = transformers.Gemma2Config(vocab_size=320, num_hidden_layers=4, head_dim=8, **sizes)
    transformers.Gemma2ForCausalLM(config).save_pretrained(folder)
    make_tokenizer(folder)
    with pytest.raises(ConfigError, match=r"has no attn_implementation='sdpa': set model\.attn_implementation=eager"):
        build(compose_hf(tmp_path / "a", folder))
    summary = train(compose_hf(tmp_path / "b", folder, "model.attn_implementation=eager"))
    assert summary["steps"] > 0 and summary["schedule_saving"] > 0


def test_rules_and_verification_pass_through_train_py_keys(tmp_path, llama):
    overrides = ["+model.token_kwargs={gate: 1, table: [1, 2]}", "model.static_kwargs=[memory]", "model.verify=true"]
    module, _, _ = build(compose_hf(tmp_path, llama, *[o.lstrip("+") for o in overrides]))
    layer = module.model.model.layers[1]
    assert {"gate", "table"} <= set(layer.token_rules) and "memory" in layer.static_kwargs


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.token_kwargs=5", "model.token_kwargs=5"),
        ("model.token_kwargs={gate: first}", "model.token_kwargs"),
        ("model.static_kwargs=memory", "model.static_kwargs='memory'"),
        ("model.verify=maybe", "model.verify='maybe'"),
    ],
)
def test_bad_rule_keys_are_one_line(tmp_path, llama, override, message):
    with pytest.raises(ConfigError) as caught:
        build(compose_hf(tmp_path, llama, override))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_family_that_cannot_drop_exactly_is_one_line_through_train_py(tmp_path):
    config = transformers.MptConfig(vocab_size=300, d_model=32, n_layers=4, n_heads=4, max_seq_len=128)
    folder = tmp_path / "mpt"
    transformers.MptForCausalLM(config).save_pretrained(folder)
    with pytest.raises(ConfigError, match=r"^model\.ltd_layers=None: .*MptBlock: its ALiBi bias is one") as caught:
        build(
            compose_hf(
                tmp_path / "run",
                folder,
                "model.attn_implementation=eager",
                "model.max_seq_len=128",
                "model.tokenizer=null",
            )
        )
    assert "\n" not in str(caught.value)
