"""Checkpoints: a Hugging Face GPT-2 directory (config.json + model.safetensors) plus tinylm's tokenizer,
optimizer and trainer state. Written atomically, validated on load, no pickle."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .config import ModelConfig, TrainConfig, config_from_dict, config_to_dict
from .corpus import Corpus, load_corpus
from .errors import CheckpointError, CheckpointRecovered, ConfigError, TinyLMError
from .files import NotReadable, read_json_text
from .hf_config import check_fits_in_memory, model_config_from_hf
from .hf_weights import WEIGHTS_FILE, check_tensors, fill_model, index_tensors, weight_files
from .history_file import HISTORY_JSON, load_history, save_history
from .model import GPT
from .params import INIT_STD, zero_attention
from .safedir import carry_over, holds_cwd, publish, recover, staging_dir
from .tensorfile import TensorFile
from .tokenizers import TOKENIZER_FILE, Tokenizer, load_hf_tokenizer, read_tokenizer_file

CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
FORMAT_VERSION = 1


def hf_config(model: GPT, trainer=None) -> dict:
    """config.json: Hugging Face GPT-2 keys, plus a "tinylm" object with what HF has no key for."""
    cfg = model.config
    tinylm = {
        "format_version": FORMAT_VERSION,
        "tokenizer": model.tokenizer.kind if model.tokenizer is not None else None,
        "positional": cfg.positional,
        "dropout": cfg.dropout,
        "attention": cfg.attention,  # false: MLP-only blocks, their attention weights saved as zeros
        "dtype": model.dtype.name,  # the dtype it trained in; the safetensors file is always float32
    }
    if trainer is not None:
        tinylm["train"] = config_to_dict(trainer.config)
        tinylm["step"] = trainer.step_count
        tinylm["seed"] = trainer.config.seed
        if trainer.corpus is not None:
            c = trainer.corpus
            tinylm["corpus"] = {"name": c.name, "source": c.source, "sha256": c.sha256, "chars": len(c.text)}
            if c.path:
                tinylm["corpus"]["path"] = c.path
    end_of_text = getattr(model.tokenizer, "specials", {}).get("<|endoftext|>")
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_ctx": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": 4 * cfg.n_embd,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": cfg.layer_norm_epsilon,
        "tie_word_embeddings": True,
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": 0.0,  # tinylm has no dropout on attention weights
        "initializer_range": INIT_STD,
        "scale_attn_weights": True,
        # the opened model's own ids, else GPT-2's <|endoftext|> when the tokenizer has it
        "bos_token_id": cfg.bos_token_id if cfg.bos_token_id is not None else end_of_text,
        "eos_token_id": cfg.eos_token_id if cfg.eos_token_id is not None else end_of_text,
        "torch_dtype": "float32",
        "tinylm": tinylm,
    }


def _weights(model: GPT) -> dict[str, np.ndarray]:
    """The tensors of model.safetensors, on the host whatever the model's device."""
    tensors = {name: np.ascontiguousarray(view, dtype=np.float32) for name, view in model.host_params().items()}
    if not model.config.attention:
        zero_attention(tensors)  # the model never reads them: saved as the zeros it computes with
    # A fixed sine/cosine table is saved too, so any GPT-2 implementation runs the same forward pass.
    tensors["transformer.wpe.weight"] = np.ascontiguousarray(model.host_wpe(), dtype=np.float32)
    return tensors


def is_tinylm_checkpoint(path: Path) -> bool:
    """A directory tinylm wrote (its config.json has the "tinylm" object): the only kind a save may
    replace. A Hugging Face directory opened here keeps its own files (README, other formats)."""
    try:
        return isinstance(json.loads(read_json_text(Path(path) / CONFIG_FILE)).get("tinylm"), dict)
    except (OSError, ValueError, AttributeError, NotReadable):
        return False


# What a save writes or supersedes: the model's own state, never carried over from the previous version
# (stale moments or tokenizer files beside new weights would be a checkpoint that is not one).
MODEL_FILES = {
    CONFIG_FILE,
    STATE_FILE,
    HISTORY_JSON,  # with history.safetensors: a new save's history (or none) replaces the old one
    TOKENIZER_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
}


def is_model_file(name: str) -> bool:
    """Whether a file of a checkpoint directory is model state (weights, optimizer, tokenizer, config)."""
    return name in MODEL_FILES or name.endswith((".safetensors", ".safetensors.index.json"))


