"""Generation: the KV cache against full forward passes; sampling filters against hand computation."""

import functools
import importlib

import numba
import numpy as np
import pytest

from tinylm.core import GPT, ConfigError, ModelConfig, Sampling, train_tokenizer
from tinylm.core.generate import KVCache
from tinylm.core.sampling import draw, filtered_distribution, softmax
from tinylm.core.threads import kernel_settings


def model_with_tokenizer(block_size=12, dtype=np.float32):
    tok = train_tokenizer("char", "the quick brown fox jumps over the lazy dog.\n")
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16)
    model = GPT(cfg, tok, seed=3, dtype=dtype)
    model.flat[:] = np.random.default_rng(0).normal(0, 0.2, model.flat.size)
    return model


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "blas"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_kv_cache_logits_equal_full_forward_at_every_position(dtype, tol, fused):
    """Both decoding paths (one fused Numba call; BLAS products between small kernels) against
    the model's full forward pass."""
    model = model_with_tokenizer(dtype=dtype)
    ids = model.tokenizer.encode("the fox ju")[:10]
    cache = KVCache(model, fused=fused)
    assert cache.fused == fused
    cache.prefill(ids[:2])
    for t in range(2, len(ids)):
        step_logits = cache.step(ids[t]).copy()
        model.forward(ids[None, : t + 1])
        full = model.last_activations.logits[-1]  # in the model's own dtype (B = 1: rows are positions)
        assert np.abs(step_logits - full).max() < tol


def test_last_only_forward_gives_the_last_positions_logits():
    model = model_with_tokenizer(dtype=np.float64)
    ids = np.random.default_rng(1).integers(0, model.config.vocab_size, (3, 7))
    model.forward(ids)
    full = model.last_activations.logits.reshape(3, 7, -1)[:, -1].copy()  # float64, as the model computes
    model.forward(ids, last_only=True)
    np.testing.assert_allclose(model.last_activations.logits[:3], full, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="last_only"):
        model.forward(ids, ids, last_only=True)


def test_large_models_split_the_fused_step_and_every_path_generates_the_same_tokens(monkeypatch):
    gen = importlib.import_module("tinylm.core.generate")  # the module, not the function core exports

    model = model_with_tokenizer(block_size=8)
    assert KVCache(model).fused and not KVCache(model).split  # a small model: one serial call per token
    serial = [s.id for s in model.generate("the fox", Sampling(greedy=True), 30)]
    monkeypatch.setattr(gen, "SPLIT_DECODE_BYTES", 0)
    monkeypatch.setattr("tinylm.core.parallel.SPLIT_MIN_BYTES", 0)  # prefills on a split replica too
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        with kernel_settings(parallel=True, min_parallel_work=0):
            assert KVCache(model).split
            steps = list(model.generate("the fox", Sampling(greedy=True), 30))  # through two cache refills
    finally:
        numba.set_num_threads(previous)
    assert [s.id for s in steps] == serial
    np.testing.assert_allclose(steps[0].raw_probs, model.next_token_probs("the fox"), atol=1e-6)
    monkeypatch.setattr(gen, "KVCache", functools.partial(KVCache, fused=False))  # the per-operation path
    assert [s.id for s in model.generate("the fox", Sampling(greedy=True), 30)] == serial


def _decode_with(cache, ids, step, parts):
    """Logits (steps, V) of ids[2:] decoded after a prefill of ids[:2], each step by step(..., parts)."""
    m = cache.model
    cache.prefill(ids[:2])
    out = []
    for token in ids[2:]:
        step(
            cache.logits, cache._x, cache._xn, cache._qkv, cache._y, cache._fc, cache._att, m.flat, cache.offs,
            cache.wte_off, cache.lnf_off, cache.wpe, cache.k, cache.v, int(token), cache.length, m.config.n_head,
            m.config.layer_norm_epsilon, parts,
        )  # fmt: skip
        cache.length += 1
        out.append(cache.logits.copy())
    return np.array(out)


@pytest.mark.parametrize(
    "C, NH, dtype, tol", [(16, 2, np.float64, 1e-10), (40, 4, np.float32, 2e-5), (768, 12, np.float32, 1e-5)]
)
def test_split_decode_step_equals_the_full_forward_and_the_blas_path(C, NH, dtype, tol):
    """The fused step's products split into 1 to 3 blocks of input rows (and the LM head into blocks of
    vocabulary rows; uneven blocks, or one empty, at small widths), serial and parallel compilations,
    at a small width and GPT-2's:
    every position's logits against the full forward pass and the BLAS-products path (relative to the
    largest logit)."""
    K = importlib.import_module("tinylm.kernels")
    cfg = ModelConfig(vocab_size=203, block_size=9, n_layer=2, n_head=NH, n_embd=C)
    model = GPT(cfg, seed=5, dtype=dtype)
    model.flat[:] = np.random.default_rng(1).normal(0, 0.3 / np.sqrt(C / 16), model.flat.size)
    ids = np.random.default_rng(2).integers(0, cfg.vocab_size, cfg.block_size)
    model.forward(ids[None, :])
    full = model.last_activations.logits[2:].astype(np.float64)  # (T - 2, V): rows are positions (B = 1)
    blas_cache = KVCache(model, fused=False)
    blas_cache.prefill(ids[:2])
    blas = np.array([blas_cache.step(t).copy() for t in ids[2:]], np.float64)
    scale = np.abs(full).max()
    assert np.abs(blas - full).max() < tol * scale
    for step in (K.decode_step.serial, K.decode_step.parallel):
        for parts in (1, 2, 3):
            got = _decode_with(KVCache(model), ids, step, parts)
            assert np.abs(got - full).max() < tol * scale, (step, parts)
            assert np.abs(got - blas).max() < tol * scale, (step, parts)


