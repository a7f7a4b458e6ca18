"""The KV cache watched: its logits are the full recompute's and the reference's; bytes and FLOPs
equal counts made from the shapes of the products."""

import numpy as np
import pytest

from tinylm.core import GPT, KVWatch, ModelConfig, decode_flops, kv_bytes, recompute_flops, reference, train_tokenizer

TEXT = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def model():
    tok = train_tokenizer("char", TEXT)
    m = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=2, n_head=2, n_embd=8), tok, seed=2)
    m.flat[:] = np.random.default_rng(4).normal(0, 0.3, m.flat.size).astype(np.float32)
    return m


def product_flops(cfg, rows: int, keys_per_row: list[int], head_rows: int) -> int:
    """2 m n k for each product of a forward pass, listed one by one."""
    C, V = cfg.n_embd, cfg.vocab_size
    per_layer = [(rows, C, 3 * C), (rows, C, C), (rows, C, 4 * C), (rows, 4 * C, C)]
    total = sum(2 * m * k * n for m, k, n in per_layer) * cfg.n_layer
    total += cfg.n_layer * sum(2 * 2 * k * C for k in keys_per_row)  # q.k and att.v over each row's keys
    return total + 2 * head_rows * C * V


def test_flops_and_bytes_are_counted_from_the_shapes(model):
    cfg = model.config
    for T in (1, 5, 8):
        assert recompute_flops(cfg, T) == product_flops(cfg, T, list(range(1, T + 1)), 1)
        assert decode_flops(cfg, T - 1) == product_flops(cfg, 1, [T], 1)
    assert kv_bytes(cfg, 5) == cfg.n_layer * 2 * cfg.n_head * 5 * cfg.head_size * 4


def test_each_step_fills_the_next_row_and_matches_the_recompute_and_the_reference(model):
    w = KVWatch(model, "the q")
    assert w.length == 5 and w.bytes_used == kv_bytes(model.config, 5)
    for expect_row in (5, 6, 7):
        s = w.step()
        assert s.row == expect_row and s.length == expect_row + 1 and not s.rebuilt
        ref = reference.forward(model.params, np.array(w.context), 2, model.wpe)["logits"][-1]
        np.testing.assert_allclose(w.logits, ref, rtol=1e-4, atol=1e-5)
        assert s.max_abs_diff < 1e-4
        assert s.cached_flops < s.recompute_flops
    # the context (8) is full: the next token drops the oldest quarter and rebuilds the cache
    s = w.step()
    assert s.rebuilt and s.dropped == 3 and w.length == 6 and len(w.context) == 6
    ref = reference.forward(model.params, np.array(w.context), 2, model.wpe)["logits"][-1]
    np.testing.assert_allclose(w.logits, ref, rtol=1e-4, atol=1e-5)
    k = w.cache.k[0, :, :6]  # the rebuilt cache holds the kept tokens' keys
    ref_k = reference.forward(model.params, np.array(w.context), 2, model.wpe)["h.0.k"]
    np.testing.assert_allclose(k, ref_k, rtol=1e-4, atol=1e-5)
