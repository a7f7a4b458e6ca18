"""The model against independent references: float64 numpy forward, central finite differences."""

import numpy as np
import pytest

from tinylm.core import GPT, ConfigError, ModelConfig, reference

TINY = dict(vocab_size=7, block_size=6, n_layer=2, n_head=2, n_embd=8)


def tiny_model(dtype=np.float64, seed=0, **overrides):
    cfg = ModelConfig(**{**TINY, **overrides})
    model = GPT(cfg, seed=seed, dtype=dtype)
    # Larger-than-init weights so every path (biases, LayerNorm gains) carries real signal.
    rng = np.random.default_rng(seed + 100)
    model.flat[:] = rng.normal(0, 0.3, model.flat.size)
    return model


def batch(model, B=3, T=None, seed=1):
    T = T or model.config.block_size
    rng = np.random.default_rng(seed)
    V = model.config.vocab_size
    return rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))


@pytest.mark.parametrize("positional", ["learned", "sincos"])
def test_logits_match_float64_reference(positional):
    model = tiny_model(positional=positional)
    ids, _ = batch(model)
    ref = reference.logits(model.params, ids, 2, model.wpe)
    np.testing.assert_allclose(model.logits(ids), ref, rtol=1e-5, atol=1e-5)


def test_float32_logits_close_to_float64_reference():
    model = tiny_model(dtype=np.float32)
    ids, _ = batch(model, T=4)
    ref = reference.logits(model.params, ids, 2, model.wpe)
    assert np.abs(model.logits(ids) - ref).max() < 1e-4


def test_loss_matches_reference():
    model = tiny_model()
    ids, targets = batch(model)
    loss, _ = model.loss_and_grads(ids, targets)
    assert loss == pytest.approx(reference.loss(model.params, ids, targets, 2, model.wpe), rel=1e-12)


def _fd_check(model, ids, targets, dropout_seed=None):
    """Every parameter tensor's gradient against central finite differences (relative error < 1e-6)."""

    def loss_at():
        rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
        return model.forward(ids, targets, dropout_rng=rng)

    rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
    model.forward(ids, targets, dropout_rng=rng)
    model.backward()
    grads = {n: g.copy() for n, g in model.grads.items()}
    eps = 1e-6
    worst = {}
    for name, view in model.params.items():
        flat = view.reshape(-1)
        numeric = np.zeros(flat.size)
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + eps
            up = loss_at()
            flat[i] = keep - eps
            down = loss_at()
            flat[i] = keep
            numeric[i] = (up - down) / (2 * eps)
        analytic = grads[name].reshape(-1)
        rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-30)
        worst[name] = rel
    bad = {n: r for n, r in worst.items() if not r < 1e-6}
    assert not bad, f"gradients off against finite differences: {bad}"
    assert set(worst) == set(model.params)


@pytest.mark.parametrize("positional", ["learned", "sincos"])
def test_every_gradient_matches_finite_differences(positional):
    model = tiny_model(positional=positional)
    ids, targets = batch(model, B=2)
    _fd_check(model, ids, targets)


def test_gradients_with_dropout_match_finite_differences():
    model = tiny_model(dropout=0.3)
    ids, targets = batch(model, B=2, T=4)
    _fd_check(model, ids, targets, dropout_seed=5)


def test_gradients_with_more_attention_weights_than_mlp_scratch():
    """NH*T > 4C: the attention-weight gradient cannot live in the shared GELU buffer (buffers.py)."""
    model = tiny_model(n_head=4, block_size=12)
    ids, targets = batch(model, B=2, T=12)
    model.forward(ids, targets)
    model.backward()
    assert not np.shares_memory(model.last_activations.grad_buffers().datt, model.last_activations.fch_gelu)
    _fd_check(model, ids, targets)


def test_gradients_with_context_shorter_than_block():
    model = tiny_model()
    ids, targets = batch(model, B=2, T=3)
    _fd_check(model, ids, targets)


def test_loss_and_grads_names_are_checkpoint_names():
    model = tiny_model()
    ids, targets = batch(model)
    _, grads = model.loss_and_grads(ids, targets)
    assert set(grads) == set(model.params)
    assert "transformer.h.1.attn.c_attn.weight" in grads
    assert grads["transformer.h.0.mlp.c_fc.weight"].shape == (8, 32)


def test_sincos_model_has_no_trained_positions():
    model = tiny_model(positional="sincos")
    assert "transformer.wpe.weight" not in model.params
    assert np.allclose(model.wpe[0, 1::2], 1.0) and np.allclose(model.wpe[0, 0::2], 0.0)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(n_embd=30, n_head=4), "n_embd 30 is not divisible by n_head 4"),
        (dict(n_layer=0), "n_layer must be a positive"),
        (dict(block_size=-3), "block_size must be a positive"),
        (dict(dropout=1.0), "dropout"),
        (dict(positional="rope"), "positional must be one of"),
    ],
)
def test_invalid_model_config_names_the_problem(overrides, words):
    with pytest.raises(ConfigError, match=words):
        ModelConfig(**{**TINY, **overrides}).validate()


def test_ids_out_of_range_or_too_long_are_refused():
    model = tiny_model()
    with pytest.raises(ConfigError, match="longer than the context"):
        model.logits(np.zeros((1, 7), dtype=np.int64))
    with pytest.raises(ConfigError, match="token ids must be in"):
        model.logits(np.full((1, 3), 7))
