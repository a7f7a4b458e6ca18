"""Every kernel against the numpy oracle in kernels/reference.py, plus finite differences.

float64 must match the oracle to ~1e-12 (relative to the output's scale), float32 to ~1e-5
(the oracle then runs in float64 on the same float32 inputs). WRITES outputs are pre-filled
with NaN so an unwritten element shows; ADDS outputs are pre-filled with known values.
Also run once with NUMBA_DISABLE_JIT=1.
"""

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinylm.kernels as K
from tinylm.kernels import reference as R

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
FD_TOL = 1e-6
# (B, T, C, NH): T=1, head size 1 (C == NH), odd sizes, a small "real" one, everything 1
ATTN_SHAPES = [(1, 1, 4, 2), (2, 5, 3, 3), (3, 7, 6, 3), (2, 8, 16, 4), (1, 1, 1, 1), (1, 9, 8, 1)]
ROW_SHAPES = [(1, 1), (1, 5), (7, 6), (21, 13), (4, 64)]


def rng_for(*key):
    """A generator seeded by key; crc32, not hash(): str hashes change per process (PYTHONHASHSEED)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def randn(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype)


def f64(x):
    return np.asarray(x, dtype=np.float64)


def rel_err(got, want, scale=None):
    """max |got - want| / scale, by default scale = max |want|."""
    got, want = f64(got), f64(want)
    assert got.shape == want.shape
    if got.size == 0:
        return 0.0
    scale = max(np.max(np.abs(want)) if scale is None else scale, 1e-30)
    return float(np.max(np.abs(got - want)) / scale)


def assert_close(got, want, dtype, tol=None, scale=None):
    assert not np.any(np.isnan(got)), "kernel left NaN (unwritten output?)"
    err = rel_err(got, want, scale)
    assert err <= (tol or TOL[dtype]), f"relative error {err:.3g}"


def fd_check(loss, x, analytic, h=1e-5):
    """Central differences of scalar loss() w.r.t. every element of x (float64), in place."""
    num = np.zeros_like(x)
    flat, gflat = x.reshape(-1), num.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = loss()
        flat[i] = old - h
        down = loss()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    err = np.linalg.norm(num - analytic) / max(np.linalg.norm(num), 1e-30)
    assert err < FD_TOL, f"finite-difference relative error {err:.3g}"


# ---------------------------------------------------------------- package


def test_public_kernels_exported():
    for name in K.__all__:
        assert callable(getattr(K, name))


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no dispatchers without JIT")
def test_jitted_kernels_are_nogil_and_cached():
    from tinylm.kernels import attention, matmul

    # Python wrappers around BLAS (np.matmul releases the GIL) and the jitted kernels they call
    wrappers = {
        "matmul_forward",
        "matmul_backward",
        "lm_head_forward",
        "lm_head_backward",
        "attention_forward",
        "attention_backward",
        "zeros",  # the namespace's allocator (np.zeros), not a kernel
        "from_host",  # and its moves between buffers and the host (numpy calls)
        "to_host",
        "copy_in",
        "fill_zero",
    }
    helpers = [matmul._add_bias, matmul._bias_grad, attention._softmax_rows, attention._softmax_backward_rows]
    kernels = []
    for kernel in [getattr(K, name) for name in K.__all__ if name not in wrappers] + helpers:
        # a parallel kernel is a Python chooser over two dispatchers, cached under separate names
        kernels += [kernel.serial, kernel.parallel] if hasattr(kernel, "parallel") else [kernel]
    assert len({k.py_func.__qualname__ for k in kernels}) == len(kernels)
    for kernel in kernels:
        name = kernel.py_func.__name__
        opts = kernel.targetoptions
        assert opts.get("nogil"), name
        assert type(kernel._cache).__name__ != "NullCache", name  # cache=True
        assert not ({"nnan", "ninf"} & set(opts.get("fastmath", ()))), name


def _import_env(**overrides):
    code = "import os, tinylm.kernels; print(os.environ.get('NUMBA_CACHE_DIR'))"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(overrides)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_numba_cache_dir_defaults_to_user_cache(tmp_path):
    got = _import_env(XDG_CACHE_HOME=str(tmp_path))
    assert got == str(tmp_path / "tinylm" / "numba")
    assert (tmp_path / "tinylm" / "numba").is_dir()


def test_numba_cache_dir_respected_when_set(tmp_path):
    assert _import_env(NUMBA_CACHE_DIR=str(tmp_path / "mine")) == str(tmp_path / "mine")


# ---------------------------------------------------------------- encoder


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("id_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("B,T,C,V,Tmax", [(1, 1, 1, 2, 1), (3, 7, 6, 11, 9), (2, 4, 5, 2, 4)])
def test_encoder(dtype, id_dtype, B, T, C, V, Tmax):
    rng = rng_for("enc", B, T, C)
    ids = rng.integers(0, V, (B, T)).astype(id_dtype)
    wte, wpe = randn(rng, (V, C), dtype), randn(rng, (Tmax, C), dtype)
    out = nans((B, T, C), dtype)
    K.encoder_forward(out, ids, wte, wpe)
    assert_close(out, R.encoder_forward(ids, f64(wte), f64(wpe)), dtype)

    dout = randn(rng, (B, T, C), dtype)
    dwte0, dwpe0 = randn(rng, (V, C), dtype), randn(rng, (Tmax, C), dtype)
    dwte, dwpe = dwte0.copy(), dwpe0.copy()
    K.encoder_backward(dwte, dwpe, dout, ids)  # ADDS
    want_te, want_pe = R.encoder_backward(f64(dout), ids, V, Tmax)
    assert_close(dwte, f64(dwte0) + want_te, dtype)
    assert_close(dwpe, f64(dwpe0) + want_pe, dtype)

    dwte = dwte0.copy()
    K.encoder_backward(dwte, np.zeros((0, C), dtype), dout, ids)  # no position gradient
    assert_close(dwte, f64(dwte0) + want_te, dtype)


def test_encoder_rejects_bad_ids():
    wte, wpe = np.zeros((3, 2)), np.zeros((4, 2))
    with pytest.raises(IndexError):
        K.encoder_forward(np.zeros((1, 2, 2)), np.array([[0, 3]]), wte, wpe)
    with pytest.raises(ValueError):
        K.encoder_forward(np.zeros((1, 5, 2)), np.zeros((1, 5), np.int64), wte, wpe)


# ---------------------------------------------------------------- layernorm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C", ROW_SHAPES)
def test_layernorm(dtype, N, C):
    rng = rng_for("ln", N, C)
    inp = randn(rng, (N, C), dtype, 2.0) + dtype(3.0)  # an offset exercises the two-pass variance
    weight, bias = randn(rng, C, dtype), randn(rng, C, dtype)
    out, mean, rstd = nans((N, C), dtype), nans(N, dtype), nans(N, dtype)
    K.layernorm_forward(out, mean, rstd, inp, weight, bias, 1e-5)
    w_out, w_mean, w_rstd = R.layernorm_forward(f64(inp), f64(weight), f64(bias), 1e-5)
    assert_close(out, w_out, dtype)
    assert_close(mean, w_mean, dtype)
    assert_close(rstd, w_rstd, dtype)

    dout = randn(rng, (N, C), dtype)
    pre = [randn(rng, s, dtype) for s in [(N, C), C, C]]
    dinp, dweight, dbias = (p.copy() for p in pre)
    K.layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd)  # ADDS
    wants = R.layernorm_backward(f64(dout), f64(inp), f64(weight), f64(mean), f64(rstd))
    for got, p, want in zip((dinp, dweight, dbias), pre, wants):
        assert_close(got, f64(p) + want, dtype, tol=TOL[dtype] * 10)


@pytest.mark.parametrize("N,C", [(1, 1), (3, 5), (4, 8)])
def test_layernorm_finite_differences(N, C):
    rng = rng_for("lnfd", N, C)
    inp, weight, bias = randn(rng, (N, C), np.float64), randn(rng, C, np.float64), randn(rng, C, np.float64)
    proj = randn(rng, (N, C), np.float64)
    out, mean, rstd = np.empty((N, C)), np.empty(N), np.empty(N)

    def loss():
        K.layernorm_forward(out, mean, rstd, inp, weight, bias, 1e-5)
        return float((out * proj).sum())

    loss()
    dinp, dweight, dbias = np.zeros((N, C)), np.zeros(C), np.zeros(C)
    K.layernorm_backward(dinp, dweight, dbias, proj, inp, weight, mean, rstd)
    if C > 1:  # with C == 1 the output does not depend on inp at all
        fd_check(loss, inp, dinp)
    fd_check(loss, weight, dweight)
    fd_check(loss, bias, dbias)


# ---------------------------------------------------------------- matmul and LM head


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C,OC", [(1, 1, 1), (7, 6, 18), (21, 13, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matmul(dtype, N, C, OC, with_bias):
    rng = rng_for("mm", N, C, OC)
    inp, weight = randn(rng, (N, C), dtype), randn(rng, (C, OC), dtype)
    bias = randn(rng, OC, dtype) if with_bias else np.zeros(0, dtype)
    out = nans((N, OC), dtype)
    K.matmul_forward(out, inp, weight, bias)
    assert_close(out, R.matmul_forward(f64(inp), f64(weight), f64(bias)), dtype)

    dout = randn(rng, (N, OC), dtype)
    dinp, dweight = nans((N, C), dtype), nans((C, OC), dtype)  # WRITES
    dbias = nans(OC, dtype) if with_bias else np.zeros(0, dtype)
    K.matmul_backward(dinp, dweight, dbias, dout, inp, weight)
    w_dinp, w_dweight, w_dbias = R.matmul_backward(f64(dout), f64(inp), f64(weight))
    assert_close(dinp, w_dinp, dtype)
    assert_close(dweight, w_dweight, dtype)
    if with_bias:
        assert_close(dbias, w_dbias, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C,V", [(1, 1, 2), (7, 6, 11), (12, 8, 65)])
def test_lm_head(dtype, N, C, V):
    rng = rng_for("lm", N, C, V)
    inp, wte = randn(rng, (N, C), dtype), randn(rng, (V, C), dtype)
    out = nans((N, V), dtype)
    K.lm_head_forward(out, inp, wte)
    assert_close(out, R.lm_head_forward(f64(inp), f64(wte)), dtype)
    dlogits = randn(rng, (N, V), dtype)
    dinp, dwte = nans((N, C), dtype), nans((V, C), dtype)
    K.lm_head_backward(dinp, dwte, dlogits, inp, wte)
    w_dinp, w_dwte = R.lm_head_backward(f64(dlogits), f64(inp), f64(wte))
    assert_close(dinp, w_dinp, dtype)
    assert_close(dwte, w_dwte, dtype)


# ---------------------------------------------------------------- attention


def run_attention(qkv, n_head, with_pre=True):
    B, T, C3 = qkv.shape
    dtype = qkv.dtype
    out, att = nans((B, T, C3 // 3), dtype), nans((B, n_head, T, T), dtype)
    pre = nans((B, n_head, T, T), dtype) if with_pre else np.zeros(0, dtype)
    K.attention_forward(out, att, pre, qkv, n_head)
    return out, att, pre


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,T,C,NH", ATTN_SHAPES)
def test_attention(dtype, B, T, C, NH):
    rng = rng_for("att", B, T, C, NH)
    qkv = randn(rng, (B, T, 3 * C), dtype, 1.5)
    out, att, pre = run_attention(qkv, NH)
    w_out, w_att, w_pre = R.attention_forward(f64(qkv), NH)
    assert_close(out, w_out, dtype)
    assert_close(att, w_att, dtype)
    lower = np.tril(np.ones((T, T), dtype=bool))
    assert_close(pre[..., lower], w_pre[..., lower], dtype)

    # causal structure: exact zeros / -inf above the diagonal, rows are distributions
    upper = ~lower
    assert np.all(att[..., upper] == 0.0)
    assert np.all(np.isneginf(pre[..., upper]))
    assert np.all(np.isfinite(pre[..., lower]))
    np.testing.assert_allclose(att.sum(axis=-1), 1.0, rtol=TOL[dtype] * 10)
    assert np.all(att[..., 0, 0] == 1.0)

    # without preatt the other outputs are identical
    out2, att2, _ = run_attention(qkv, NH, with_pre=False)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(att2, att)

    dout = randn(rng, (B, T, C), dtype)
    dqkv = nans((B, T, 3 * C), dtype)  # WRITES
    datt = nans((B, NH, T, T), dtype)  # scratch
    K.attention_backward(dqkv, datt, dout, qkv, att, NH)
    assert_close(dqkv, R.attention_backward(f64(dout), f64(qkv), f64(att), NH), dtype, tol=TOL[dtype] * 10)


def test_attention_reuses_buffers():
    """Second call with different inputs leaves nothing of the first (WRITES, incl. dqkv zeroing)."""
    rng = rng_for("att-reuse")
    B, T, C, NH = 2, 6, 8, 2
    out, att, pre = (np.empty(s) for s in [(B, T, C), (B, NH, T, T), (B, NH, T, T)])
    dqkv, datt = np.empty((B, T, 3 * C)), np.empty((B, NH, T, T))
    for _ in range(2):
        qkv, dout = randn(rng, (B, T, 3 * C), np.float64), randn(rng, (B, T, C), np.float64)
        K.attention_forward(out, att, pre, qkv, NH)
        K.attention_backward(dqkv, datt, dout, qkv, att, NH)
    w_out, w_att, _ = R.attention_forward(qkv, NH)
    assert_close(out, w_out, np.float64)
    assert_close(dqkv, R.attention_backward(dout, qkv, w_att, NH), np.float64, tol=1e-11)


def test_attention_large_scores_are_stable():
    qkv = np.zeros((1, 4, 6))
    qkv[..., :4] = 300.0  # q and k large: scores ~ 1e5, exp would overflow without the max shift
    out, att, _ = run_attention(qkv, 1)
    assert np.all(np.isfinite(att)) and np.all(np.isfinite(out))
    np.testing.assert_allclose(att.sum(axis=-1), 1.0)


@pytest.mark.parametrize("B,T,C,NH", [(1, 1, 2, 1), (2, 4, 3, 3), (1, 5, 4, 2), (2, 3, 6, 3)])
def test_attention_finite_differences(B, T, C, NH):
    rng = rng_for("attfd", B, T, C, NH)
    qkv, proj = randn(rng, (B, T, 3 * C), np.float64), randn(rng, (B, T, C), np.float64)
    out, att, pre = np.empty((B, T, C)), np.empty((B, NH, T, T)), np.zeros(0)

    def loss():
        K.attention_forward(out, att, pre, qkv, NH)
        return float((out * proj).sum())

    loss()
    dqkv = np.empty_like(qkv)
    K.attention_backward(dqkv, np.empty((B, NH, T, T)), proj, qkv, att, NH)
    fd_check(loss, qkv, dqkv)


@settings(max_examples=25, deadline=None)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 9),
    NH=st.integers(1, 4),
    HS=st.integers(1, 5),
    seed=st.integers(0, 2**31),
)
def test_attention_random_shapes(B, T, NH, HS, seed):
    rng = np.random.default_rng(seed)
    C = NH * HS
    qkv = randn(rng, (B, T, 3 * C), np.float64)
    out, att, _ = run_attention(qkv, NH)
    w_out, w_att, _ = R.attention_forward(qkv, NH)
    assert_close(out, w_out, np.float64)
    assert_close(att, w_att, np.float64)
    dout = randn(rng, (B, T, C), np.float64)
    dqkv = np.empty_like(qkv)
    K.attention_backward(dqkv, np.empty_like(att), dout, qkv, att, NH)
    assert_close(dqkv, R.attention_backward(dout, qkv, att, NH), np.float64, tol=1e-11)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (3, 7, 24), (5, 13)])
def test_gelu(dtype, shape):
    rng = rng_for("gelu", shape)
    inp = randn(rng, shape, dtype, 3.0)
    out = nans(shape, dtype)
    # errors scale with |x| (the reference's 1 + tanh(u) cancels for negative x), not |gelu(x)|
    K.gelu_forward(out, inp)
    assert_close(out, R.gelu_forward(f64(inp)), dtype, scale=np.abs(f64(inp)).max())
    dout = randn(rng, shape, dtype)
    dinp = nans(shape, dtype)
    K.gelu_backward(dinp, inp, dout)
    want = R.gelu_backward(f64(inp), f64(dout))
    assert_close(dinp, want, dtype, scale=np.abs(f64(dout)).max() * 1.2)
    inplace = dout.copy()
    K.gelu_backward_inplace(inplace, inp)
    np.testing.assert_array_equal(inplace, dinp)  # the same arithmetic, written over dout


def test_gelu_extremes():
    inp = np.array([-50.0, -10.0, 0.0, 10.0, 50.0, np.inf, -np.inf])
    out = np.empty_like(inp)
    K.gelu_forward(out, inp)
    np.testing.assert_allclose(out[:5], [0.0, 0.0, 0.0, 10.0, 50.0], atol=1e-12)
    assert out[5] == np.inf
    dinp = np.empty(5)
    K.gelu_backward(dinp, inp[:5], np.ones(5))
    np.testing.assert_allclose(dinp, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-12)


def test_gelu_finite_differences():
    rng = rng_for("gelufd")
    inp, proj = randn(rng, (4, 9), np.float64, 2.0), randn(rng, (4, 9), np.float64)
    out = np.empty_like(inp)

    def loss():
        K.gelu_forward(out, inp)
        return float((out * proj).sum())

    dinp = np.empty_like(inp)
    K.gelu_backward(dinp, inp, proj)
    fd_check(loss, inp, dinp)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,V", [(1, 2), (7, 11), (12, 65), (3, 1)])
def test_softmax(dtype, N, V):
    rng = rng_for("sm", N, V)
    inp = randn(rng, (N, V), dtype, 4.0)
    inp[0] += dtype(500.0)  # large logits: must not overflow
    out = nans((N, V), dtype)
    K.softmax_forward(out, inp)
    assert_close(out, R.softmax_forward(f64(inp)), dtype)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (3, 7, 6), (4, 5)])
def test_residual_and_add(dtype, shape):
    rng = rng_for("res", shape)
    a, b = randn(rng, shape, dtype), randn(rng, shape, dtype)
    out = nans(shape, dtype)
    K.residual_forward(out, a, b)
    np.testing.assert_array_equal(out, a + b)
    dst = a.copy()
    K.add_inplace(dst, b)
    np.testing.assert_array_equal(dst, a + b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("shape", [(1,), (3, 7, 6)])
def test_dropout(dtype, p, shape):
    rng = rng_for("drop", shape, p)
    inp, rand = randn(rng, shape, dtype), rng.random(shape).astype(dtype)
    out, mask = nans(shape, dtype), nans(shape, dtype)
    K.dropout_forward(out, mask, inp, rand, p)
    w_out, w_mask = R.dropout_forward(f64(inp), f64(rand), p)
    assert_close(mask, w_mask, dtype)
    assert_close(out, w_out, dtype)
    if p == 0.0:
        assert np.all(mask == 1.0) and np.array_equal(out, inp)
    dout = randn(rng, shape, dtype)
    dinp = nans(shape, dtype)
    K.dropout_backward(dinp, dout, mask)
    assert_close(dinp, R.dropout_backward(f64(dout), f64(mask)), dtype)


def test_dropout_rejects_p_one():
    x = np.ones(3)
    with pytest.raises(ValueError):
        K.dropout_forward(x.copy(), x.copy(), x, x, 1.0)


# ---------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tdtype", [np.int64, np.int32])
@pytest.mark.parametrize("N,V", [(1, 2), (7, 11), (12, 65), (5, 1)])
def test_crossentropy(dtype, tdtype, N, V):
    rng = rng_for("ce", N, V)
    logits = randn(rng, (N, V), dtype, 3.0)
    logits[0] *= dtype(100.0)  # a very confident row: the loss must stay finite
    targets = rng.integers(0, V, N).astype(tdtype)
    losses, probs = nans(N, dtype), nans((N, V), dtype)
    K.crossentropy_forward(losses, probs, logits, targets)
    w_losses, w_probs = R.crossentropy_forward(f64(logits), targets)
    assert np.all(np.isfinite(losses))
    assert_close(losses, w_losses, dtype)
    assert_close(probs, w_probs, dtype)

    scale = 1.0 / N
    dlogits = nans((N, V), dtype)
    K.crossentropy_backward(dlogits, probs, targets, scale)
    assert_close(dlogits, R.crossentropy_backward(f64(probs), targets, scale), dtype)


@pytest.mark.parametrize("N,V", [(1, 2), (4, 7)])
def test_crossentropy_finite_differences(N, V):
    rng = rng_for("cefd", N, V)
    logits, targets = randn(rng, (N, V), np.float64, 2.0), rng.integers(0, V, N)
    losses, probs = np.empty(N), np.empty((N, V))
    scale = 1.0 / N

    def loss():
        K.crossentropy_forward(losses, probs, logits, targets)
        return float(losses.sum() * scale)

    loss()
    dlogits = np.empty((N, V))
    K.crossentropy_backward(dlogits, probs, targets, scale)
    fd_check(loss, logits, dlogits)


def test_crossentropy_rejects_bad_targets():
    logits = np.zeros((2, 3))
    with pytest.raises(IndexError):
        K.crossentropy_forward(np.empty(2), np.empty((2, 3)), logits, np.array([0, 3]))
    with pytest.raises(IndexError):
        K.crossentropy_backward(np.empty((2, 3)), logits, np.array([-1, 0]), 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_count_correct(dtype):
    rng = rng_for("acc")
    logits = randn(rng, (50, 7), dtype)
    logits[3] = 1.0  # all tied: argmax is the first
    logits[4, [2, 5]] = 9.0  # tie between 2 and 5
    targets = rng.integers(0, 7, 50)
    targets[:5] = [logits[0].argmax(), 0, logits[2].argmax(), 0, 2]
    assert K.count_correct(logits, targets) == R.count_correct(logits, targets)
    assert K.count_correct(logits, logits.argmax(axis=1)) == 50
    assert K.count_correct(logits[:1], targets[:1].astype(np.int32)) == 1


# ---------------------------------------------------------------- optimizer helpers


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("P", [1, 37, 3 * (1 << 14) + 5])
def test_grad_norm_and_scale(dtype, P):
    rng = rng_for("gn", P)
    g = randn(rng, P, dtype)
    # accumulated in float64 even for float32 grads: float64 accuracy on the same values
    assert abs(K.grad_norm(g) - R.grad_norm(g)) <= 1e-12 * R.grad_norm(g)
    x = g.copy()
    K.scale_inplace(x, 0.25)
    np.testing.assert_array_equal(x, g * dtype(0.25))


def adamw_numpy_loop(params, grads_seq, lr, b1, b2, eps, wd, n_decay):
    """PyTorch's AdamW written out by hand, element by element (slow, obvious)."""
    p, m, v = f64(params).copy(), np.zeros(params.size), np.zeros(params.size)
    for step, g in enumerate(grads_seq, start=1):
        g = f64(g)  # python floats times float32 scalars would stay float32 (NEP 50)
        for i in range(p.size):
            if i < n_decay:
                p[i] *= 1.0 - lr * wd
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            mhat, vhat = m[i] / (1 - b1**step), v[i] / (1 - b2**step)
            p[i] -= lr * mhat / (np.sqrt(vhat) + eps)
    return p, m, v