def save_checkpoint(path, model: GPT, trainer=None) -> Path:
    """Write the checkpoint into a temporary directory beside `path`, flush it to disk, then swap it
    in (see safedir.py), so a crash, a kill or a full disk at any moment leaves the previous checkpoint
    or the new one, complete, and never a half-written one. Files a user keeps in the directory besides
    the model's (notes, a log) stay."""
    given = path
    path = Path(os.path.realpath(path))  # a link to a checkpoint: replace what it points to, keep the link
    if holds_cwd(path):
        raise CheckpointError(
            f"cannot save to {given}: it is the current directory (or holds it), which a save replaces; "
            "save from its parent or to another directory"
        )
    _recover(path)
    if path.exists() and not (path.is_dir() and (is_tinylm_checkpoint(path) or not any(path.iterdir()))):
        raise CheckpointError(f"{path} exists and is not a tinylm checkpoint; choose another directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir(path)
    try:
        with model.lock:
            save_file(_weights(model), str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
            (tmp / CONFIG_FILE).write_text(json.dumps(hf_config(model, trainer), indent=2) + "\n")
            if model.tokenizer is not None:
                model.tokenizer.save(tmp)
            if trainer is not None:
                moments = {}
                for key, buf in (("exp_avg", trainer.m), ("exp_avg_sq", trainer.v)):
                    for name, view in model.layout.views(trainer.kernels.to_host(buf)).items():
                        moments[f"{key}.{name}"] = np.ascontiguousarray(view)
                save_file(moments, str(tmp / OPTIMIZER_FILE), metadata={"format": "np"})
                (tmp / STATE_FILE).write_text(json.dumps(trainer.state_dict()) + "\n")
                if getattr(trainer, "recorder", None) is not None and len(trainer.recorder):
                    save_history(tmp, trainer.recorder)
        if path.is_dir():
            carry_over(path, tmp, is_model_file)
        publish(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(given)


def _recover(path: Path) -> None:
    """Finish or undo an interrupted save of `path` and clean its leftovers, saying so as a warning."""
    done = recover(Path(os.path.realpath(path)))
    if done:
        warnings.warn(done, CheckpointRecovered, stacklevel=3)


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(read_json_text(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent} has no {path.name}; is it a tinylm checkpoint directory?") from None
    except NotReadable as exc:
        raise CheckpointError(f"{path} {exc}; re-save or retrain") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is damaged ({what} is not valid JSON: {exc}); re-save or retrain") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is damaged ({what} is not a JSON object)")
    return data


def _assign(views: dict[str, np.ndarray], tensors: TensorFile, where: Path, prefix: str = "") -> None:
    """Read tensors into views one at a time, checking every name, shape, dtype and value."""
    expected = {prefix + n for n in views}
    missing = sorted(expected - tensors.names())
    if missing:
        raise CheckpointError(
            f"{where} is missing tensor {missing[0]} ({len(missing)} missing); it does not match its config"
        )
    for name, view in views.items():
        shape = tensors.shape(prefix + name)
        if shape != view.shape:
            raise CheckpointError(f"{where}: tensor {prefix + name} has shape {shape}, expected {view.shape}")
        tensors.read_into(prefix + name, view)
        if not np.isfinite(view).all():
            raise CheckpointError(f"{where}: tensor {prefix + name} holds NaN or inf values")


def _checkpoint_dir(path) -> Path:
    path = Path(path)
    _recover(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file; a checkpoint is a directory holding {CONFIG_FILE} and {WEIGHTS_FILE}")
    return path


def _tokenizer(path: Path, vocab_size: int) -> Tokenizer | None:
    """The directory's tokenizer (tinylm's file, else Hugging Face's), None without one; refused when
    damaged or when its size is not the model's vocabulary."""
    try:  # exists, not is_file: a FIFO or device in its place is refused, not skipped
        tokenizer = read_tokenizer_file(path) if (path / TOKENIZER_FILE).exists() else load_hf_tokenizer(path)
    except TinyLMError as exc:  # the message names the file; the directory is added where it does not
        message = str(exc)
        raise CheckpointError(message if str(path) in message else f"{path}: {message}") from None
    if tokenizer is not None and tokenizer.vocab_size != vocab_size:
        source = next(n for n in (TOKENIZER_FILE, "tokenizer.json", "vocab.json") if (path / n).is_file())
        raise CheckpointError(
            f"{path}/{source}: tokenizer has {tokenizer.vocab_size} tokens but the model has vocab_size {vocab_size} "
            "(config.json); they must be the same vocabulary"
        )
    return tokenizer


def read_model_config(path) -> ModelConfig:
    """The ModelConfig of a checkpoint directory, from its config.json alone (nothing else is read)."""
    path = _checkpoint_dir(path)
    return model_config_from_hf(_read_json(path / CONFIG_FILE, "config.json"), path)


def load(path, *, dtype=np.float32, kernels=None) -> GPT:
    """Open a checkpoint directory (tinylm's or any Hugging Face GPT-2) as a model with its tokenizer,
    or None for the tokenizer where the directory has none. Every name and shape is checked against
    config.json and the memory needed against the memory available before anything is allocated;
    the weights are then read straight into the model's buffer (CheckpointError if anything is wrong).
    kernels: the kernel namespace to run on (default the CPU's); the weights are read on the host
    and then copied there."""
    path = _checkpoint_dir(path)
    data = _read_json(path / CONFIG_FILE, "config.json")
    cfg = model_config_from_hf(data, path)
    check_fits_in_memory(cfg, np.dtype(dtype).itemsize, path)
    tokenizer = _tokenizer(path, cfg.vocab_size)
    tensors = index_tensors(weight_files(path))
    check_tensors(tensors, cfg, data.get("tie_word_embeddings", True) is not False, path)
    model = GPT(cfg, tokenizer, dtype=dtype, init=False)
    fill_model(model, tensors)
    if not cfg.attention:
        zero_attention(model.params)  # unused here; zero so that a save stays the function computed here
    return model if kernels is None else model.on(kernels)


def open_run(path, corpus=None, *, kernels=None) -> tuple[GPT, TrainConfig, Corpus]:
    """The model, training settings and corpus of a checkpoint written with a trainer, checked so that
    training can resume from it (the trainer is then built and given restore_trainer_state)."""
    path = _checkpoint_dir(path)
    data = _read_json(path / CONFIG_FILE, "config.json")
    extra = data.get("tinylm") if isinstance(data.get("tinylm"), dict) else {}
    if "train" not in extra or not (path / STATE_FILE).exists():  # told before the weights are read
        raise CheckpointError(f"{path} holds weights only (no trainer state); it cannot resume training")
    model = load(path, dtype=np.float64 if extra.get("dtype") == "float64" else np.float32, kernels=kernels)
    try:
        tcfg = config_from_dict(TrainConfig, extra["train"]).validate()
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    info = extra.get("corpus") if isinstance(extra.get("corpus"), dict) else {}
    if corpus is None:
        if info.get("source") == "text":
            raise CheckpointError(f"{path} was trained on typed text; pass that text as the corpus to resume")
        try:
            where = info.get("path") or info.get("name")
            corpus = load_corpus(where if isinstance(where, str) else "")
        except TinyLMError as exc:
            raise CheckpointError(
                f"cannot find the corpus {path} was trained on ({exc}); pass it with --corpus"
            ) from None
    if info.get("sha256") and corpus.sha256 != info["sha256"]:
        raise CheckpointError(f"corpus {corpus.name!r} differs from the one {path} was trained on (hash mismatch)")
    if model.tokenizer is None:
        raise CheckpointError(f"{path} has no {TOKENIZER_FILE}; it cannot resume training")
    return model, tcfg, corpus


def restore_trainer_state(path, trainer) -> None:
    """Read a checkpoint's AdamW moments, step, RNG states, metrics and snapshot history into a trainer built by
    open_run (a checkpoint without a snapshot history keeps the trainer's new, empty one)."""
    path = Path(path)
    model = trainer.model
    moments = TensorFile(path / OPTIMIZER_FILE)
    unknown = sorted(moments.names() - {f"{key}.{n}" for key in ("exp_avg", "exp_avg_sq") for n in model.params})
    if unknown:
        raise CheckpointError(f"{path}/{OPTIMIZER_FILE}: tensor {unknown[0]} is not an AdamW moment of this model")
    K = trainer.kernels
    for buf, prefix in ((trainer.m, "exp_avg."), (trainer.v, "exp_avg_sq.")):
        host = K.to_host(buf)  # the buffer itself on the CPU; on a device, read on the host and copied in
        _assign(model.layout.views(host), moments, path, prefix=prefix)
        K.copy_in(buf, host)
    try:
        trainer.load_state_dict(_read_json(path / STATE_FILE, "trainer_state.json"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}/{STATE_FILE} is damaged ({exc}); re-save or retrain") from None
    if getattr(trainer, "recorder", None) is not None:
        trainer.recorder = load_history(path, model) or trainer.recorder
