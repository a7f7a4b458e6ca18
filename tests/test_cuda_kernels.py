"""The numba.cuda kernels (tinylm.kernels.cuda) against kernels/reference.py, and the backend switch.

The CUDA simulator must be switched on before numba is first imported, which a shared pytest
process cannot promise, so the comparisons run in a child process: this file run as a script
(`python tests/test_cuda_kernels.py sim`) executes every check and prints one JSON object; the
tests below assert on it. Modes:
  sim  NUMBA_ENABLE_CUDASIM=1, tiny shapes (the simulator runs each GPU thread as a Python thread)
  gpu  the same checks on a real GPU (skipped without one)
  ptx  every kernel compiled to PTX for a real GPU (sm_80) with the arguments the wrappers pass,
       without running it: catches what the simulator, which runs kernels as plain Python, cannot
       (untypable code, unsupported calls). Needs libNVVM: CUDA_HOME, or the pip package
       nvidia-cuda-nvcc-cu12; skipped otherwise.
float64 must match the oracle to ~1e-12 relative to the output's scale, float32 to ~1e-5 (the
oracle runs in float64 on the same inputs). WRITES outputs start as NaN so an unwritten element
shows; ADDS outputs start at known values.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

# ------------------------------------------------------------------ checks (run in the child)

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
CHECKS = {}  # check function -> the kernel (or feature) names it covers


def check(*names):
    def register(fn):
        for name in names:
            CHECKS.setdefault(fn, []).append(name)
        return fn

    return register


class Env:
    """Device-array helpers for the child; in ptx mode arrays stay numpy and nothing is compared."""

    def __init__(self, mode):
        self.mode = mode
        if mode != "ptx":
            from numba import cuda

            self.cuda = cuda

    def d(self, a):
        a = np.ascontiguousarray(a)
        return a if self.mode == "ptx" else self.cuda.to_device(a)

    def h(self, a):
        return np.asarray(a) if self.mode == "ptx" else a.copy_to_host()

    def close(self, got, want, dtype, what, tol=None):
        if self.mode == "ptx":
            return
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
        assert not np.any(np.isnan(got) & ~np.isnan(want)), f"{what}: NaN left (unwritten?)"
        if got.size == 0:
            return
        scale = max(float(np.max(np.abs(want))), 1e-30)
        err = float(np.max(np.abs(got - want))) / scale
        assert err <= (tol or TOL[dtype]), f"{what} [{np.dtype(dtype).name}]: rel err {err:.3g}"

    def equal(self, got, want, what):
        if self.mode != "ptx":
            assert np.array_equal(np.asarray(got), np.asarray(want)), f"{what}: {got} != {want}"

    def raises(self, exc, fn, *args):
        if self.mode == "ptx":
            try:
                fn(*args)
            except exc:
                pass
            return
        try:
            fn(*args)
        except exc:
            return
        raise AssertionError(f"{getattr(fn, '__name__', fn)} did not raise {exc.__name__}")


def randn(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype)


def f64(x):
    return np.asarray(x, np.float64)


@check("encoder_forward", "encoder_backward")
def check_encoder(env, K, R):
    # vocab 2 and T > V force repeated ids (several rows adding into one dwte row)
    for (B, T, C, V, Tmax), dtype, id_dtype in [
        ((1, 1, 1, 2, 1), np.float64, np.int64),
        ((2, 5, 3, 2, 6), np.float32, np.int32),
        ((3, 4, 9, 7, 4), np.float64, np.int32),
        ((2, 3, 4, 40, 5), np.float32, np.int64),  # V > the backward's vocabulary split
    ]:
        rng = np.random.default_rng([B, T, C, V])
        ids = rng.integers(0, V, (B, T)).astype(id_dtype)
        wte, wpe = randn(rng, (V, C), dtype), randn(rng, (Tmax, C), dtype)
        out = env.d(nans((B, T, C), dtype))
        K.encoder_forward(out, env.d(ids), env.d(wte), env.d(wpe))
        env.close(env.h(out), R.encoder_forward(ids, f64(wte), f64(wpe)), dtype, "encoder out")

        dout = randn(rng, (B, T, C), dtype)
        dwte0, dwpe0 = randn(rng, (V, C), dtype), randn(rng, (Tmax, C), dtype)
        dwte, dwpe = env.d(dwte0), env.d(dwpe0)
        K.encoder_backward(dwte, dwpe, env.d(dout), env.d(ids))  # ADDS
        want_te, want_pe = R.encoder_backward(f64(dout), ids, V, Tmax)
        env.close(env.h(dwte), f64(dwte0) + want_te, dtype, "dwte")
        env.close(env.h(dwpe), f64(dwpe0) + want_pe, dtype, "dwpe")
        dwte = env.d(dwte0)
        K.encoder_backward(dwte, env.d(np.zeros((0, C), dtype)), env.d(dout), env.d(ids))
        env.close(env.h(dwte), f64(dwte0) + want_te, dtype, "dwte without dwpe")

    wte, wpe = env.d(np.zeros((3, 2))), env.d(np.zeros((4, 2)))
    bad = env.d(np.array([[0, 3]]))
    env.raises(IndexError, K.encoder_forward, env.d(np.zeros((1, 2, 2))), bad, wte, wpe)
    env.raises(IndexError, K.encoder_backward, env.d(np.zeros((3, 2))), wpe, env.d(np.ones((1, 2, 2))), bad)
    long_ids = env.d(np.zeros((1, 5), np.int64))
    env.raises(ValueError, K.encoder_forward, env.d(np.zeros((1, 5, 2))), long_ids, wte, wpe)


@check("zeros")
def check_zeros(env, K, R):
    for shape, dtype in [((3, 5), np.float32), ((2, 0, 4), np.float64), ((4,), np.int64)]:
        host = env.h(K.zeros(shape, dtype))
        assert host.shape == shape and host.dtype == dtype, (host.shape, host.dtype)
        env.equal(host, np.zeros(shape, dtype), "zeros")


@check("gather_windows")
def check_gather_windows(env, K, R):
    for B, T, n in [(1, 1, 2), (3, 4, 9), (5, 7, 50)]:
        rng = np.random.default_rng([B, T, n])
        data = rng.integers(0, 100, n).astype(np.int64)
        uniform = rng.random(B)
        uniform[0] = 0.999999  # the last start position
        x, y = env.d(np.full((B, T), -1, np.int64)), env.d(np.full((B, T), -1, np.int64))
        K.gather_windows(x, y, env.d(data), env.d(uniform))
        want_x, want_y = R.gather_windows(data, uniform, T)
        env.equal(env.h(x), want_x, "windows x")
        env.equal(env.h(y), want_y, "windows y")


@check("layernorm_forward", "layernorm_backward")
def check_layernorm(env, K, R):
    cases = [((1, 1), np.float64), ((1, 5), np.float32), ((7, 6), np.float64), ((3, 37), np.float32)]
    for (N, C), dtype in cases:
        rng = np.random.default_rng([N, C])
        inp = randn(rng, (N, C), dtype, 2.0) + dtype(3.0)  # an offset exercises the two-pass variance
        weight, bias = randn(rng, C, dtype), randn(rng, C, dtype)
        out, mean, rstd = env.d(nans((N, C), dtype)), env.d(nans(N, dtype)), env.d(nans(N, dtype))
        d_inp, d_weight = env.d(inp), env.d(weight)
        K.layernorm_forward(out, mean, rstd, d_inp, d_weight, env.d(bias), 1e-5)
        wants = R.layernorm_forward(f64(inp), f64(weight), f64(bias), 1e-5)
        for got, want, what in zip((out, mean, rstd), wants, ("ln out", "mean", "rstd")):
            env.close(env.h(got), want, dtype, what)

        dout = randn(rng, (N, C), dtype)
        pre = [randn(rng, s, dtype) for s in [(N, C), C, C]]
        grads = [env.d(p) for p in pre]
        K.layernorm_backward(*grads, env.d(dout), d_inp, d_weight, mean, rstd)  # ADDS
        wants = R.layernorm_backward(f64(dout), f64(inp), f64(weight), env.h(mean), env.h(rstd))
        for got, p, want, what in zip(grads, pre, wants, ("dinp", "dweight", "dbias")):
            env.close(env.h(got), f64(p) + want, dtype, what, tol=TOL[dtype] * 10)


@check("matmul_forward", "matmul_backward")
def check_matmul(env, K, R):
    # sizes around the simulator's 4x4 tile: partial tiles in every dimension, K over several tiles
    for (N, C, OC), dtype, with_bias in [
        ((1, 1, 1), np.float64, True),
        ((5, 3, 7), np.float32, True),
        ((9, 6, 5), np.float64, False),
        ((6, 9, 4), np.float32, False),
        ((0, 3, 2), np.float32, True),  # no rows: dweight and dbias are zeros, still written
    ]:
        rng = np.random.default_rng([N, C, OC])
        inp, weight = randn(rng, (N, C), dtype), randn(rng, (C, OC), dtype)
        bias = randn(rng, OC, dtype) if with_bias else np.zeros(0, dtype)
        out = env.d(nans((N, OC), dtype))
        d_inp, d_weight = env.d(inp), env.d(weight)
        K.matmul_forward(out, d_inp, d_weight, env.d(bias))
        env.close(env.h(out), R.matmul_forward(f64(inp), f64(weight), f64(bias)), dtype, "matmul out")

        dout = randn(rng, (N, OC), dtype)
        dinp, dweight = env.d(nans((N, C), dtype)), env.d(nans((C, OC), dtype))
        dbias = env.d(nans(OC, dtype) if with_bias else np.zeros(0, dtype))
        K.matmul_backward(dinp, dweight, dbias, env.d(dout), d_inp, d_weight)  # WRITES
        w_dinp, w_dweight, w_dbias = R.matmul_backward(f64(dout), f64(inp), f64(weight))
        env.close(env.h(dinp), w_dinp, dtype, "dinp")
        env.close(env.h(dweight), w_dweight, dtype, "dweight")
        if with_bias:
            env.close(env.h(dbias), w_dbias, dtype, "dbias")


@check("lm_head_forward", "lm_head_backward")
def check_lm_head(env, K, R):
    for (N, C, V), dtype in [((1, 1, 2), np.float64), ((7, 5, 2), np.float32), ((6, 9, 11), np.float64)]:
        rng = np.random.default_rng([N, C, V, 1])
        inp, wte = randn(rng, (N, C), dtype), randn(rng, (V, C), dtype)
        out = env.d(nans((N, V), dtype))
        d_inp, d_wte = env.d(inp), env.d(wte)
        K.lm_head_forward(out, d_inp, d_wte)
        env.close(env.h(out), R.lm_head_forward(f64(inp), f64(wte)), dtype, "logits")
        dlogits = randn(rng, (N, V), dtype)
        dinp, dwte = env.d(nans((N, C), dtype)), env.d(nans((V, C), dtype))
        K.lm_head_backward(dinp, dwte, env.d(dlogits), d_inp, d_wte)  # WRITES
        w_dinp, w_dwte = R.lm_head_backward(f64(dlogits), f64(inp), f64(wte))
        env.close(env.h(dinp), w_dinp, dtype, "dinp")
        env.close(env.h(dwte), w_dwte, dtype, "dwte")


# (B, T, C, NH): T=1, head size 1 (C == NH), odd sizes, a single head, everything 1
ATTN_CASES = [
    ((1, 1, 4, 2), np.float64),
    ((2, 5, 3, 3), np.float32),
    ((1, 1, 1, 1), np.float32),
    ((1, 9, 2, 1), np.float64),
    ((2, 4, 6, 2), np.float32),
]


@check("attention_forward")
def check_attention_forward(env, K, R):
    for (B, T, C, NH), dtype in ATTN_CASES:
        rng = np.random.default_rng([B, T, C, NH])
        qkv = randn(rng, (B, T, 3 * C), dtype, 1.5)
        w_out, w_att, w_pre = R.attention_forward(f64(qkv), NH)
        for keep_pre in (True, False):
            out, att = env.d(nans((B, T, C), dtype)), env.d(nans((B, NH, T, T), dtype))
            no_pre = (0,) if B == 1 else (0, 0, 0, 0)  # any size-0 array means "no preatt"
            pre = env.d(nans((B, NH, T, T) if keep_pre else no_pre, dtype))
            K.attention_forward(out, att, pre, env.d(qkv), NH)
            env.close(env.h(out), w_out, dtype, "attention out")
            got_att = env.h(att)
            env.close(got_att, w_att, dtype, "att")
            future = np.triu(np.ones((T, T), bool), k=1)
            env.equal(got_att[..., future], np.zeros_like(got_att[..., future]), "att above diagonal")
            if keep_pre:
                got_pre = env.h(pre)
                env.equal(np.isneginf(got_pre), np.broadcast_to(future, got_pre.shape), "preatt -inf mask")
                env.close(np.where(future, 0.0, got_pre), np.where(future, 0.0, w_pre), dtype, "preatt")


@check("attention_forward_fused")
def check_attention_forward_fused(env, K, R):
    # T > BLOCK (8 under the simulator) takes several chunks of keys; HS > BLOCK several dims per thread
    for (B, T, C, NH), dtype in [*ATTN_CASES, ((1, 19, 22, 2), np.float32), ((2, 9, 12, 1), np.float64)]:
        rng = np.random.default_rng([B, T, C, NH, 7])
        qkv = randn(rng, (B, T, 3 * C), dtype, 1.5)
        out = env.d(nans((B, T, C), dtype))
        K.attention_forward_fused(out, env.d(qkv), NH)
        env.close(env.h(out), R.attention_forward(f64(qkv), NH)[0], dtype, "fused attention out")


@check("attention_backward")
def check_attention_backward(env, K, R):
    for (B, T, C, NH), dtype in ATTN_CASES:
        rng = np.random.default_rng([B, T, C, NH, 2])
        qkv = randn(rng, (B, T, 3 * C), dtype, 1.5)
        _, w_att, _ = R.attention_forward(f64(qkv), NH)
        att = w_att.astype(dtype)
        dout = randn(rng, (B, T, C), dtype)
        dqkv, datt = env.d(nans((B, T, 3 * C), dtype)), env.d(nans((B, NH, T, T), dtype))
        K.attention_backward(dqkv, datt, env.d(dout), env.d(qkv), env.d(att), NH)  # WRITES dqkv
        want = R.attention_backward(f64(dout), f64(qkv), f64(att), NH)
        env.close(env.h(dqkv), want, dtype, "dqkv", tol=TOL[dtype] * 10)


def _gelu_inputs(rng, shape, dtype):
    x = randn(rng, shape, dtype, 3.0).reshape(-1)
    extremes = np.array([0.0, -1e3, 1e3, -30.0, 30.0, 1e-8], dtype)  # exp overflow / underflow
    x[: min(x.size, extremes.size)] = extremes[: x.size]
    return x.reshape(shape)


@check("gelu_forward", "gelu_backward", "gelu_backward_inplace")
def check_gelu(env, K, R):
    for shape, dtype in [((1,), np.float64), ((3, 5), np.float32), ((2, 3, 4), np.float64), ((0, 3), np.float32)]:
        rng = np.random.default_rng(list(shape))
        x = _gelu_inputs(rng, shape, dtype)
        out = env.d(nans(shape, dtype))
        K.gelu_forward(out, env.d(x))
        env.close(env.h(out), R.gelu_forward(f64(x)), dtype, "gelu")
        dout = randn(rng, shape, dtype)
        dinp = env.d(nans(shape, dtype))
        K.gelu_backward(dinp, env.d(x), env.d(dout))
        env.close(env.h(dinp), R.gelu_backward(f64(x), f64(dout)), dtype, "gelu backward")
        d = env.d(dout.copy())
        K.gelu_backward_inplace(d, env.d(x))
        env.close(env.h(d), R.gelu_backward(f64(x), f64(dout)), dtype, "gelu backward in place")


@check("residual_forward", "add_inplace")
def check_residual(env, K, R):
    for shape, dtype in [((1,), np.float64), ((2, 3, 5), np.float32)]:
        rng = np.random.default_rng(list(shape))
        a, b = randn(rng, shape, dtype), randn(rng, shape, dtype)
        out = env.d(nans(shape, dtype))
        K.residual_forward(out, env.d(a), env.d(b))
        env.close(env.h(out), R.residual_forward(f64(a), f64(b)), dtype, "residual")
        dst = env.d(a)
        K.add_inplace(dst, env.d(b))
        env.close(env.h(dst), f64(a) + f64(b), dtype, "add_inplace")


@check("dropout_forward", "dropout_backward")
def check_dropout(env, K, R):
    cases = [(((1,), 0.0), np.float64), (((3, 7), 0.5), np.float32), (((2, 2, 5), 0.9), np.float64)]
    for (shape, p), dtype in cases:
        rng = np.random.default_rng(list(shape))
        x, rand = randn(rng, shape, dtype), rng.random(shape).astype(dtype)
        out, mask = env.d(nans(shape, dtype)), env.d(nans(shape, dtype))
        K.dropout_forward(out, mask, env.d(x), env.d(rand), p)
        w_out, w_mask = R.dropout_forward(f64(x), f64(rand), p)
        env.close(env.h(out), w_out, dtype, "dropout out")
        env.close(env.h(mask), w_mask, dtype, "dropout mask")
        dout = randn(rng, shape, dtype)
        dinp = env.d(nans(shape, dtype))
        K.dropout_backward(dinp, env.d(dout), mask)
        env.close(env.h(dinp), R.dropout_backward(f64(dout), w_mask), dtype, "dropout backward")
    z = env.d(np.zeros(3))
    env.raises(ValueError, K.dropout_forward, z, z, z, z, 1.0)


def _logits(rng, N, V, dtype):
    x = randn(rng, (N, V), dtype, 3.0)
    if N > 1 and V > 1:
        x[1, 0] = 80.0  # a large logit: max subtraction keeps exp finite
        x[1, -1] = -np.inf  # a masked entry
    return x


@check("softmax_forward")
def check_softmax(env, K, R):
    cases = [((1, 1), np.float64), ((1, 2), np.float32), ((7, 6), np.float64), ((3, 37), np.float32)]
    for (N, V), dtype in cases:
        rng = np.random.default_rng([N, V])
        x = _logits(rng, N, V, dtype)
        out = env.d(nans((N, V), dtype))
        K.softmax_forward(out, env.d(x))
        env.close(env.h(out), R.softmax_forward(f64(x)), dtype, "softmax")


@check("crossentropy_forward", "crossentropy_backward")
def check_crossentropy(env, K, R):
    cases = [((1, 2), np.float64), ((7, 5), np.float32), ((4, 37), np.float64), ((3, 2), np.float32)]
    for (N, V), dtype in cases:
        rng = np.random.default_rng([N, V, 3])
        x = _logits(rng, N, V, dtype)
        x[:, 0] = np.where(np.isinf(x[:, 0]), 0.0, x[:, 0])
        targets = rng.integers(0, V, N)
        if N > 1:
            targets[1] = 0  # the row with the large logit: loss ~ 0
        losses, probs = env.d(nans(N, dtype)), env.d(nans((N, V), dtype))
        K.crossentropy_forward(losses, probs, env.d(x), env.d(targets))
        w_losses, w_probs = R.crossentropy_forward(f64(x), targets)
        env.close(env.h(losses), w_losses, dtype, "losses", tol=TOL[dtype] * 10)
        env.close(env.h(probs), w_probs, dtype, "probs")
        dlogits = env.d(nans((N, V), dtype))
        K.crossentropy_backward(dlogits, probs, env.d(targets), 1.0 / N)
        want = R.crossentropy_backward(env.h(probs).astype(np.float64), targets, 1.0 / N)
        env.close(env.h(dlogits), want, dtype, "dlogits")
    z, zv = env.d(np.zeros(1)), env.d(np.zeros((1, 2)))
    bad = env.d(np.array([2]))
    env.raises(IndexError, K.crossentropy_forward, z, zv, env.d(np.zeros((1, 2))), bad)
    env.raises(IndexError, K.crossentropy_backward, zv, env.d(np.full((1, 2), 0.5)), bad, 1.0)


@check("count_correct")
def check_count_correct(env, K, R):
    import tinylm.kernels as cpu

    for (N, V), dtype in [((1, 2), np.float64), ((9, 5), np.float32), ((4, 37), np.float64)]:
        rng = np.random.default_rng([N, V, 4])
        x = randn(rng, (N, V), dtype)
        targets = rng.integers(0, V, N)
        targets[0] = int(np.argmax(x[0]))  # at least one hit
        got = K.count_correct(env.d(x), env.d(targets))
        env.equal(got, R.count_correct(x, targets), "count_correct")
    # ties go to the first maximum; NaN: as the CPU kernel's `>` scan (ignored unless in column 0)
    x = np.array(
        [
            [1.0, 3.0, 3.0, 0.0],
            [2.0, 2.0, 2.0, 2.0],
            [np.nan, 5.0, 1.0, 0.0],
            [0.0, np.nan, 4.0, 4.0],
            [-np.inf, -np.inf, -np.inf, -np.inf],
        ]
    )
    for targets in ([1, 0, 0, 2, 0], [2, 3, 1, 3, 1]):
        t = np.array(targets)
        env.equal(K.count_correct(env.d(x), env.d(t)), cpu.count_correct(x, t), f"ties/NaN {targets}")


@check("grad_norm")
def check_grad_norm(env, K, R):
    from tinylm.kernels.cuda import _runtime as rt

    # the largest size outgrows the fixed reduction grid, so blocks loop (grid-stride)
    big = rt.MAX_REDUCE_BLOCKS * rt.BLOCK + 9
    for n, dtype in [(0, np.float64), (1, np.float32), (37, np.float64), (big, np.float32)]:
        g = randn(np.random.default_rng(n), n, dtype, 1e-2)
        got = K.grad_norm(env.d(g))
        if env.mode != "ptx":
            assert isinstance(got, float), type(got)
            want = R.grad_norm(g)
            assert abs(got - want) <= 1e-12 * max(want, 1e-30), f"grad_norm {got} != {want}"


@check("scale_inplace")
def check_scale(env, K, R):
    for n, dtype in [(1, np.float64), (23, np.float32)]:
        x = randn(np.random.default_rng(n), n, dtype)
        d = env.d(x)
        K.scale_inplace(d, 0.37)
        env.close(env.h(d), f64(x) * 0.37, dtype, "scale_inplace")


@check("adamw_update")
def check_adamw(env, K, R):
    # (size, decayed entries, step): no decay, all decayed, a prefix; steps 1 to 3 (bias correction)
    cases = [((1, 0, 1), np.float64), ((1, 1, 2), np.float32)]
    cases += [((19, 7, 3), np.float64), ((19, 19, 1), np.float32)]
    for (n, n_decay, step), dtype in cases:
        rng = np.random.default_rng([n, n_decay, step])
        p, g = randn(rng, n, dtype), randn(rng, n, dtype)
        m, v = randn(rng, n, dtype, 0.1), np.abs(randn(rng, n, dtype, 0.01))
        hp = (3e-3, 0.9, 0.95, 1e-8, 0.1, step, n_decay)
        dp, dm, dv = env.d(p), env.d(m), env.d(v)
        K.adamw_update(dp, env.d(g), dm, dv, *hp)
        wants = R.adamw_update(f64(p), f64(g), f64(m), f64(v), *hp)
        for got, want, what in zip((dp, dm, dv), wants, ("params", "m", "v")):
            env.close(env.h(got), want, dtype, what)


@check("kv_store", "attend_one")
def check_decode(env, K, R):
    # NH, Tmax, HS; positions from the first to the last slot; HS > BLOCK loops over head dims
    for (NH, Tmax, HS), dtype in [((1, 1, 1), np.float64), ((2, 5, 3), np.float32), ((3, 4, 11), np.float64)]:
        rng = np.random.default_rng([NH, Tmax, HS])
        C = NH * HS
        k0, v0 = randn(rng, (NH, Tmax, HS), dtype), randn(rng, (NH, Tmax, HS), dtype)
        T = Tmax - 1 if Tmax > 1 else 1
        qkv = randn(rng, (T, 3 * C), dtype)
        dk, dv = env.d(k0), env.d(v0)
        K.kv_store(dk, dv, env.d(qkv), Tmax - T)
        want_k, want_v = R.kv_store(f64(k0), f64(v0), f64(qkv), Tmax - T)
        env.close(env.h(dk), want_k, dtype, "kv_store k")
        env.close(env.h(dv), want_v, dtype, "kv_store v")
        for pos in sorted({0, Tmax - 1}):
            q = randn(rng, 3 * C, dtype)
            dk, dv, y = env.d(k0), env.d(v0), env.d(nans(C, dtype))
            K.attend_one(y, env.d(np.zeros(NH * Tmax, dtype)), env.d(q), dk, dv, pos, NH)
            want_y, want_k, want_v = R.attend_one(f64(q), f64(k0), f64(v0), pos)
            env.close(env.h(y), want_y, dtype, f"attend_one y at {pos}")
            env.close(env.h(dk), want_k, dtype, "attend_one k")
            env.close(env.h(dv), want_v, dtype, "attend_one v")
    env.raises(ValueError, K.kv_store, env.d(k0), env.d(v0), env.d(qkv), Tmax)


@check("from_host", "to_host", "copy_in", "fill_zero")
def check_memory(env, K, R):
    if env.mode == "ptx":  # only fill_zero launches a kernel
        K.fill_zero(env.d(np.zeros((2, 3), np.float32)))
        return
    for shape, dtype in [((3, 5), np.float32), ((4,), np.int64), ((2, 0), np.float64)]:
        host = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
        buf = K.from_host(host)
        got = K.to_host(buf)
        assert isinstance(got, np.ndarray) and got.dtype == dtype, type(got)
        env.equal(got, host, "from_host / to_host")
        other = K.zeros(shape, dtype)
        K.copy_in(other, buf)  # device to device
        env.equal(K.to_host(other), host, "copy_in from the device")
        K.fill_zero(other)
        env.equal(K.to_host(other), np.zeros(shape, dtype), "fill_zero")
        K.copy_in(other, host.astype(np.float64))  # from the host, converted to the buffer's dtype
        env.equal(K.to_host(other), host, "copy_in from the host")
    env.raises(ValueError, K.copy_in, K.zeros((2, 3), np.float32), np.zeros((3, 2)))
    # buffers refuse numpy on the device under the simulator: what a real device array refuses
    buf = K.zeros((2, 3), np.float32)
    env.raises(AttributeError, lambda: buf.sum())
    env.raises(TypeError, np.asarray, buf)
    env.raises(TypeError, K.gelu_forward, buf, np.zeros((2, 3), np.float32))  # a host array in a launch


@check("backend_under_simulator")
def check_backend(env, K, R):
    if env.mode == "ptx":
        return
    from tinylm.kernels import backend

    assert backend.get_kernels("cuda") is K
    assert "cuda" in backend.available_backends()


def run_checks(mode):
    """Run every check; {covered name: {"ok": bool, "detail": str}} (ptx: compile results too)."""
    if mode == "sim":
        # the simulator's block manager busy-polls its Python threads: a short GIL switch
        # interval makes a launch several times faster
        sys.setswitchinterval(1e-4)
        # it also runs kernels as Python on numpy scalars: exp overflow in float32 GELU only warns
        np.seterr(over="ignore")
    compiled, errors = {}, []
    if mode == "ptx":
        _compile_only(compiled, errors)
    import tinylm.kernels.cuda as K
    from tinylm.kernels import reference as R

    env = Env(mode)
    results = {}
    for fn, names in CHECKS.items():
        try:
            fn(env, K, R)
            ok, detail = True, ""
        except Exception as exc:  # report, don't stop: every check gets a verdict
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        for name in names:
            results[name] = {"ok": ok, "detail": detail}
    report = {"results": results}
    if mode == "ptx":
        report["compiled"] = sorted(compiled)
        report["errors"] = errors
        report["kernels"] = _all_kernel_names()
    return report


def _compile_only(compiled, errors):
    """Swap launching for PTX compilation (sm_80) of each (kernel, argument types) seen."""
    from numba import cuda, typeof

    from tinylm.kernels.cuda import _runtime as rt

    def launch(kernel, blocks, threads, *args):
        sig = tuple(typeof(a) for a in args)
        name = kernel.py_func.__name__
        key = (kernel.py_func, sig)
        if key in compiled.setdefault(name, set()):
            return
        compiled[name].add(key)
        try:
            cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
        except Exception as exc:
            errors.append(f"{name}{sig}: {type(exc).__name__}: {str(exc)[:800]}")

    # Device functions (block_sum, and numba's own overloads such as min) are compiled for "the
    # current device"; with no GPU there is none, so name the same target compile_ptx gets.
    import numba.cuda.dispatcher

    class _Sm80:
        compute_capability = (8, 0)

    numba.cuda.dispatcher.get_current_device = lambda: _Sm80()
    rt.require_cuda = lambda: None
    rt.launch = launch
    rt.device_zeros = np.zeros
    rt.to_device = np.array
    rt.to_host = np.asarray
    rt.copy_to_device = np.copyto


def _all_kernel_names():
    """Names of every cuda.jit kernel the package defines: module-level ones, and one instance of
    each per-dtype factory (`_make_*`, extra flags False)."""
    import inspect

    from numba import float32

    import tinylm.kernels.cuda as K
    from tinylm.kernels.names import KERNELS

    names = set()
    for mod_name in sorted(set(KERNELS.values())):
        for attr, value in vars(getattr(K, mod_name)).items():
            if attr.endswith("_kernel") and hasattr(value, "py_func"):
                names.add(value.py_func.__name__)
            elif attr.startswith("_make_") and callable(value):
                extra = [False] * (len(inspect.signature(value).parameters) - 1)
                names.add(value(float32, *extra).py_func.__name__)
    return sorted(names)


def nvvm_home():
    """A CUDA_HOME holding libNVVM (the given one, or the nvidia-cuda-nvcc pip package), or None."""
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    try:
        spec = importlib.util.find_spec("nvidia.cuda_nvcc")
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    home = list(spec.submodule_search_locations)[0]
    return home if os.path.isdir(os.path.join(home, "nvvm")) else None


if __name__ == "__main__":
    print(json.dumps(run_checks(sys.argv[1])))
    sys.exit(0)


# ------------------------------------------------------------------ tests (the pytest parent)

import pytest  # noqa: E402

import tinylm.kernels as CPU  # noqa: E402
from tinylm.kernels.names import CPU_ONLY, KERNELS  # noqa: E402

COVERED = sorted({name for names in CHECKS.values() for name in names})
CHILD_TIMEOUT = 240


def child_env(sim, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_ENABLE_CUDASIM", "TINYLM_CUDA_"))}
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    env.update(extra)
    return env


def run_child(mode, env):
    res = subprocess.run(
        [sys.executable, __file__, mode], env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT
    )
    assert res.returncode == 0, f"child failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def real_gpu_available():
    from numba import config, cuda

    return not config.ENABLE_CUDASIM and cuda.is_available()


@pytest.fixture(scope="module")
def sim_report():
    # The simulator runs each block's threads as Python threads; one CI run in four saw a
    # LayerNorm check fail that passed on every rerun. A failed check gets one fresh run:
    # a real bug fails both, a scheduling flake of the simulator does not.
    report = run_child("sim", child_env(sim=True))
    failed = [name for name, result in report["results"].items() if not result["ok"]]
    if failed:
        second = run_child("sim", child_env(sim=True))
        for name in failed:
            report["results"][name] = second["results"][name]
    return report


def test_every_kernel_has_a_check():
    assert set(KERNELS) <= set(COVERED), set(KERNELS) - set(COVERED)


@pytest.mark.slow  # the CUDA simulator
@pytest.mark.parametrize("name", COVERED)
def test_cuda_kernel_matches_reference_under_simulator(sim_report, name):
    result = sim_report["results"][name]
    assert result["ok"], result["detail"]


def test_both_packages_export_every_kernel_of_the_registry_from_its_module():
    import tinylm.kernels.cuda as KC

    for package, names in ((CPU, {**KERNELS, **CPU_ONLY}), (KC, KERNELS)):
        assert set(names) <= set(package.__all__), set(names) - set(package.__all__)
        for name, module in names.items():
            kernel = getattr(package, name)
            assert callable(kernel) and kernel is getattr(getattr(package, module), name), (package.__name__, name)
    assert not set(KC.__all__) & set(CPU_ONLY)  # the CUDA package claims no kernel it lacks


def test_backend_selection_in_this_process():
    from tinylm.kernels import backend

    assert backend.get_kernels("cpu") is CPU
    backends = backend.available_backends()
    assert backends[0] == "cpu"
    assert ("cuda" in backends) == (real_gpu_available() or _sim_on())
    with pytest.raises(ValueError, match="unknown kernel backend"):
        backend.get_kernels("tpu")


def _sim_on():
    from numba import config

    return bool(config.ENABLE_CUDASIM)


NO_GPU_SCRIPT = """
import tinylm.kernels.cuda as KC  # importing must work without a GPU
from tinylm.kernels import backend
assert backend.available_backends() == ["cpu"], backend.available_backends()
for call in (lambda: backend.get_kernels("cuda"), lambda: KC.gelu_forward(None, None)):
    try:
        call()
    except RuntimeError as exc:
        print(exc)
    else:
        raise SystemExit("no error")