HYPER = dict(lr=3e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("P,n_decay", [(1, 1), (1, 0), (50, 30), (300, 0), (300, 300)])
def test_adamw_matches_hand_loop(dtype, P, n_decay):
    rng = rng_for("adam", P, n_decay)
    params = randn(rng, P, dtype)
    grads_seq = [randn(rng, P, dtype) for _ in range(5)]
    p, m, v = params.copy(), np.zeros(P, dtype), np.zeros(P, dtype)
    for step, g in enumerate(grads_seq, start=1):
        K.adamw_update(
            p, g, m, v, HYPER["lr"], HYPER["beta1"], HYPER["beta2"], HYPER["eps"], HYPER["weight_decay"], step, n_decay
        )
    w_p, w_m, w_v = adamw_numpy_loop(
        params, grads_seq, HYPER["lr"], HYPER["beta1"], HYPER["beta2"], HYPER["eps"], HYPER["weight_decay"], n_decay
    )
    tol = 1e-12 if dtype == np.float64 else 2e-6
    assert_close(p, w_p, dtype, tol)
    assert_close(m, w_m, dtype, tol)
    assert_close(v, w_v, dtype, tol)
    # and the vectorised oracle agrees with the hand loop
    rp, rm, rv = f64(params), np.zeros(P), np.zeros(P)
    for step, g in enumerate(grads_seq, start=1):
        rp, rm, rv = R.adamw_update(rp, f64(g), rm, rv, **HYPER, step=step, n_decay=n_decay)
    assert_close(rp, w_p, np.float64)


def test_adamw_chunk_boundaries():
    """n_decay falling inside a parallel chunk, P not a multiple of the chunk."""
    from tinylm.kernels.optim import CHUNK

    rng = rng_for("adam-chunks")
    P, n_decay = 2 * CHUNK + 123, CHUNK + 77
    params, g = randn(rng, P, np.float64), randn(rng, P, np.float64)
    p, m, v = params.copy(), np.zeros(P), np.zeros(P)
    K.adamw_update(p, g, m, v, *HYPER.values(), 1, n_decay)
    w_p, w_m, w_v = R.adamw_update(params, g, np.zeros(P), np.zeros(P), **HYPER, step=1, n_decay=n_decay)
    assert_close(p, w_p, np.float64)
    assert_close(m, w_m, np.float64)
    assert_close(v, w_v, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = rng_for("adam-torch")
    P, n_decay = 200, 120
    params = randn(rng, P, dtype)
    grads_seq = [randn(rng, P, dtype) for _ in range(3)]
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    decayed = torch.nn.Parameter(torch.tensor(params[:n_decay], dtype=tdtype))
    plain = torch.nn.Parameter(torch.tensor(params[n_decay:], dtype=tdtype))
    opt = torch.optim.AdamW(
        [{"params": [decayed], "weight_decay": HYPER["weight_decay"]}, {"params": [plain], "weight_decay": 0.0}],
        lr=HYPER["lr"],
        betas=(HYPER["beta1"], HYPER["beta2"]),
        eps=HYPER["eps"],
    )
    p, m, v = params.copy(), np.zeros(P, dtype), np.zeros(P, dtype)
    for step, g in enumerate(grads_seq, start=1):
        decayed.grad = torch.tensor(g[:n_decay], dtype=tdtype)
        plain.grad = torch.tensor(g[n_decay:], dtype=tdtype)
        opt.step()
        K.adamw_update(p, g, m, v, *HYPER.values(), step, n_decay)
    want = np.concatenate([decayed.detach().numpy(), plain.detach().numpy()])
    tol = 1e-12 if dtype == np.float64 else 2e-6
    assert_close(p, want, dtype, tol)
    want_m = np.concatenate([opt.state[decayed]["exp_avg"].numpy(), opt.state[plain]["exp_avg"].numpy()])
    want_v = np.concatenate([opt.state[decayed]["exp_avg_sq"].numpy(), opt.state[plain]["exp_avg_sq"].numpy()])
    assert_close(m, want_m, dtype, tol)
    assert_close(v, want_v, dtype, tol)


# ---------------------------------------------------------------- the float32 exp


def test_exp_f32_accuracy():
    from tinylm.kernels.expf import exp_f32_array

    x = np.concatenate([np.linspace(-87.0, 88.0, 200_001), [0.0, -1e-8, 1e-8, 88.3]]).astype(np.float32)
    out = np.empty_like(x)
    exp_f32_array(out, x)
    want = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - want) / want) < 5e-7
    edge = np.array([-np.inf, -1e30, -100.0, 100.0, np.inf, np.nan], np.float32)
    out = np.empty_like(edge)
    exp_f32_array(out, edge)
    assert list(out[:3]) == [0.0, 0.0, 0.0]
    assert np.all(np.isfinite(out[3:5])) and out[3] > 1e38  # clamped at float32's largest exp
    assert np.isnan(out[5])


