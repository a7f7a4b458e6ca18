"""A Hugging Face GPT-2 config.json read into a ModelConfig: every key honoured or refused in one line.

Keys a config leaves out take GPT2Config's defaults, as transformers does, so a directory opens here
exactly as it opens there; the weights' shapes then confirm the sizes.
"""

from __future__ import annotations

import math
from pathlib import Path

from .config import LN_EPS, ModelConfig
from .errors import CheckpointError, ConfigError
from .memory import available_memory, kv_cache_bytes, weight_bytes

# GPT2Config's defaults (GPT-2 small) for the keys that shape the model.
HF_DEFAULTS = {
    "vocab_size": 50257,
    "n_positions": 1024,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "layer_norm_epsilon": LN_EPS,
    "activation_function": "gelu_new",
    "resid_pdrop": 0.1,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
}
# Both are GELU's tanh approximation, the one tinylm's kernels compute.
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")


def _whole(data: dict, key: str, where: str) -> int:
    """A size key as an int; 768.0 is accepted (JSON writers differ), 7.5, "768" and true are not."""
    value = data.get(key, HF_DEFAULTS[key])
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CheckpointError(f"{where}: {key} must be a positive whole number, got {value!r}")
    return value


def _flag(data: dict, key: str, default: bool, where: str) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CheckpointError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def _token_id(data: dict, key: str, vocab_size: int, where: str) -> int | None:
    """bos/eos: an id, or None; an id past the vocabulary (GPT2Config's default 50256 in a small toy) can
    never be produced or fed, so it is read as none, as transformers only warns about it."""
    value = data.get(key, HF_DEFAULTS[key])
    if isinstance(value, list) and len(value) == 1:  # newer configs may list a single id
        value = value[0]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{where}: {key} must be a token id (a whole number) or null, got {value!r}")
    return value if value < vocab_size else None


def _refuse_unsupported(data: dict, C: int, n_positions: int, where: str) -> None:
    """One line for the first config key whose model tinylm cannot run exactly."""
    n_inner = data.get("n_inner")
    if n_inner is not None and n_inner != 4 * C:
        raise CheckpointError(
            f"{where}: n_inner {n_inner!r} is not 4 x n_embd ({4 * C}); tinylm's MLP is n_embd -> 4 x n_embd -> n_embd"
        )
    act = data.get("activation_function", HF_DEFAULTS["activation_function"])
    if act not in TANH_GELUS:
        raise CheckpointError(
            f"{where}: activation_function {act!r} is not supported; tinylm computes GELU's tanh approximation "
            f"({' or '.join(TANH_GELUS)})"
        )
    n_ctx = data.get("n_ctx")
    if n_ctx is not None and n_ctx != n_positions:
        raise CheckpointError(
            f"{where}: n_ctx {n_ctx!r} differs from n_positions {n_positions}; set both to the context length"
        )
    if not _flag(data, "scale_attn_weights", True, where):
        raise CheckpointError(
            f"{where}: scale_attn_weights is false; tinylm always scales attention scores by 1/sqrt(head size)"
        )
    if _flag(data, "scale_attn_by_inverse_layer_idx", False, where):
        raise CheckpointError(
            f"{where}: scale_attn_by_inverse_layer_idx is true (scores divided by the layer number too); "
            "tinylm's attention does not do that"
        )
    # reorder_and_upcast_attn only changes the order of PyTorch's half-precision arithmetic to avoid
    # overflow; the result is the same softmax(QK^T/sqrt(HS)) that tinylm computes in float32 or wider.
    _flag(data, "reorder_and_upcast_attn", False, where)
    if _flag(data, "add_cross_attention", False, where):
        raise CheckpointError(f"{where}: add_cross_attention is true (an encoder-decoder GPT-2); tinylm has none")


def model_config_from_hf(data: dict, directory: Path) -> ModelConfig:
    """ModelConfig from a config.json's keys; CheckpointError naming config.json and the key otherwise."""
    where = f"{directory}/config.json"
    model_type = data.get("model_type")
    if model_type != "gpt2":
        raise CheckpointError(f"{where} describes a {model_type!r} model; tinylm reads GPT-2 checkpoints (gpt2)")
    C = _whole(data, "n_embd", where)
    n_positions = _whole(data, "n_positions", where)
    vocab_size = _whole(data, "vocab_size", where)
    _refuse_unsupported(data, C, n_positions, where)
    extra = data.get("tinylm") if isinstance(data.get("tinylm"), dict) else {}
    eps = data.get("layer_norm_epsilon", HF_DEFAULTS["layer_norm_epsilon"])
    dropout = extra.get("dropout", data.get("resid_pdrop", HF_DEFAULTS["resid_pdrop"]))
    cfg = ModelConfig(
        vocab_size=vocab_size,
        block_size=n_positions,
        n_layer=_whole(data, "n_layer", where),
        n_head=_whole(data, "n_head", where),
        n_embd=C,
        dropout=float(dropout) if isinstance(dropout, (int, float)) and not isinstance(dropout, bool) else dropout,
        positional=extra.get("positional", "learned"),
        attention=extra.get("attention", True),
        layer_norm_epsilon=float(eps) if isinstance(eps, int) and not isinstance(eps, bool) else eps,
        bos_token_id=_token_id(data, "bos_token_id", vocab_size, where),
        eos_token_id=_token_id(data, "eos_token_id", vocab_size, where),
    )
    try:
        return cfg.validate()
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def check_fits_in_memory(cfg: ModelConfig, itemsize: int, directory: Path) -> None:
    """Refuse, before allocating anything, a config whose weights and one sequence's KV cache (what
    generating any text needs, n_layer x 2 x n_positions x n_embd floats) cannot fit in the memory available."""
    weights, kv = weight_bytes(cfg, itemsize), kv_cache_bytes(cfg, itemsize)
    have = available_memory()
    if have is not None and weights + kv > have:
        raise CheckpointError(
            f"{directory}/config.json: its model ({cfg.n_layer} layers, n_embd {cfg.n_embd}, n_positions "
            f"{cfg.block_size:,}, vocab_size {cfg.vocab_size:,}) needs {_gib(weights)} for its weights and "
            f"{_gib(kv)} for the KV cache of one sequence, more than the {_gib(have)} of memory available"
        )


def _gib(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB" if n >= 1 << 28 else f"{math.ceil(n / (1 << 20)):,} MiB"