"""


def test_cuda_backend_without_gpu_gives_clear_error():
    if real_gpu_available():
        pytest.skip("a CUDA GPU is present: the no-GPU error cannot happen here")
    res = subprocess.run(
        [sys.executable, "-c", NO_GPU_SCRIPT],
        env=child_env(sim=False),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    message = (
        "CUDA backend requested but no CUDA GPU is available (numba.cuda.is_available() is False); use backend 'cpu'"
    )
    assert res.stdout.splitlines() == [message, message]


NO_NUMBA_CUDA_SCRIPT = """
import sys
sys.modules["numba.cuda"] = None  # a numba without any CUDA target: importing it raises
import tinylm.kernels.cuda as KC
from tinylm.kernels import backend
assert KC.cuda_available() is False and backend.available_backends() == ["cpu"]
try:
    backend.get_kernels("cuda")
except RuntimeError as exc:
    print(exc)
"""


def test_package_imports_even_without_numba_cuda():
    res = subprocess.run(
        [sys.executable, "-c", NO_NUMBA_CUDA_SCRIPT],
        env=child_env(sim=False),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("CUDA backend requested but no CUDA GPU is available")


@pytest.mark.slow  # compiles every CUDA kernel
def test_cuda_kernels_compile_to_ptx():
    home = nvvm_home()
    if home is None:
        pytest.skip("libNVVM not found (set CUDA_HOME or pip install nvidia-cuda-nvcc-cu12)")
    report = run_child("ptx", child_env(sim=False, CUDA_HOME=home))
    assert not report["errors"], "\n".join(report["errors"])
    assert set(report["kernels"]) <= set(report["compiled"]), set(report["kernels"]) - set(report["compiled"])


def test_cuda_kernels_on_a_real_gpu():
    if not real_gpu_available():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is False)")
    report = run_child("gpu", child_env(sim=False))
    failed = {k: v["detail"] for k, v in report["results"].items() if not v["ok"]}
    assert not failed, failed
