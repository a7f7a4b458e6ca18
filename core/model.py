"""GPT-2 in numpy: the forward and backward passes, llm.c style, over preallocated buffers."""

from __future__ import annotations

import threading

import numpy as np

from tinylm import kernels as K

from .activations import Activations
from .config import ModelConfig
from .errors import ConfigError
from .params import ParamLayout, init_params, sincos_table

LN_EPS = 1e-5  # GPT-2's layer_norm_epsilon


class GPT:
    """A GPT-2 language model: weights in one flat buffer with named views, plus its tokenizer."""

    def __init__(self, config: ModelConfig, tokenizer=None, *, seed: int = 1337, dtype=np.float32):
        self.config = config.validate()
        if tokenizer is not None and tokenizer.vocab_size != config.vocab_size:
            raise ConfigError(
                f"tokenizer has {tokenizer.vocab_size} tokens but the model expects vocab_size {config.vocab_size}"
            )
        self.tokenizer = tokenizer
        self.dtype = np.dtype(dtype)
        self.layout = ParamLayout(config)
        self.flat = np.zeros(self.layout.size, dtype=self.dtype)  # all trained weights
        self.params = self.layout.views(self.flat)  # Hugging Face GPT-2 names -> views
        init_params(self.params, config, np.random.default_rng(seed))
        if config.positional == "learned":
            self.wpe = self.params["transformer.wpe.weight"]
        else:
            self.wpe = sincos_table(config.block_size, config.n_embd).astype(self.dtype)
        self.grad_flat: np.ndarray | None = None  # made on the first backward pass
        self.grads: dict[str, np.ndarray] = {}
        self.lock = threading.RLock()  # one forward/backward at a time: buffers are shared
        self._acts: dict[tuple, Activations] = {}
        self._last: Activations | None = None

    # ----- sizes and buffers -------------------------------------------------------------------

    @property
    def num_params(self) -> int:
        return self.layout.size

    def activations(self, B: int, T: int, *, keep_scores: bool = False, dropout: bool = False) -> Activations:
        """Buffers for (B, T), made once; a few shapes are kept (training, validation, inspection)."""
        key = (B, T, keep_scores, dropout)
        acts = self._acts.get(key)
        if acts is None:
            if len(self._acts) >= 4:
                self._acts.pop(next(iter(self._acts)))
            acts = self._acts[key] = Activations(
                self.config, B, T, self.dtype, keep_scores=keep_scores, dropout=dropout
            )
        return acts

    def _check_ids(self, ids) -> np.ndarray:
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

    def forward(self, ids, targets=None, *, keep_scores=False, dropout_rng: np.random.Generator | None = None):
        """Run the model on ids (B, T); with targets, return the mean cross-entropy, else None.
        Dropout is applied only when a dropout_rng is given (training)."""
        ids = self._check_ids(ids)
        B, T = ids.shape
        cfg, p = self.config, self.params
        drop = cfg.dropout > 0 and dropout_rng is not None
        a = self.activations(B, T, keep_scores=keep_scores, dropout=drop)
        BT, C = B * T, cfg.n_embd
        K.encoder_forward(a.encoded, ids, p["transformer.wte.weight"], self.wpe)
        if drop:
            dropout_rng.random(out=a.rand0, dtype=a.rand0.dtype)
            K.dropout_forward(a.x0, a.mask0, a.encoded, a.rand0, cfg.dropout)
        x = a.x0
        for l in range(cfg.n_layer):
            h = f"transformer.h.{l}."
            K.layernorm_forward(a.ln1[l].reshape(BT, C), a.ln1_mean[l], a.ln1_rstd[l], x.reshape(BT, C),
                                p[h + "ln_1.weight"], p[h + "ln_1.bias"], LN_EPS)
            K.matmul_forward(a.qkv[l].reshape(BT, 3 * C), a.ln1[l].reshape(BT, C),
                             p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"])
            K.attention_forward(a.atty[l], a.att[l], a.preatt[l], a.qkv[l], cfg.n_head)
            K.matmul_forward(a.attproj[l].reshape(BT, C), a.atty[l].reshape(BT, C),
                             p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"])
            branch = a.attproj[l]
            if drop:
                dropout_rng.random(out=a.rand_attn[l], dtype=a.rand_attn[l].dtype)
                K.dropout_forward(a.attproj_drop[l], a.mask_attn[l], branch, a.rand_attn[l], cfg.dropout)
                branch = a.attproj_drop[l]
            K.residual_forward(a.res1[l], x, branch)
            K.layernorm_forward(a.ln2[l].reshape(BT, C), a.ln2_mean[l], a.ln2_rstd[l], a.res1[l].reshape(BT, C),
                                p[h + "ln_2.weight"], p[h + "ln_2.bias"], LN_EPS)
            K.matmul_forward(a.fch[l].reshape(BT, 4 * C), a.ln2[l].reshape(BT, C),
                             p[h + "mlp.c_fc.weight"], p[h + "mlp.c_fc.bias"])
            K.gelu_forward(a.fch_gelu[l], a.fch[l])
            K.matmul_forward(a.fcproj[l].reshape(BT, C), a.fch_gelu[l].reshape(BT, 4 * C),
                             p[h + "mlp.c_proj.weight"], p[h + "mlp.c_proj.bias"])
            branch = a.fcproj[l]
            if drop:
                dropout_rng.random(out=a.rand_mlp[l], dtype=a.rand_mlp[l].dtype)
                K.dropout_forward(a.fcproj_drop[l], a.mask_mlp[l], branch, a.rand_mlp[l], cfg.dropout)
                branch = a.fcproj_drop[l]
            K.residual_forward(a.res2[l], a.res1[l], branch)
            x = a.res2[l]
        K.layernorm_forward(a.lnf.reshape(BT, C), a.lnf_mean, a.lnf_rstd, x.reshape(BT, C),
                            p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], LN_EPS)
        K.lm_head_forward(a.logits.reshape(BT, -1), a.lnf.reshape(BT, C), p["transformer.wte.weight"])
        self._last = a
        a.ids = ids
        a.dropout_active = drop
        if targets is None:
            a.has_targets = False
            return None
        a.targets[...] = targets
        a.has_targets = True
        K.crossentropy_forward(a.losses, a.probs.reshape(BT, -1), a.logits.reshape(BT, -1), a.targets.reshape(BT))
        return float(a.losses.mean(dtype=np.float64))

    # ----- backward ----------------------------------------------------------------------------

    def _ensure_grads(self) -> None:
        if self.grad_flat is None:
            self.grad_flat = np.zeros_like(self.flat)
            self.grads = self.layout.views(self.grad_flat)

    def backward(self) -> None:
        """Gradients of the last forward's mean loss into self.grads (overwritten, not accumulated)."""
        a = self._last
        if a is None or not a.has_targets:
            raise RuntimeError("backward() needs a forward pass with targets first")
        self._ensure_grads()
        cfg, p, g = self.config, self.params, self.grads
        B, T, C = a.B, a.T, cfg.n_embd
        BT = B * T
        d = a.grad_buffers()
        drop = a.dropout_active
        self.grad_flat.fill(0.0)  # LayerNorm and the encoder add into their gradients
        K.crossentropy_backward(d.dlogits.reshape(BT, -1), a.probs.reshape(BT, -1), a.targets.reshape(BT), 1.0 / BT)
        K.lm_head_backward(d.dln.reshape(BT, C), g["transformer.wte.weight"], d.dlogits.reshape(BT, -1),
                           a.lnf.reshape(BT, C), p["transformer.wte.weight"])
        d.dres.fill(0.0)
        last = a.res2[cfg.n_layer - 1]
        K.layernorm_backward(d.dres.reshape(BT, C), g["transformer.ln_f.weight"], g["transformer.ln_f.bias"],
                             d.dln.reshape(BT, C), last.reshape(BT, C), p["transformer.ln_f.weight"],
                             a.lnf_mean, a.lnf_rstd)
        for l in reversed(range(cfg.n_layer)):
            h = f"transformer.h.{l}."
            x = a.x0 if l == 0 else a.res2[l - 1]
            # MLP branch: res2 = res1 + dropout(fcproj)
            dbranch = d.dres
            if drop:
                K.dropout_backward(d.dbranch, d.dres, a.mask_mlp[l])
                dbranch = d.dbranch
            K.matmul_backward(d.dfch_gelu.reshape(BT, 4 * C), g[h + "mlp.c_proj.weight"], g[h + "mlp.c_proj.bias"],
                              dbranch.reshape(BT, C), a.fch_gelu[l].reshape(BT, 4 * C), p[h + "mlp.c_proj.weight"])
            K.gelu_backward(d.dfch, a.fch[l], d.dfch_gelu)
            K.matmul_backward(d.dln.reshape(BT, C), g[h + "mlp.c_fc.weight"], g[h + "mlp.c_fc.bias"],
                              d.dfch.reshape(BT, 4 * C), a.ln2[l].reshape(BT, C), p[h + "mlp.c_fc.weight"])
            K.layernorm_backward(d.dres.reshape(BT, C), g[h + "ln_2.weight"], g[h + "ln_2.bias"],
                                 d.dln.reshape(BT, C), a.res1[l].reshape(BT, C), p[h + "ln_2.weight"],
                                 a.ln2_mean[l], a.ln2_rstd[l])
            # attention branch: res1 = x + dropout(attproj)
            dbranch = d.dres
            if drop:
                K.dropout_backward(d.dbranch, d.dres, a.mask_attn[l])
                dbranch = d.dbranch
            K.matmul_backward(d.datty.reshape(BT, C), g[h + "attn.c_proj.weight"], g[h + "attn.c_proj.bias"],
                              dbranch.reshape(BT, C), a.atty[l].reshape(BT, C), p[h + "attn.c_proj.weight"])
            K.attention_backward(d.dqkv, d.datt, d.datty, a.qkv[l], a.att[l], cfg.n_head)
            K.matmul_backward(d.dln.reshape(BT, C), g[h + "attn.c_attn.weight"], g[h + "attn.c_attn.bias"],
                              d.dqkv.reshape(BT, 3 * C), a.ln1[l].reshape(BT, C), p[h + "attn.c_attn.weight"])
            K.layernorm_backward(d.dres.reshape(BT, C), g[h + "ln_1.weight"], g[h + "ln_1.bias"],
                                 d.dln.reshape(BT, C), x.reshape(BT, C), p[h + "ln_1.weight"],
                                 a.ln1_mean[l], a.ln1_rstd[l])
        dx0 = d.dres
        if drop:
            K.dropout_backward(d.dbranch, d.dres, a.mask0)
            dx0 = d.dbranch
        dwpe = g.get("transformer.wpe.weight")
        if dwpe is None:
            dwpe = np.zeros((0, C), dtype=self.dtype)  # a fixed sine/cosine table is not trained
        K.encoder_backward(g["transformer.wte.weight"], dwpe, dx0, a.ids)

    # ----- public conveniences -----------------------------------------------------------------

    def logits(self, ids) -> np.ndarray:
        """Next-token logits (B, T, V) for token ids (B, T)."""
        with self.lock:
            self.forward(ids)
            return self._last.logits.astype(np.float32, copy=True)

    def loss_and_grads(self, ids, targets) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of targets given ids, and its gradient for every trained tensor (copies)."""
        with self.lock:
            loss = self.forward(ids, targets)
            self.backward()
            return loss, {name: grad.copy() for name, grad in self.grads.items()}

    def trace(self, text_or_ids):
        """Every intermediate of one forward pass over a prompt (see trace.py)."""
        from .trace import trace

        return trace(self, text_or_ids)

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

    def generate(self, prompt, sampling=None, max_new_tokens: int | None = None):
        """Yield GenStep tokens after the prompt, using a KV cache (see generate.py)."""
        from .generate import generate

        return generate(self, prompt, sampling, max_new_tokens)

    def next_token_probs(self, prompt) -> np.ndarray:
        """Probabilities (V,) of the next token after the prompt, at temperature 1."""
        ids = self.encode_prompt(prompt)
        with self.lock:
            self.forward(ids[None, :])
            last = self._last.logits[0, -1].astype(np.float64)
        e = np.exp(last - last.max())
        return e / e.sum()

    def save(self, path, trainer=None):
        """Write a checkpoint directory (atomically); with a trainer, training can resume from it."""
        from .checkpoint import save_checkpoint

        return save_checkpoint(path, self, trainer=trainer)