# ---------------------------------------------------------------- serial and parallel paths


@pytest.fixture(params=[True, False], ids=["pool", "this-thread-serial"])
def parallel_allowed(request):
    """Large kernels through the thread pool, or (as a data-parallel worker sets) serially."""
    from tinylm.kernels import flags

    flags.allow_parallel(request.param, this_thread=True)
    yield request.param
    flags.allow_parallel(True, this_thread=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_above_the_parallel_threshold(dtype, parallel_allowed):
    """Small shapes (most tests) take the serial compilations; these sizes take the parallel ones,
    or the serial ones again when this thread has parallel kernels turned off."""
    from tinylm.kernels.flags import PARALLEL_MIN_WORK

    rng = rng_for("parallel", np.dtype(dtype).name)
    n = PARALLEL_MIN_WORK * 2 + 37
    x, dout = randn(rng, n, dtype, 2.0), randn(rng, n, dtype)
    out = nans(n, dtype)
    K.gelu_forward(out, x)
    assert_close(out, R.gelu_forward(f64(x)), dtype)
    K.gelu_backward(out, x, dout)
    assert_close(out, R.gelu_backward(f64(x), f64(dout)), dtype)
    K.gelu_backward_inplace(dout, x)
    np.testing.assert_array_equal(dout, out)

    N, C = PARALLEL_MIN_WORK // 64 + 3, 64
    x2, d2 = randn(rng, (N, C), dtype), randn(rng, (N, C), dtype)
    w, b = randn(rng, C, dtype), randn(rng, C, dtype)
    y, mean, rstd = nans((N, C), dtype), nans(N, dtype), nans(N, dtype)
    K.layernorm_forward(y, mean, rstd, x2, w, b, 1e-5)
    w_y, w_mean, w_rstd = R.layernorm_forward(f64(x2), f64(w), f64(b), 1e-5)
    assert_close(y, w_y, dtype)
    dx, dw, db = np.zeros((N, C), dtype), np.zeros(C, dtype), np.zeros(C, dtype)
    K.layernorm_backward(dx, dw, db, d2, x2, w, mean, rstd)
    for got, want in zip((dx, dw, db), R.layernorm_backward(f64(d2), f64(x2), f64(w), w_mean, w_rstd)):
        assert_close(got, want, dtype, tol=TOL[dtype] * 10)
    probs = nans((N, C), dtype)
    K.softmax_forward(probs, x2)
    assert_close(probs, R.softmax_forward(f64(x2)), dtype)

    B, T, NH, HS = 3, 70, 3, 4  # 9 heads x 64 x 64 query-block scores, then a 6-row block
    qkv, dout3 = randn(rng, (B, T, 3 * NH * HS), dtype), randn(rng, (B, T, NH * HS), dtype)
    o, att, pre = run_attention(qkv, NH)
    w_o, w_att, _ = R.attention_forward(f64(qkv), NH)
    assert_close(o, w_o, dtype)
    assert_close(att, w_att, dtype)
    dqkv = nans(qkv.shape, dtype)
    K.attention_backward(dqkv, nans(att.shape, dtype), dout3, qkv, att, NH)
    assert_close(dqkv, R.attention_backward(f64(dout3), f64(qkv), f64(att), NH), dtype, tol=TOL[dtype] * 10)

    g = randn(rng, n, dtype)
    np.testing.assert_allclose(K.grad_norm(g), R.grad_norm(f64(g)), rtol=1e-12 if dtype == np.float64 else 1e-6)
    g2 = g.copy()
    K.scale_inplace(g2, 0.5)
    np.testing.assert_array_equal(g2, g * dtype(0.5))


# ---------------------------------------------------------------- threads and numba's cache

_SMOKE = """
import numpy as np, tinylm.kernels as K
B, T, C, NH, V = 2, 5, 8, 2, 7
f = np.float32
r = np.random.default_rng(0)
qkv = r.standard_normal((B, T, 3 * C)).astype(f)
out, att = np.empty((B, T, C), f), np.empty((B, NH, T, T), f)
K.attention_forward(out, att, np.empty_like(att), qkv, NH)
K.attention_backward(np.empty_like(qkv), np.empty_like(att), out, qkv, att, NH)
x = r.standard_normal((B * T, C)).astype(f)
y, m, s = np.empty_like(x), np.empty(B * T, f), np.empty(B * T, f)
K.layernorm_forward(y, m, s, x, np.ones(C, f), np.zeros(C, f), 1e-5)
K.layernorm_backward(np.zeros_like(x), np.zeros(C, f), np.zeros(C, f), x, x, np.ones(C, f), m, s)
K.gelu_forward(y, x)
K.gelu_backward(y, x, x)
K.gelu_backward_inplace(y, x)
logits, tg = r.standard_normal((B * T, V)).astype(f), r.integers(0, V, B * T)
p = np.empty_like(logits)
K.softmax_forward(p, logits)
K.crossentropy_forward(np.empty(B * T, f), p, logits, tg)
K.crossentropy_backward(np.empty_like(p), p, tg, 0.1)
g = r.standard_normal(1000).astype(f)
K.grad_norm(g)
K.scale_inplace(g, 0.5)
K.adamw_update(g.copy(), g, np.zeros_like(g), np.zeros_like(g), 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, 500)
print("ok")
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no numba cache without JIT")
def test_parallel_kernels_survive_numba_cache(tmp_path):
    """Compile into a fresh cache, then load from it: a cached function that calls a parallel
    one segfaults on the second run (numba issue 8578), so this guards the kernels' structure."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    for _ in range(2):
        res = subprocess.run([sys.executable, "-c", _SMOKE], env=env, capture_output=True, text=True)
        assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="threading layer needs JIT")
