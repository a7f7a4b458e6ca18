"""Putting a run together: corpus -> tokenizer -> model -> trainer, plus its memory estimate."""

from __future__ import annotations

import numpy as np

from .checkpoint import load, read_model_config
from .config import ModelConfig, TrainConfig
from .corpus import Corpus, check_corpus_length
from .errors import CheckpointError, ConfigError
from .memory import available_memory
from .model import GPT
from .tokenizers import Tokenizer, train_tokenizer
from .trainer import Trainer


def make_trainer(
    corpus: Corpus,
    tokenizer_kind: str = "char",
    vocab_size: int | None = None,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    tokenizer: Tokenizer | None = None,
    *,
    dtype=np.float32,
    kernels=None,
) -> Trainer:
    """Train the tokenizer on the corpus, encode it, build a fresh model (on the kernel namespace
    `kernels`, default the CPU one) and its trainer."""
    model_config = model_config or ModelConfig()
    train_config = (train_config or TrainConfig()).validate()
    if tokenizer is None:
        tokenizer = train_tokenizer(tokenizer_kind, corpus.text, vocab_size)
    model_config.vocab_size = tokenizer.vocab_size
    model_config.validate()
    check_memory(model_config, train_config, np.dtype(dtype).itemsize)
    ids = tokenizer.encode(corpus.text)
    check_corpus_length(len(ids), model_config.block_size)
    model = GPT(model_config, tokenizer, seed=train_config.seed, dtype=dtype, kernels=kernels)
    return Trainer(model, ids, train_config, corpus=corpus)


def finetune_trainer(
    path,
    corpus: Corpus,
    train_config: TrainConfig | None = None,
    *,
    dropout: float | None = None,
    max_context: int | None = None,
    dtype=np.float32,
    kernels=None,
) -> Trainer:
    """A trainer that continues the model in `path` (a tinylm checkpoint or any Hugging Face GPT-2
    directory) on `corpus`, with that model's own tokenizer and shape; train_config.context may train
    on windows shorter than the model's context (max_context: at most this long, the model's context
    when shorter), and `dropout` replaces the model's. kernels: the backend to train on (default the CPU's)."""
    train_config = (train_config or TrainConfig()).validate()
    cfg = read_model_config(path)  # every check that needs only the config comes before the weights are read
    if max_context is not None and train_config.context is None:
        train_config.context = min(max_context, cfg.block_size)
    T = train_config.context or cfg.block_size
    if T > cfg.block_size:
        raise ConfigError(f"context {T} is longer than the {cfg.block_size} positions of the model in {path}")
    if dropout is not None:
        cfg.dropout = dropout
        cfg.validate()
    check_memory(cfg, train_config, np.dtype(dtype).itemsize)
    model = load(path, dtype=dtype, kernels=kernels)
    if model.tokenizer is None:
        raise CheckpointError(
            f"{path} has no tokenizer (tokenizer.json, or vocab.json + merges.txt); fine-tuning reads the corpus "
            "with the model's own tokenizer"
        )
    model.config.dropout = cfg.dropout
    ids = model.tokenizer.encode(corpus.text)
    check_corpus_length(len(ids), T)
    return Trainer(model, ids, train_config, corpus=corpus)


def memory_estimate(model_config: ModelConfig, train_config: TrainConfig, itemsize: int = 4) -> int:
    """Bytes of floats training allocates: weights, gradients, both AdamW moments, and the
    activation and activation-gradient buffers (see buffers.py; a second activation set for
    evaluation when dropout is on). Row shards split these buffers, not multiply them, apart from
    one more gradient per extra shard."""
    cfg = model_config
    B, T = train_config.batch_size, train_config.context or cfg.block_size
    C, L, NH, V = cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.vocab_size
    N, drop = B * T, cfg.dropout > 0

    att = B * NH * T * T  # one layer's attention weights

    def acts(dropout: bool) -> int:
        per_layer = N * (9 * C + 4)  # qkv(3C) res1 fch(4C) res2, LayerNorm means and rstds
        per_layer += 8 * N * C if dropout else 0  # both branch outputs, their masks, draws, dropped copies
        # one shared slot each of ln (C), atty (C), att and the GELU output (4C); encoded, ln_f + stats,
        # logits, probs, losses
        rest = N * (C + C + 4 * C) + att + N * (2 * C + 2 + 2 * V + 1)
        rest += 3 * N * C if dropout else 0  # embedding dropout: output, mask, draws
        return L * per_layer + rest

    # see ActivationGrads: dres, dln, the (N, 4C) MLP/attention buffer, dlogits, (dbranch); datt lives in
    # the shared GELU output when it fits
    grads = N * (6 * C + V) + (att if att > N * 4 * C else 0) + (N * C if drop else 0)
    weights = 4 * cfg.num_params()  # weights, gradients, two moments
    return itemsize * (weights + acts(drop) + grads + (acts(False) if drop else 0))


def check_memory(model_config: ModelConfig, train_config: TrainConfig, itemsize: int = 4) -> None:
    """Refuse (ConfigError) a run whose training buffers cannot fit in the memory available, before
    any of them is allocated."""
    need, have = memory_estimate(model_config, train_config, itemsize), available_memory()
    if have is not None and need > have:
        c = model_config
        raise ConfigError(
            f"training this model ({c.n_layer} layer{'s' * (c.n_layer != 1)} x {c.n_embd} wide, "
            f"context {train_config.context or c.block_size}, vocabulary "
            f"{c.vocab_size:,}, batch {train_config.batch_size}) needs about {_size(need)} of memory and "
            f"{_size(max(have, 0))} is available; choose a smaller model, context or batch"
        )


def _size(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB" if n >= 1 << 30 else f"{max(1, round(n / (1 << 20))):,} MiB"
