"""What running a model allocates beyond its weights (KV cache, a trace, a prefill), counted exactly
against the buffers the model makes, and refused before allocating when it cannot fit."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

from tinylm.core import GPT, ConfigError, ModelConfig, Sampling, get_kernels
from tinylm.core.buffers import Activations
from tinylm.core.generate import KVCache
from tinylm.core.memory import activation_bytes, generation_bytes, kv_cache_bytes, trace_bytes

CONFIGS = [
    ModelConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=16),
    ModelConfig(vocab_size=300, block_size=64, n_layer=3, n_head=4, n_embd=32, positional="sincos"),
]


def buffer_bytes(acts: Activations) -> int:
    """Bytes of every distinct array the buffers hold (views of one another counted once)."""
    seen, total = set(), 0
    for value in vars(acts).values():
        if isinstance(value, np.ndarray):
            base = value if value.base is None else value.base
            if id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
    return total


@pytest.mark.parametrize("cfg", CONFIGS, ids=["toy", "sincos"])
@pytest.mark.parametrize("keep_scores", [False, True], ids=["prefill", "trace"])
@pytest.mark.parametrize("T", [1, 7, 32])
def test_activation_bytes_are_the_buffers_a_pass_makes(cfg, keep_scores, T):
    acts = Activations(cfg, 1, T, np.float32, get_kernels("cpu"), keep_scores=keep_scores)
    assert activation_bytes(cfg, T, keep_scores=keep_scores) == buffer_bytes(acts)
    acts64 = Activations(cfg, 1, T, np.float64, get_kernels("cpu"), keep_scores=keep_scores)
    assert activation_bytes(cfg, T, keep_scores=keep_scores, itemsize=8) == buffer_bytes(acts64)


def test_kv_cache_bytes_are_layers_times_k_and_v_times_positions_times_width():
    gpt2 = ModelConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    assert kv_cache_bytes(gpt2) == 12 * 2 * 1024 * 768 * 4  # 72 MiB per sequence
    for cfg in CONFIGS:
        cache = KVCache(GPT(cfg, seed=0))
        assert kv_cache_bytes(cfg) == cache.k.nbytes + cache.v.nbytes


def peak_of(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


SLACK = 48 << 10  # what a pass allocates besides its buffers: Python objects, the token labels, small arrays


@pytest.mark.parametrize("T", [8, 64])
def test_trace_and_generation_estimates_match_what_they_allocate(T):
    cfg = ModelConfig(vocab_size=300, block_size=64, n_layer=3, n_head=4, n_embd=32)
    model = GPT(cfg, seed=0)
    ids = np.arange(T) % cfg.vocab_size
    model.trace(ids[:3]), list(model.generate(ids[:3], Sampling(greedy=True), 2))  # kernels loaded, caches made
    peak, tr = peak_of(lambda: model.trace(ids))
    kept = sum(a.nbytes for a in tr.arrays.values() if a.base is None)  # what the trace holds on to
    assert trace_bytes(cfg, T) >= kept
    assert abs(trace_bytes(cfg, T) - peak) < 0.1 * peak + SLACK, (trace_bytes(cfg, T), peak)
    long = ModelConfig(vocab_size=300, block_size=512, n_layer=3, n_head=4, n_embd=32)  # the KV cache dominates
    model = GPT(long, seed=0)
    list(model.generate(ids[:3], Sampling(greedy=True), 2))
    model.release_buffers()
    peak, _ = peak_of(lambda: next(iter(model.generate(ids, Sampling(greedy=True), 1))))
    assert abs(generation_bytes(long, T) - peak) < 0.1 * peak + SLACK, (generation_bytes(long, T), peak)


def test_a_trace_or_generation_that_cannot_fit_is_refused_before_allocating(monkeypatch):
    cfg = ModelConfig(vocab_size=300, block_size=64, n_layer=3, n_head=4, n_embd=32)
    model = GPT(cfg, seed=0)
    ids = np.arange(40)
    monkeypatch.setattr("tinylm.core.memory.available_memory", lambda: trace_bytes(cfg, 40) - 1)
    with pytest.raises(ConfigError, match=r"a trace of 40 tokens of this model needs about .* use a shorter prompt"):
        model.trace(ids)
    model.trace(ids[:20])  # a shorter one fits
    monkeypatch.setattr("tinylm.core.memory.available_memory", lambda: generation_bytes(cfg, 40) - 1)
    with pytest.raises(ConfigError, match=r"KV cache of .* for its 64 positions"):
        next(iter(model.generate(ids, Sampling(greedy=True), 1)))
    monkeypatch.setattr("tinylm.core.memory.available_memory", lambda: generation_bytes(cfg, 40))
    next(iter(model.generate(ids, Sampling(greedy=True), 1)))


def test_loading_counts_the_kv_cache_of_one_sequence(tmp_path, monkeypatch):
    from tinylm.core import CheckpointError, load, save_checkpoint, train_tokenizer
    from tinylm.core.memory import weight_bytes

    tok = train_tokenizer("char", "abcdefgh ")
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=4096, n_layer=2, n_head=2, n_embd=16)
    save_checkpoint(tmp_path / "m", GPT(cfg, tok, seed=0))
    need = weight_bytes(cfg) + kv_cache_bytes(cfg)
    assert kv_cache_bytes(cfg) > weight_bytes(cfg)  # a long context: the cache is most of it
    monkeypatch.setattr("tinylm.core.hf_config.available_memory", lambda: need - 1)
    with pytest.raises(CheckpointError, match=r"for its weights and 1 MiB for the KV cache of one sequence, more than"):
        load(tmp_path / "m")
    monkeypatch.setattr("tinylm.core.hf_config.available_memory", lambda: need)
    assert load(tmp_path / "m").config.block_size == 4096
