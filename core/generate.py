"""Autoregressive generation with a KV cache, yielding each token with its probabilities."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np

from .finite import check_finite_output
from .memory import activation_bytes, check_available, kv_cache_bytes, size_text
from .parallel import ColumnSplit, inference_pass
from .params import _BLOCK
from .sampling import Sampling, draw, softmax
from .threads import parallel_allowed


@dataclass
class GenStep:
    """One generated token and the distributions behind it."""

    id: int
    text: str
    probs: np.ndarray  # (V,) the distribution it was drawn from (after temperature/top-k/top-p)
    raw_probs: np.ndarray  # (V,) softmax of the logits at temperature 1
    end: bool = False  # the model's end-of-text token (config eos_token_id): generation stopped after it


# Weights from this size on decode with each product split across the threads allowed (the fused
# step's parallel compilation): the step is then bound by reading the weights, which two cores do
# faster than one, and a thread-pool wake-up per product is small beside it. Below, a step is
# latency-bound and one serial call wins (the baby model: 0.40-0.49 ms a token).
SPLIT_DECODE_BYTES = 32 << 20


class KVCache:
    """Keys and values of every position seen so far, per layer and head, for one sequence.

    On the CPU a step is one fused Numba call, its products split across threads for a large model
    (SPLIT_DECODE_BYTES); BLAS products between small kernels (fused=False) are its oracle. On a GPU
    it is the kernels of the forward pass on one row plus attend_one, with the cache on the device
    and only the logits (V,) copied back, for sampling."""

    def __init__(self, model, *, fused: bool | None = None):
        """fused: decode with the one-call Numba step (None: whenever the model attends; False: BLAS products)."""
        cfg = model.config
        L, NH, T, C = cfg.n_layer, cfg.n_head, cfg.block_size, cfg.n_embd
        dt = model.dtype
        self.model = model
        zeros = model.kernels.zeros
        # An MLP-only model keeps nothing: each position's logits depend on its own token alone.
        rows = T if cfg.attention else 0
        self.k = zeros((L, NH, rows, C // NH), dt)  # (L, NH, T, HS)
        self.v = zeros((L, NH, rows, C // NH), dt)
        self.length = 0  # positions filled
        self.on_device = model.device != "cpu"
        if self.on_device:
            self._device_buffers(zeros, dt)
            self.fused = False
            return
        off = model.layout.offsets
        self.offs = np.array(
            [[off[f"transformer.h.{l}.{suffix}"] for suffix, _ in _BLOCK] for l in range(L)], dtype=np.int64
        ).reshape(L, len(_BLOCK))
        self.lnf_off = np.array([off["transformer.ln_f.weight"], off["transformer.ln_f.bias"]], dtype=np.int64)
        self.wte_off = off["transformer.wte.weight"]
        self.wpe = np.ascontiguousarray(model.wpe)
        self.logits = zeros(cfg.vocab_size, dt)
        self._x, self._xn, self._y = (zeros(C, dt) for _ in range(3))
        self._qkv, self._fc, self._att = zeros(3 * C, dt), zeros(4 * C, dt), zeros(NH * T, dt)
        self.fused = cfg.attention if fused is None else fused and cfg.attention  # the fused step always attends
        self.split = model.flat.nbytes >= SPLIT_DECODE_BYTES

    def _device_buffers(self, zeros, dt) -> None:
        """One row's buffers for a step made of the forward pass's kernels (B = T = 1)."""
        cfg = self.model.config
        C, V, NH, T = cfg.n_embd, cfg.vocab_size, cfg.n_head, cfg.block_size
        self.logits = zeros(V, dt)
        self._logits_row = self.logits.reshape(1, V)
        self._ids = zeros((1, 1), np.int64)
        self._ids_host = np.zeros((1, 1), np.int64)
        self._x = zeros((1, 1, C), dt)  # the residual stream of the new position
        self._x_row = self._x.reshape(1, C)
        self._xn, self._y = zeros((1, C), dt), zeros((1, C), dt)
        self._mean, self._rstd = zeros(1, dt), zeros(1, dt)
        self._qkv, self._fc, self._fc_gelu = zeros((1, 3 * C), dt), zeros((1, 4 * C), dt), zeros((1, 4 * C), dt)
        self._att = zeros(NH * T, dt)  # attend_one's scratch: one row per head

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        """Run a full forward pass over ids (T,), keep its keys and values, return the last logits
        (on the host)."""
        m = self.model
        K = m.kernels
        T = len(ids)
        with inference_pass(m) as runner:
            runner.forward(ids[None, :], last_only=True)
            a = runner.last_activations
            for l in range(a.qkv.shape[0]):  # none without attention
                K.kv_store(self.k[l], self.v[l], a.qkv[l], 0)  # qkv (T, 3C) with B = 1
            K.copy_in(self.logits, a.logits[0])
        self.length = T
        return K.to_host(self.logits)

    def step(self, token: int) -> np.ndarray:
        """Append one token at the next position and return its next-token logits (V,), on the host."""
        if self.on_device:
            return self._step_kernels(int(token))
        if not self.fused:
            return self._step_blas(int(token))
        m = self.model
        m.kernels.decode_step(
            self.logits,
            self._x,
            self._xn,
            self._qkv,
            self._y,
            self._fc,
            self._att,
            m.flat,
            self.offs,
            self.wte_off,
            self.lnf_off,
            self.wpe,
            self.k,
            self.v,
            int(token),
            self.length,
            m.config.n_head,
            m.config.layer_norm_epsilon,
            numba.get_num_threads() if self.split and parallel_allowed() else 1,
        )
        self.length += 1
        return self.logits

    def _step_kernels(self, token: int) -> np.ndarray:
        """decode_step's arithmetic as the forward pass's kernels on one row (any backend; the GPU's way)."""
        m, pos = self.model, self.length
        K, eps, NH = m.kernels, m.config.layer_norm_epsilon, m.config.n_head
        x, xn, y, qkv, mean, rstd = self._x_row, self._xn, self._y, self._qkv, self._mean, self._rstd
        self._ids_host[0, 0] = token
        K.copy_in(self._ids, self._ids_host)
        K.encoder_forward(self._x, self._ids, m._wte, m.wpe[pos : pos + 1])
        for l, (ln1w, ln1b, attn_w, attn_b, aproj_w, aproj_b, ln2w, ln2b, fc_w, fc_b, mproj_w, mproj_b) in enumerate(
            m._layer_params
        ):
            if m.config.attention:  # an MLP-only model goes straight to the MLP
                K.layernorm_forward(xn, mean, rstd, x, ln1w, ln1b, eps)
                K.matmul_forward(qkv, xn, attn_w, attn_b)
                K.attend_one(y[0], self._att, qkv[0], self.k[l], self.v[l], pos, NH)
                K.matmul_forward(xn, y, aproj_w, aproj_b)
                K.add_inplace(x, xn)
            K.layernorm_forward(xn, mean, rstd, x, ln2w, ln2b, eps)
            K.matmul_forward(self._fc, xn, fc_w, fc_b)
            K.gelu_forward(self._fc_gelu, self._fc)
            K.matmul_forward(xn, self._fc_gelu, mproj_w, mproj_b)
            K.add_inplace(x, xn)
        K.layernorm_forward(xn, mean, rstd, x, m._lnf_w, m._lnf_b, eps)
        K.lm_head_forward(self._logits_row, xn, m._wte)
        self.length += 1
        return K.to_host(self.logits)

    def _step_blas(self, token: int) -> np.ndarray:
        """decode_step's arithmetic, one call per operation, the products through BLAS (sgemv)."""
        threads = numba.get_num_threads() if parallel_allowed() else 1
        with ColumnSplit(threads) as split:
            return self._step_split(token, split)

    def _step_split(self, token: int, split: ColumnSplit) -> np.ndarray:
        m, pos = self.model, self.length
        K, eps, attention = m.kernels, m.config.layer_norm_epsilon, m.config.attention
        x, xn, qkv, y, fc = self._x, self._xn, self._qkv, self._y, self._fc
        np.add(m._wte[token], self.wpe[pos], out=x)
        for l, (ln1w, ln1b, attn_w, attn_b, aproj_w, aproj_b, ln2w, ln2b, fc_w, fc_b, mproj_w, mproj_b) in enumerate(
            m._layer_params
        ):
            if attention:
                K.layernorm_one(xn, x, ln1w, ln1b, eps)
                split.matvec(qkv, xn, attn_w)
                qkv += attn_b
                K.attend_one(y, self._att, qkv, self.k[l], self.v[l], pos, m.config.n_head)
                split.matvec(xn, y, aproj_w)
                x += xn
                x += aproj_b
            K.layernorm_one(xn, x, ln2w, ln2b, eps)
            split.matvec(fc, xn, fc_w)
            fc += fc_b
            K.gelu_one(fc)
            split.matvec(xn, fc, mproj_w)
            x += xn
            x += mproj_b
        K.layernorm_one(xn, x, m._lnf_w, m._lnf_b, eps)
        split.matvec_t(self.logits, m._wte, xn)  # (V, C) @ (C,): the tied head, last position only
        self.length += 1
        return self.logits


def check_generation_memory(model, prompt_tokens: int) -> None:
    """ConfigError, before anything is allocated, when the KV cache of one sequence and the prefill's
    buffers over the prompt do not fit in the memory available."""
    cfg, itemsize = model.config, model.dtype.itemsize
    kv = kv_cache_bytes(cfg, itemsize)
    prefill = activation_bytes(cfg, prompt_tokens, keep_scores=False, itemsize=itemsize)
    check_available(
        kv + prefill,
        f"generating with this model (a KV cache of {size_text(kv)} for its {cfg.block_size:,} positions, "
        f"{size_text(prefill)} for the pass over the {prompt_tokens:,}-token prompt)",
        "free some memory or use a shorter prompt",
    )


def generate(
    model, prompt, sampling: Sampling | None = None, max_new_tokens: int | None = None, *, stop_at_eos: bool = True
) -> Iterator[GenStep]:
    """Yield tokens one by one after the prompt. When the context is full, the oldest quarter is
    dropped and the cache rebuilt from the rest (a learned position table has no slot past block_size).
    When the config names an end-of-text token (eos_token_id) and the model draws it, that step is
    yielded with end=True and generation stops, as transformers' generate does; stop_at_eos=False
    keeps sampling past it."""
    sampling = sampling or Sampling()
    if not sampling.greedy:
        sampling.validate()
    rng = sampling.rng()
    T = model.config.block_size
    context = list(model.encode_prompt(prompt))
    check_generation_memory(model, len(context))
    cache = KVCache(model)
    with model.lock, np.errstate(over="ignore", invalid="ignore"):  # overflow is checked just below
        logits = cache.prefill(np.array(context, dtype=np.int64))
    check_finite_output(model, logits, "next-token scores")
    eos = model.config.eos_token_id if stop_at_eos else None
    produced = 0
    while max_new_tokens is None or produced < max_new_tokens:
        probs = sampling.distribution(logits)
        token = draw(probs, rng)
        text = model.tokenizer.decode([token]) if model.tokenizer is not None else str(token)
        end = token == eos
        yield GenStep(token, text, probs, softmax(logits), end)
        produced += 1
        if end or produced == max_new_tokens:
            return  # no logits after the last token: nobody reads them
        context.append(token)
        with model.lock, np.errstate(over="ignore", invalid="ignore"):
            if cache.length < T:
                logits = cache.step(token)
            else:
                context = context[-(T - max(1, T // 4)) :]
                logits = cache.prefill(np.array(context, dtype=np.int64))
        check_finite_output(model, logits, "next-token scores")
