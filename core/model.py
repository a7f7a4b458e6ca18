"""GPT-2 in numpy: the forward and backward passes, llm.c style, over preallocated buffers."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from tinylm.kernels.backend import get_kernels

from .buffers import Activations
from .config import DEFAULT_SEED, ModelConfig
from .errors import ConfigError
from .params import _BLOCK, ParamLayout, init_params, sincos_table


def _dropout(K, a, out, mask, rand, inp, p, rng):
    """out = dropout(inp) with a fresh mask drawn into preallocated buffers (K: the kernels, a: the
    activations); returns out."""
    a.draw_uniform(rand, rng)
    K.dropout_forward(out, mask, inp, rand, p)
    return out


def _is_device_array(x) -> bool:
    """Whether x is a GPU array (numba's, or the simulator's): ids the trainer made on the device."""
    return hasattr(x, "copy_to_host")


def _residual_add(K, a, out, res, inp, w, b, proj, dropout_bufs, p, rng):
    """WRITES out = res + dropout(inp @ w + b), a block's residual branch. With nothing to keep the
    branch for (no dropout, no trace: a.fused_residual) the product is written straight into out;
    dropout_bufs is (output, mask, draws) when dropout is on, else falsy."""
    if a.fused_residual:
        K.matmul_forward(out, inp, w, b)
        K.add_inplace(out, res)
        return
    K.matmul_forward(proj, inp, w, b)
    if dropout_bufs:
        proj = _dropout(K, a, *dropout_bufs, proj, p, rng)
    K.residual_forward(out, res, proj)


class GPT:
    """A GPT-2 language model: weights in one flat buffer with named views, plus its tokenizer.

    The buffers (weights, gradients, activations) are of the kernel namespace's kind: numpy arrays
    for the CPU kernels, device arrays for the CUDA ones. `host_params()` reads the weights on the
    host whichever it is; `on(device)` is the same model on another backend.

    `last_activations` is the buffers (buffers.Activations) the last forward pass wrote: logits,
    q/k/v, per-layer intermediates; None before the first pass. They are overwritten by the next
    pass of the same shape, so read them holding `lock`, right after the forward that made them.
    """

    def __init__(
        self,
        config: ModelConfig,
        tokenizer=None,
        *,
        seed: int = DEFAULT_SEED,
        dtype=np.float32,
        init: bool = True,
        kernels=None,
        lock=None,
    ):
        """init=False leaves the weights zero (for a caller that fills them, such as a checkpoint load).
        kernels: the kernel namespace every pass runs on (default: the CPU kernels, tinylm.kernels;
        tinylm.kernels.backend.get_kernels picks one by name). lock: see use_lock."""
        self.config = config.validate()
        self.kernels = kernels if kernels is not None else get_kernels("cpu")
        if tokenizer is not None and tokenizer.vocab_size != config.vocab_size:
            raise ConfigError(
                f"tokenizer has {tokenizer.vocab_size} tokens but the model expects vocab_size {config.vocab_size}"
            )
        self.tokenizer = tokenizer
        self.dtype = np.dtype(dtype)
        self.layout = ParamLayout(config)
        K = self.kernels
        host = np.zeros(self.layout.size, dtype=self.dtype)  # the weights are drawn on the host, then moved
        if init:
            init_params(self.layout.views(host), config, np.random.default_rng(seed))
        self.flat = K.from_host(host)  # all trained weights
        self.params = self.layout.views(self.flat)  # Hugging Face GPT-2 names -> views
        if config.positional == "learned":
            self.wpe = self.params["transformer.wpe.weight"]
        else:
            self.wpe = K.from_host(sincos_table(config.block_size, config.n_embd).astype(self.dtype))
        self.grad_flat: np.ndarray | None = None  # made on the first backward pass
        self.grads: dict[str, np.ndarray] = {}
        # Per-layer tuples of views, in _BLOCK order, looked up once instead of by name every call.
        self._layer_params = self._per_layer(self.params)
        self._wte = self.params["transformer.wte.weight"]
        self._lnf_w, self._lnf_b = self.params["transformer.ln_f.weight"], self.params["transformer.ln_f.bias"]
        self.lock = lock if lock is not None else threading.RLock()  # one pass at a time: buffers are shared
        self._acts: dict[tuple, Activations] = {}
        self.last_activations: Activations | None = None  # what the last forward pass wrote

    # ----- sizes and buffers -------------------------------------------------------------------

    def _per_layer(self, named: dict[str, np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        return [tuple(named[f"transformer.h.{l}.{suffix}"] for suffix, _ in _BLOCK) for l in range(self.config.n_layer)]

    def replica(self) -> GPT:
        """A second view of this model: the same weights (shared, not copied), its own gradients and
        activation buffers, so another thread can run forward and backward on part of a batch."""
        twin = object.__new__(GPT)
        twin.__dict__.update(self.__dict__)
        twin.grad_flat, twin.grads, twin._acts, twin.last_activations = None, {}, {}, None
        twin.lock = threading.RLock()
        return twin

    def use_lock(self, lock) -> None:
        """Serialise passes with another reentrant lock (context manager with acquire/release), for
        example one that serves waiters in arrival order; call while no other thread uses the model.
        Replicas keep their own locks."""
        self.lock = lock

    def release_buffers(self) -> None:
        """Free the activation and gradient buffers; the next forward or backward makes them again."""
        with self.lock:
            self._acts.clear()
            self.last_activations = None
            self.grad_flat, self.grads = None, {}

    @contextmanager
    def keeping_buffers(self):
        """Passes run inside (a history snapshot's trace and sample, between training steps) leave the model's
        kept buffers as they were: the ones they make are dropped after, so training memory does not grow."""
        with self.lock:
            kept, last = dict(self._acts), self.last_activations
            try:
                yield self
            finally:
                self._acts, self.last_activations = kept, last

    def take_activations(self) -> Activations:
        """Hand over the last forward pass's buffers: the model makes new ones for its next pass,
        so the caller may keep views into them (a trace does, instead of copying)."""
        a = self.last_activations
        self._acts = {key: acts for key, acts in self._acts.items() if acts is not a}
        self.last_activations = None
        return a

    @property
    def num_params(self) -> int:
        return self.layout.size

    @property
    def device(self) -> str:
        """Where the buffers live: "cpu" or "cuda" (the kernel namespace's DEVICE)."""
        return self.kernels.DEVICE

    def host_params(self) -> dict[str, np.ndarray]:
        """The weights by name as numpy arrays: the model's own views on the CPU (no copy), a copy
        read from the device otherwise."""
        return self.layout.views(self.kernels.to_host(self.flat))

    def weight_rows(self, name: str, rows) -> np.ndarray:
        """Rows `rows` of weight `name` as a new float32 numpy array (a device sends only those rows
        when they are few, else the whole table once)."""
        w, rows = self.params[name], np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.device == "cpu":
            return np.array(w[rows], dtype=np.float32)
        if 4 * len(rows) < w.shape[0]:
            host = [self.kernels.to_host(w[int(i)]) for i in rows]
            return np.array(host, dtype=np.float32).reshape(len(rows), *w.shape[1:])
        return np.array(self.kernels.to_host(w)[rows], dtype=np.float32)

    def host_wpe(self) -> np.ndarray:
        """The position table (T, C) as a numpy array (learned or fixed; a copy from a device)."""
        return self.kernels.to_host(self.wpe)

    def on(self, device) -> GPT:
        """This model on another backend ("cpu", "cuda" or a kernel namespace): a new model holding a
        copy of the weights, with the same tokenizer; this model itself when it is there already."""
        kernels = get_kernels(device) if isinstance(device, str) else device
        if kernels is self.kernels:
            return self
        twin = GPT(self.config, self.tokenizer, dtype=self.dtype, init=False, kernels=kernels)
        kernels.copy_in(twin.flat, self.kernels.to_host(self.flat))
        if self.config.positional != "learned":
            kernels.copy_in(twin.wpe, self.host_wpe())
        return twin

    def activations(self, B: int, T: int, *, keep_scores: bool = False, dropout: bool = False) -> Activations:
        """Buffers for (B, T), made once; a few shapes are kept (training, validation, inspection)."""
        key = (B, T, keep_scores, dropout)
        acts = self._acts.get(key)
        if acts is None:
            if len(self._acts) >= 4:
                self._acts.pop(next(iter(self._acts)))
            acts = self._acts[key] = Activations(
                self.config, B, T, self.dtype, self.kernels, keep_scores=keep_scores, dropout=dropout
            )
        return acts

    def _check_ids(self, ids) -> np.ndarray:
        if _is_device_array(ids):  # the trainer's batch, gathered on the device from checked ids
            if len(ids.shape) != 2 or ids.shape[1] > self.config.block_size:
                raise ConfigError(f"device token ids must have shape (B, T <= {self.config.block_size})")
            return ids
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ConfigError(f"token ids must have shape (B, T) with T >= 1, got {ids.shape}")
        if ids.shape[1] > self.config.block_size:
            raise ConfigError(f"sequence of {ids.shape[1]} tokens is longer than the context {self.config.block_size}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ConfigError(f"token ids must be in [0, {self.config.vocab_size}), got {ids.min()}..{ids.max()}")
        return ids

    # ----- forward -----------------------------------------------------------------------------

    def forward(
        self, ids, targets=None, *, keep_scores=False, dropout_rng: np.random.Generator | None = None, last_only=False
    ):
        """Run the model on ids (B, T); with targets, return the mean cross-entropy, else None.
        Dropout is applied only when a dropout_rng is given (training). With last_only the final
        LayerNorm and the LM head run for each row's last position only: its logits are in the
        first B rows of the logits buffer (generation needs nothing else, and at GPT-2's 50,257
        tokens the head is the largest product)."""
        ids = self._check_ids(ids)
        K = self.kernels
        B, T = ids.shape
        cfg = self.config
        p = cfg.dropout
        drop = p > 0 and dropout_rng is not None
        a = self.activations(B, T, keep_scores=keep_scores, dropout=drop)
        K.copy_in(a.ids, ids)
        eps = cfg.layer_norm_epsilon
        attention = cfg.attention
        K.encoder_forward(a.encoded, a.ids, self._wte, self.wpe)
        if drop:
            _dropout(K, a, a.x0, a.mask0, a.rand0, a.encoded, p, dropout_rng)
        for v, (ln1w, ln1b, attn_w, attn_b, aproj_w, aproj_b, ln2w, ln2b, fc_w, fc_b, mproj_w, mproj_b) in zip(
            a.layers, self._layer_params
        ):
            if attention:  # else res1 is x itself (see buffers.py)
                K.layernorm_forward(v.ln1, v.ln1_mean, v.ln1_rstd, v.x, ln1w, ln1b, eps)
                K.matmul_forward(v.qkv, v.ln1, attn_w, attn_b)
                if a.recompute and self.device != "cpu":
                    # nothing reads these weights before the backward pass recomputes them: on a GPU
                    # the (B, NH, T, T) write and read are memory traffic saved (the CPU's BLAS
                    # version keeps its rows in cache, and stays the numbers its tests pin)
                    K.attention_forward_fused(v.atty3, v.qkv3, cfg.n_head)
                else:
                    K.attention_forward(v.atty3, v.att, v.preatt, v.qkv3, cfg.n_head)
                _residual_add(
                    K, a, v.res1, v.x, v.atty, aproj_w, aproj_b, v.attproj, drop and v.attn_dropout, p, dropout_rng
                )
            K.layernorm_forward(v.ln2, v.ln2_mean, v.ln2_rstd, v.res1, ln2w, ln2b, eps)
            K.matmul_forward(v.fch, v.ln2, fc_w, fc_b)
            K.gelu_forward(v.fch_gelu, v.fch)
            _residual_add(
                K, a, v.res2, v.res1, v.fch_gelu, mproj_w, mproj_b, v.fcproj, drop and v.mlp_dropout, p, dropout_rng
            )
        self.last_activations = a
        a.dropout_active = drop
        a.has_targets = targets is not None
        if last_only:
            if targets is not None:
                raise ValueError("forward(last_only=True) computes no loss: it has the last position's logits only")
            last = a.layers[-1].res2.reshape(B, T, cfg.n_embd)[:, T - 1]  # (B, C), rows T*C apart
            if self.device == "cpu":
                last = np.ascontiguousarray(last)  # the GPU kernels read strided rows as they are
            K.layernorm_forward(a.lnf[:B], a.lnf_mean[:B], a.lnf_rstd[:B], last, self._lnf_w, self._lnf_b, eps)
            K.lm_head_forward(a.logits[:B], a.lnf[:B], self._wte)
            return None
        K.layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, a.layers[-1].res2, self._lnf_w, self._lnf_b, eps)
        K.lm_head_forward(a.logits, a.lnf, self._wte)
        if targets is None:
            return None
        K.copy_in(a.targets, targets if _is_device_array(targets) else np.reshape(targets, (B, T)))
        K.crossentropy_forward(a.losses, a.probs, a.logits, a.targets_flat)
        losses = K.to_host(a.losses)  # (B*T,): the loss is a number on the host, for the log and the chart
        return float(losses.sum(dtype=np.float64)) / losses.size

    # ----- backward ----------------------------------------------------------------------------

    def _ensure_grads(self) -> None:
        if self.grad_flat is None:
            self.grad_flat = self.kernels.zeros(self.flat.shape, self.dtype)
            self.grads = self.layout.views(self.grad_flat)
            self._layer_grads = self._per_layer(self.grads)
            self._dwpe = self.grads.get("transformer.wpe.weight")
            if self._dwpe is None:
                self._dwpe = self.kernels.zeros((0, self.config.n_embd), self.dtype)  # a fixed table is not trained

    def backward(self, loss_scale: float = 1.0) -> None:
        """Gradients of loss_scale * the last forward's mean loss into self.grads (overwritten, not
        accumulated); a shard of a batch passes its share of the rows as loss_scale."""
        a = self.last_activations
        K = self.kernels
        if a is None or not a.has_targets:
            raise RuntimeError("backward() needs a forward pass with targets first")
        self._ensure_grads()
        g = self.grads
        d = a.grad_buffers()
        eps = self.config.layer_norm_epsilon
        drop = a.dropout_active
        K.fill_zero(self.grad_flat)  # LayerNorm and the encoder add into their gradients
        K.crossentropy_backward(d.dlogits, a.probs, a.targets_flat, loss_scale / a.losses.size)
        K.lm_head_backward(d.dln, g["transformer.wte.weight"], d.dlogits, a.lnf, self._wte)
        K.fill_zero(d.dres)
        K.layernorm_backward(
            d.dres,
            g["transformer.ln_f.weight"],
            g["transformer.ln_f.bias"],
            d.dln,
            a.layers[-1].res2,
            self._lnf_w,
            a.lnf_mean,
            a.lnf_rstd,
        )
        for v, params, grads in zip(reversed(a.layers), reversed(self._layer_params), reversed(self._layer_grads)):
            ln1w, ln1b, attn_w, _, aproj_w, _, ln2w, ln2b, fc_w, _, mproj_w, _ = params
            (dln1w, dln1b, dattn_w, dattn_b, daproj_w, daproj_b, dln2w, dln2b, dfc_w, dfc_b, dmproj_w, dmproj_b) = grads
            # MLP branch: res2 = res1 + dropout(fcproj)
            dbranch = d.dres
            if drop:
                K.dropout_backward(d.dbranch, d.dres, v.mask_mlp)
                dbranch = d.dbranch
            if a.recompute:  # the forward kept only their inputs: GELU and ln_2 again, into shared buffers
                K.gelu_forward(v.fch_gelu, v.fch)
                K.layernorm_forward(v.ln2, v.ln2_mean, v.ln2_rstd, v.res1, ln2w, ln2b, eps)
            K.matmul_backward(d.dfch, dmproj_w, dmproj_b, dbranch, v.fch_gelu, mproj_w)
            K.gelu_backward_inplace(d.dfch, v.fch)
            K.matmul_backward(d.dln, dfc_w, dfc_b, d.dfch, v.ln2, fc_w)
            K.layernorm_backward(d.dres, dln2w, dln2b, d.dln, v.res1, ln2w, v.ln2_mean, v.ln2_rstd)
            if not self.config.attention:  # res1 is x: the stream's gradient goes on unchanged
                continue
            # attention branch: res1 = x + dropout(attproj)
            dbranch = d.dres
            if drop:
                K.dropout_backward(d.dbranch, d.dres, v.mask_attn)
                dbranch = d.dbranch
            if a.recompute:  # attention output and weights again, from the kept q, k, v
                K.attention_forward(v.atty3, v.att, v.preatt, v.qkv3, self.config.n_head)
            K.matmul_backward(d.datty, daproj_w, daproj_b, dbranch, v.atty, aproj_w)
            K.attention_backward(d.dqkv3, d.datt, d.datty3, v.qkv3, v.att, self.config.n_head)
            if a.recompute:
                K.layernorm_forward(v.ln1, v.ln1_mean, v.ln1_rstd, v.x, ln1w, ln1b, eps)
            K.matmul_backward(d.dln, dattn_w, dattn_b, d.dqkv, v.ln1, attn_w)
            K.layernorm_backward(d.dres, dln1w, dln1b, d.dln, v.x, ln1w, v.ln1_mean, v.ln1_rstd)
        dx0 = d.dx0
        if drop:
            K.dropout_backward(d.dx0_drop, d.dx0, a.mask0)
            dx0 = d.dx0_drop
        K.encoder_backward(g["transformer.wte.weight"], self._dwpe, dx0, a.ids)

    # ----- public conveniences -----------------------------------------------------------------

    def logits(self, ids) -> np.ndarray:
        """Next-token logits (B, T, V) for token ids (B, T)."""
        with self.lock:
            self.forward(ids)
            a = self.last_activations
            return self.kernels.to_host(a.logits).reshape(a.B, a.T, -1).astype(np.float32, copy=True)

    def loss_and_grads(self, ids, targets) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of targets given ids, and its gradient for every trained tensor (copies)."""
        with self.lock:
            loss = self.forward(ids, targets)
            self.backward()
            host = self.layout.views(self.kernels.to_host(self.grad_flat))
            return loss, {name: grad.copy() for name, grad in host.items() if name in self.grads}

    def trace(self, text_or_ids, intervention=None):
        """Every intermediate of one forward pass over a prompt (see trace.py), with an optional
        intervention (intervene.Intervention or Ablation: parts knocked out, tokens replaced)."""
        from .trace import trace

        return trace(self, text_or_ids, intervention)

    def encode_prompt(self, prompt) -> np.ndarray:
        """Token ids of a prompt (text or ids), keeping the last block_size tokens as GPT-2 does."""
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ConfigError("this model has no tokenizer: pass token ids instead of text")
            ids = self.tokenizer.encode(prompt)
        else:
            ids = np.asarray(prompt, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ConfigError("the prompt is empty: type at least one character")
        return np.ascontiguousarray(ids[-self.config.block_size :], dtype=np.int64)

    def generate(self, prompt, sampling=None, max_new_tokens: int | None = None, *, stop_at_eos: bool = True):
        """Yield GenStep tokens after the prompt, using a KV cache, stopping after the config's
        end-of-text token unless stop_at_eos is False (see generate.py)."""
        from .generate import generate

        return generate(self, prompt, sampling, max_new_tokens, stop_at_eos=stop_at_eos)

    def next_token_probs(self, prompt) -> np.ndarray:
        """Probabilities (V,) of the next token after the prompt, at temperature 1."""
        ids = self.encode_prompt(prompt)
        with self.lock:
            self.forward(ids[None, :], last_only=True)
            last = self.kernels.to_host(self.last_activations.logits[0]).astype(np.float64)
        e = np.exp(last - last.max())
        return e / e.sum()
