"""Name and layout conversion between our models and Hugging Face GPT-2 / BERT and timm ViT.

Each model family has ``*_arch_from_*`` (their config -> our constructor arguments),
``*_from_*`` (their state dict -> ours) and ``*_to_*`` (ours -> theirs, plus their config).
Inside a block, ours are GPT-2's names; the tables below map the others onto them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from lightning_ltd.pretrained.io import PretrainedError, load_hf_directory, load_weight_file

State = dict[str, torch.Tensor]


def _require(config: Mapping[str, Any], model_type: str, keys: tuple[str, ...], source: str) -> None:
    """The config is of ``model_type`` and has ``keys``; otherwise one error naming the path."""
    if config.get("model_type", model_type) != model_type:
        raise PretrainedError(f"pretrained={source!r}: model_type={config.get('model_type')!r} is not {model_type!r}")
    missing = [k for k in keys if k not in config]
    if missing:
        raise PretrainedError(f"pretrained={source!r}: config.json lacks {', '.join(missing)}")


# ---------------------------------------------------------------- GPT-2 (transformers GPT2LMHeadModel)

_CONV1D = re.compile(r"transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")
_GPT2_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")


def gpt_arch_from_hf(config: Mapping[str, Any], source: str) -> dict[str, Any]:
    """GPTModule arguments from a GPT-2 ``config.json``."""
    _require(config, "gpt2", ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd"), source)
    activation = config.get("activation_function", "gelu_new")
    n_embd = config["n_embd"]
    problems = []
    if activation not in _GPT2_ACTIVATIONS:
        problems.append(f"activation_function={activation!r} is not one of {_GPT2_ACTIVATIONS}")
    if config.get("n_inner") not in (None, 4 * n_embd):
        problems.append(f"n_inner={config['n_inner']} is not 4 * n_embd")
    if config.get("scale_attn_by_inverse_layer_idx"):
        problems.append("scale_attn_by_inverse_layer_idx=true is not supported")
    if problems:
        raise PretrainedError(f"pretrained={source!r}: " + "; ".join(problems))
    return {
        "vocab_size": config["vocab_size"],
        "block_size": config["n_positions"],
        "n_layer": config["n_layer"],
        "n_head": config["n_head"],
        "n_embd": n_embd,
        "layer_norm_eps": config.get("layer_norm_epsilon", 1e-5),
        "position": "learned",
        "bias": True,
    }


def gpt_from_hf(state: Mapping[str, torch.Tensor]) -> State:
    """GPT-2 weights -> ours: Conv1D matrices transposed, the tied head filled in."""
    if not any(k.startswith("transformer.") for k in state):  # saved from GPT2Model
        state = {f"transformer.{k}": v for k, v in state.items()}
    out = {
        k: (v.t() if _CONV1D.match(k) else v)
        for k, v in state.items()
        if not k.endswith((".attn.bias", ".attn.masked_bias")) and k != "lm_head.weight"
    }
    if "transformer.wte.weight" in out:
        out["lm_head.weight"] = out["transformer.wte.weight"]
    return out


def gpt_to_hf(state: Mapping[str, torch.Tensor], arch: Mapping[str, Any]) -> tuple[State, dict[str, Any]]:
    """Ours -> GPT-2 weights (the tied head left out, as transformers saves it) and config."""
    if arch.get("position", "learned") != "learned" or not arch.get("bias", True):
        raise PretrainedError("only learned positions with biases export to GPT-2")
    weights = {k: (v.t() if _CONV1D.match(k) else v) for k, v in state.items() if k != "lm_head.weight"}
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": arch["vocab_size"],
        "n_positions": arch["block_size"],
        "n_embd": arch["n_embd"],
        "n_layer": arch["n_layer"],
        "n_head": arch["n_head"],
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": arch.get("layer_norm_eps", 1e-5),
        "resid_pdrop": arch.get("dropout", 0.0),
        "embd_pdrop": arch.get("dropout", 0.0),
        "attn_pdrop": arch.get("dropout", 0.0),
        "tie_word_embeddings": True,
        "bos_token_id": None,
        "eos_token_id": None,
    }
    return weights, config


# ---------------------------------------------------------------- BERT (transformers BertForMaskedLM)

_BERT_LAYER = {  # ours (inside encoder.layer.i.) -> theirs (inside bert.encoder.layer.i.)
    "attn.c_proj": "attention.output.dense",
    "ln_1": "attention.output.LayerNorm",
    "mlp.c_fc": "intermediate.dense",
    "mlp.c_proj": "output.dense",
    "ln_2": "output.LayerNorm",
}
_BERT_IGNORED = ("bert.pooler.", "cls.seq_relationship.", "bert.embeddings.position_ids")


def bert_arch_from_hf(config: Mapping[str, Any], source: str) -> dict[str, Any]:
    """BERTModule arguments from a BERT ``config.json``."""
    keys = ("vocab_size", "max_position_embeddings", "num_hidden_layers", "num_attention_heads", "hidden_size")
    _require(config, "bert", keys, source)
    hidden = config["hidden_size"]
    problems = []
    if config.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act={config.get('hidden_act')!r} is not 'gelu'")
    if config.get("intermediate_size", 4 * hidden) != 4 * hidden:
        problems.append(f"intermediate_size={config['intermediate_size']} is not 4 * hidden_size")
    if config.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type={config['position_embedding_type']!r} is not 'absolute'")
    if problems:
        raise PretrainedError(f"pretrained={source!r}: " + "; ".join(problems))
    return {
        "vocab_size": config["vocab_size"],
        "block_size": config["max_position_embeddings"],
        "n_layer": config["num_hidden_layers"],
        "n_head": config["num_attention_heads"],
        "n_embd": hidden,
        "type_vocab_size": config.get("type_vocab_size", 2),
        "layer_norm_eps": config.get("layer_norm_eps", 1e-12),
        "pre_norm": False,
    }


def bert_from_hf(state: Mapping[str, torch.Tensor]) -> State:
    """BERT weights -> ours: q/k/v stacked into ``c_attn``, the tied decoder filled in.

    The pooler and next-sentence head of ``BertForPreTraining`` checkpoints (such as
    ``bert-base-uncased``) are not part of a masked-LM model and are skipped.
    """
    out: State = {}
    layer = re.compile(r"bert\.encoder\.layer\.(\d+)\.(.+)$")
    pending: dict[str, dict[str, torch.Tensor]] = {}
    theirs_to_ours = {v: k for k, v in _BERT_LAYER.items()}
    for key, value in state.items():
        if key.startswith(_BERT_IGNORED) or key == "cls.predictions.decoder.bias":
            continue
        if key == "cls.predictions.decoder.weight":
            continue
        match = layer.match(key)
        if match is None:
            out[key.removeprefix("bert.")] = value
            continue
        index, rest = match.groups()
        qkv = re.match(r"attention\.self\.(query|key|value)\.(weight|bias)$", rest)
        if qkv:
            pending.setdefault(f"encoder.layer.{index}.attn.c_attn.{qkv[2]}", {})[qkv[1]] = value
            continue
        module, _, param = rest.rpartition(".")
        ours = theirs_to_ours.get(module)
        out[f"encoder.layer.{index}.{ours}.{param}" if ours else key] = value
    for key, parts in pending.items():
        if set(parts) == {"query", "key", "value"}:
            out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
        else:
            out.update({f"{key}[{name}]": v for name, v in parts.items()})  # incomplete: reported as unexpected
    if "embeddings.word_embeddings.weight" in out:
        out["cls.predictions.decoder.weight"] = out["embeddings.word_embeddings.weight"]
    return out


def bert_to_hf(state: Mapping[str, torch.Tensor], arch: Mapping[str, Any]) -> tuple[State, dict[str, Any]]:
    """Ours -> ``BertForMaskedLM`` weights and config (post-LayerNorm models only)."""
    if arch.get("pre_norm"):
        raise PretrainedError("a pre-LayerNorm BERT has no Hugging Face equivalent to export to")
    out: State = {}
    layer = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
    for key, value in state.items():
        if key == "cls.predictions.decoder.weight":
            continue
        match = layer.match(key)
        if match is None:
            out[key if key.startswith("cls.") else f"bert.{key}"] = value
            continue
        index, module, param = match.groups()
        prefix = f"bert.encoder.layer.{index}."
        if module == "attn.c_attn":
            for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True):
                out[f"{prefix}attention.self.{name}.{param}"] = part
        else:
            out[f"{prefix}{_BERT_LAYER[module]}.{param}"] = value
    out["cls.predictions.decoder.bias"] = state["cls.predictions.bias"].clone()
    config = {
        "model_type": "bert",
        "architectures": ["BertForMaskedLM"],
        "vocab_size": arch["vocab_size"],
        "hidden_size": arch["n_embd"],
        "num_hidden_layers": arch["n_layer"],
        "num_attention_heads": arch["n_head"],
        "intermediate_size": 4 * arch["n_embd"],
        "hidden_act": "gelu",
        "max_position_embeddings": arch["block_size"],
        "type_vocab_size": arch.get("type_vocab_size", 2),
        "layer_norm_eps": arch.get("layer_norm_eps", 1e-12),
        "hidden_dropout_prob": arch.get("dropout", 0.1),
        "attention_probs_dropout_prob": arch.get("dropout", 0.1),
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
    }
    return out, config


# ---------------------------------------------------------------- ViT (timm VisionTransformer)

_TIMM_BLOCK = {"ln_1": "norm1", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj", "ln_2": "norm2"}
_TIMM_BLOCK |= {"mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def vit_arch_from_timm(state: Mapping[str, torch.Tensor], source: str, head_size: int = 64) -> dict[str, Any]:
    """ViTModule arguments read off a timm state dict's shapes (heads: width / ``head_size``)."""
    try:
        width, channels, patch, _ = state["patch_embed.proj.weight"].shape
        tokens = state["pos_embed"].shape[1]
        num_classes = state["head.weight"].shape[0]
    except KeyError as err:
        raise PretrainedError(f"pretrained={source!r}: not a timm ViT state dict (no {err.args[0]})") from err
    grid = round((tokens - 1) ** 0.5)
    if grid * grid != tokens - 1 or "cls_token" not in state:
        raise PretrainedError(f"pretrained={source!r}: expected a [CLS] token and a square patch grid")
    n_layer = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    return {
        "image_size": grid * patch,
        "patch_size": patch,
        "in_channels": channels,
        "num_classes": num_classes,
        "n_layer": n_layer,
        "n_head": max(1, width // head_size),
        "n_embd": width,
        "layer_norm_eps": 1e-6,
    }


def _rename_blocks(state: Mapping[str, torch.Tensor], table: Mapping[str, str]) -> State:
    pattern = re.compile(r"blocks\.(\d+)\.(.+)\.(weight|bias)$")
    out: State = {}
    for key, value in state.items():
        match = pattern.match(key)
        if match and match[2] in table:
            key = f"blocks.{match[1]}.{table[match[2]]}.{match[3]}"
        out[key] = value
    return out


def vit_from_timm(state: Mapping[str, torch.Tensor]) -> State:
    """timm ViT weights -> ours (block internals renamed, everything else as is)."""
    return _rename_blocks(state, {v: k for k, v in _TIMM_BLOCK.items()})


def vit_to_timm(state: Mapping[str, torch.Tensor]) -> State:
    """Ours -> timm ViT weights, loadable with ``timm.create_model(...).load_state_dict``."""
    return _rename_blocks(state, _TIMM_BLOCK)


# ---------------------------------------------------------------- readers: a path -> (architecture, our weights)


def read_hf_gpt2(path: str) -> tuple[dict[str, Any], State]:
    config, state = load_hf_directory(path)
    return gpt_arch_from_hf(config, path), gpt_from_hf(state)


def read_hf_bert(path: str) -> tuple[dict[str, Any], State]:
    config, state = load_hf_directory(path)
    return bert_arch_from_hf(config, path), bert_from_hf(state)


def read_timm_vit(path: str, head_size: int = 64) -> tuple[dict[str, Any], State]:
    state = load_weight_file(path)
    return vit_arch_from_timm(state, path, head_size), vit_from_timm(state)