def test_generation_past_the_context_keeps_going_and_matches_a_cropped_forward():
    model = model_with_tokenizer(block_size=8)
    steps = list(model.generate("the fox", Sampling(greedy=True), max_new_tokens=30))
    assert len(steps) == 30
    # Greedy: each token is the argmax of its distribution, which is a real softmax.
    for s in steps:
        assert s.probs[s.id] == 1.0 and abs(s.raw_probs.sum() - 1) < 1e-9


def test_generate_is_seeded():
    model = model_with_tokenizer()
    a = [s.id for s in model.generate("the", Sampling(temperature=1.5, seed=11), 20)]
    b = [s.id for s in model.generate("the", Sampling(temperature=1.5, seed=11), 20)]
    c = [s.id for s in model.generate("the", Sampling(temperature=1.5, seed=12), 20)]
    assert a == b and a != c


def test_first_generated_distribution_is_the_models_next_token_distribution():
    model = model_with_tokenizer()
    first = next(model.generate("the lazy", Sampling(seed=0)))
    np.testing.assert_allclose(first.raw_probs, model.next_token_probs("the lazy"), atol=1e-6)
    np.testing.assert_allclose(first.raw_probs, model.trace("the lazy")["probs"][-1], atol=1e-6)


def test_prompt_longer_than_context_keeps_last_block_size_tokens():
    model = model_with_tokenizer(block_size=6)
    ids = model.encode_prompt("the quick brown fox")
    assert len(ids) == 6 and model.tokenizer.decode(ids) == "wn fox"


def test_empty_prompt_is_a_clear_error():
    with pytest.raises(ConfigError, match="prompt is empty"):
        model_with_tokenizer().encode_prompt("")


LOGITS = np.array([2.0, 1.0, 0.5, -1.0, 0.0])


def test_temperature_scales_logits():
    p = filtered_distribution(LOGITS, Sampling(temperature=0.5))
    np.testing.assert_allclose(p, softmax(LOGITS / 0.5))


def test_top_k_keeps_k_largest_and_renormalises():
    p = filtered_distribution(LOGITS, Sampling(top_k=2))
    e = np.exp(LOGITS[:2] - 2.0)
    np.testing.assert_allclose(p, np.r_[e / e.sum(), 0, 0, 0])


def test_top_p_keeps_smallest_set_reaching_p():
    probs = softmax(LOGITS)  # sorted: 0.563, 0.207, 0.126, 0.076, 0.028
    order = np.argsort(-probs)
    p = filtered_distribution(LOGITS, Sampling(top_p=0.7))
    keep = order[: int(np.searchsorted(np.cumsum(probs[order]), 0.7)) + 1]
    expected = np.zeros_like(probs)
    expected[keep] = probs[keep] / probs[keep].sum()
    np.testing.assert_allclose(p, expected)
    assert (p > 0).sum() == 2  # 0.563 < 0.7 <= 0.770


def test_filters_combine_and_greedy_is_one_hot():
    p = filtered_distribution(LOGITS, Sampling(temperature=2.0, top_k=3, top_p=0.5))
    assert (p > 0).sum() <= 3 and abs(p.sum() - 1) < 1e-12
    g = filtered_distribution(LOGITS, Sampling(greedy=True))
    assert g[0] == 1 and g.sum() == 1


def test_draw_follows_the_distribution():
    rng = np.random.default_rng(0)
    probs = np.array([0.1, 0.0, 0.6, 0.3])
    counts = np.bincount([draw(probs, rng) for _ in range(20000)], minlength=4) / 20000
    np.testing.assert_allclose(counts, probs, atol=0.015)
    assert counts[1] == 0


@pytest.mark.parametrize("kw", [dict(temperature=0), dict(top_k=-1), dict(top_p=0), dict(top_p=1.5)])
def test_invalid_sampling_is_refused(kw):
    with pytest.raises(ConfigError):
        Sampling(**kw).validate()


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_column_split_products_equal_numpys(parts):
    from tinylm.core.parallel import ColumnSplit

    rng = np.random.default_rng(parts)
    x, w, wt = rng.normal(size=7), rng.normal(size=(7, 10)), rng.normal(size=(11, 7))
    out, out_t = np.zeros(10), np.zeros(11)
    with ColumnSplit(parts) as split:
        split.matvec(out, x, w)
        split.matvec_t(out_t, wt, x)
    np.testing.assert_allclose(out, x @ w, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(out_t, wt @ x, rtol=1e-13, atol=1e-13)
    rows, big, big_t = rng.normal(size=(5, 7)), np.zeros((5, 10)), np.zeros((5, 11))
    with ColumnSplit(parts) as split:
        split.matmul(big, rows, w)
        split.matmul_t(big_t, rows, wt)
    np.testing.assert_allclose(big, rows @ w, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(big_t, rows @ wt.T, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("attention", [True, False])
def test_the_gpus_decoding_step_matches_the_full_forward_pass(attention):
    """The step a GPU takes (the forward kernels on one row, attend_one, kv_store), run on the CPU
    kernels: each position's logits equal those of a full pass over the whole prefix."""
    model = GPT(ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=30, attention=attention), seed=1)
    cache = KVCache(model)
    cache.on_device = True  # take the GPU's path with the CPU's kernels
    cache._device_buffers(model.kernels.zeros, model.dtype)
    ids = [3, 5, 7]
    got = [cache.prefill(np.array(ids)).copy()]
    for token in (9, 2, 11, 4, 0):  # to the last position of the context
        ids.append(token)
        got.append(cache.step(token).copy())
    full = model.logits(np.array([ids]))[0]
    np.testing.assert_allclose(np.array(got), full[2:], rtol=0, atol=1e-5)
