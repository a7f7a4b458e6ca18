"""Putting a run together: corpus -> tokenizer -> model -> trainer, plus sizing and thread caps."""

from __future__ import annotations

import numpy as np

from .config import ModelConfig, TrainConfig
from .corpus import Corpus, check_corpus_length
from .model import GPT
from .tokenizers import Tokenizer, train_tokenizer
from .trainer import Trainer


def make_trainer(corpus: Corpus, tokenizer_kind: str = "char", vocab_size: int | None = None,
                 model_config: ModelConfig | None = None, train_config: TrainConfig | None = None,
                 tokenizer: Tokenizer | None = None, *, dtype=np.float32) -> Trainer:
    """Train the tokenizer on the corpus, encode it, build a fresh model and its trainer."""
    model_config = model_config or ModelConfig()
    train_config = (train_config or TrainConfig()).validate()
    if tokenizer is None:
        tokenizer = train_tokenizer(tokenizer_kind, corpus.text, vocab_size)
    model_config.vocab_size = tokenizer.vocab_size
    model_config.validate()
    ids = tokenizer.encode(corpus.text)
    check_corpus_length(len(ids), model_config.block_size)
    model = GPT(model_config, tokenizer, seed=train_config.seed, dtype=dtype)
    return Trainer(model, ids, train_config, corpus=corpus)


def memory_estimate(model_config: ModelConfig, train_config: TrainConfig, itemsize: int = 4) -> int:
    """Bytes for weights, gradients, both AdamW moments and the training activations."""
    cfg = model_config
    B, T, C, L, NH, V = train_config.batch_size, cfg.block_size, cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.vocab_size
    weights = 4 * cfg.num_params()  # weights, gradients, two moments
    per_layer = B * T * 18 * C + B * NH * T * T + 4 * B * T  # see Activations
    acts = L * per_layer + B * T * (2 * C + 2 * V + 3)
    grads = B * T * (9 * C + 2 * 4 * C + V) + B * NH * T * T  # see ActivationGrads
    return itemsize * (weights + acts + grads)


def limit_threads(n: int) -> None:
    """Cap BLAS and Numba threads at n (for a UI that must keep a core, or a fair benchmark)."""
    import numba
    from threadpoolctl import threadpool_limits

    n = max(1, int(n))
    threadpool_limits(limits=n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