def test_parallel_kernels_from_two_threads():
    """The training thread and the UI (e.g. generation) may call kernels at the same time."""
    import threading

    import numba

    B, T, C, NH = 3, 16, 16, 4
    rng = rng_for("threads")
    qkvs = [randn(rng, (B, T, 3 * C), np.float32) for _ in range(2)]
    K.attention_forward(
        np.empty((B, T, C), np.float32), np.empty((B, NH, T, T), np.float32), np.zeros(0, np.float32), qkvs[0], NH
    )
    if numba.threading_layer() == "workqueue":
        pytest.skip("numba's workqueue threading layer is not thread-safe (concurrent calls abort)")
    wants = [R.attention_forward(f64(q), NH)[0] for q in qkvs]
    errors = []

    def work(i):
        out, att = np.empty((B, T, C), np.float32), np.empty((B, NH, T, T), np.float32)
        for _ in range(50):
            K.attention_forward(out, att, np.zeros(0, np.float32), qkvs[i], NH)
            if rel_err(out, wants[i]) > 1e-5:
                errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_numba_does_not_load_scipys_blas_for_tinylm():
    """Numba imports scipy's BLAS (~15 MB and a second thread pool) for jitted np.dot, which tinylm
    never uses; tinylm.kernels keeps it out, and scipy.linalg still imports afterwards."""
    pytest.importorskip("scipy")
    code = (
        "import sys, numpy as np, tinylm.kernels as K\n"
        "a = np.ones((4, 3), np.float32); K.residual_forward(a.copy(), a, a)\n"
        "print(any(m.startswith('scipy.linalg') for m in sys.modules))\n"
        "import scipy.linalg; print(float(scipy.linalg.solve(np.eye(2), np.ones(2))[0]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "1.0"]


@pytest.mark.parametrize("B,T,C,NH", [(1, 1, 4, 2), (2, 7, 12, 3), (1, 33, 16, 1)])
def test_fused_attention_forward_matches_the_reference(B, T, C, NH):
    qkv = np.random.default_rng([B, T, C]).standard_normal((B, T, 3 * C)).astype(np.float32) * 1.5
    out = np.full((B, T, C), np.nan, np.float32)
    K.attention_forward_fused(out, qkv, NH)
    np.testing.assert_allclose(out, R.attention_forward(qkv.astype(np.float64), NH)[0], rtol=0, atol=1e-5)
