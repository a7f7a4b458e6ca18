"""The backward trace is the model's own backward pass: every gradient equals the float64 reference
backward's, and sampled cells equal a central difference of the loss."""

import numpy as np
import pytest

from tinylm.core import (
    FD_STEP,
    GPT,
    ConfigError,
    Corpus,
    ModelConfig,
    TrainConfig,
    apply_adamw_step,
    backtrace,
    explain_adamw_step,
    finite_difference,
    make_trainer,
    prompt_window,
    reference,
    reference_backward,
    train_tokenizer,
)

TEXT = "the quick brown fox jumps over the lazy dog"


def _model(positional="learned"):
    tok = train_tokenizer("char", TEXT)
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=8, positional=positional)
    m = GPT(cfg, tok, seed=2)
    m.flat[:] = np.random.default_rng(4).normal(0, 0.3, m.flat.size).astype(np.float32)
    return m


@pytest.fixture(scope="module")
def model():
    return _model()


def test_prompt_window_targets_are_the_prompt_shifted(model):
    ids, targets = prompt_window(model, "the fox")
    whole = model.tokenizer.encode("the fox")
    np.testing.assert_array_equal(ids, whole[:-1])
    np.testing.assert_array_equal(targets, whole[1:])
    with pytest.raises(ConfigError, match="at least 2 tokens"):
        prompt_window(model, "t")


@pytest.mark.parametrize("positional", ["learned", "sincos"])
def test_every_gradient_is_the_float64_reference_backward(positional):
    model = _model(positional)
    ids, targets = prompt_window(model, "the lazy dog jumps")
    ids[4] = ids[1]  # a repeated token: its table row collects both positions
    bt = backtrace(model, ids, targets)
    loss, ref = reference_backward.backward(model.params, ids, targets, model.config.n_head, model.wpe)
    assert bt.loss == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(bt.losses.mean(), loss, rtol=1e-5)
    assert set(bt.arrays) | set(bt.grads) == set(ref)
    for name, want in ref.items():
        got = bt[name]
        assert got.shape == want.shape, name
        scale = np.abs(want).max() + 1e-12
        np.testing.assert_allclose(got / scale, want / scale, atol=2e-5, err_msg=name)


def test_weight_gradients_are_the_training_ones(model):
    ids, targets = prompt_window(model, "over the lazy dog")
    bt = backtrace(model, ids, targets)
    loss, grads = model.loss_and_grads(ids[None], targets[None])
    assert bt.loss == pytest.approx(loss, rel=1e-6)
    for name, g in grads.items():
        np.testing.assert_allclose(bt.grads[name], g, rtol=1e-4, atol=1e-6, err_msg=name)


def test_documented_shapes(model):
    ids, targets = prompt_window(model, "quick fox")
    bt = backtrace(model, ids, targets)
    T, C, NH, V = len(ids), 8, 2, model.config.vocab_size
    assert bt["d.logits"].shape == (T, V) and bt["d.lm_head"].shape == (V, C)
    assert bt["d.h.1.att"].shape == bt["d.h.1.scores"].shape == (NH, T, T)
    assert bt["d.h.0.q"].shape == (NH, T, C // NH) and bt["d.h.0.mlp_pre"].shape == (T, 4 * C)
    assert bt["d.x0"].shape == bt["d.wte"].shape == bt["d.wpe"].shape == (T, C)
    # d.logits is softmax minus one-hot, over N
    want = bt.forward["probs"].astype(np.float64)
    want[np.arange(T), targets] -= 1
    np.testing.assert_allclose(bt["d.logits"], want / T, atol=1e-7)
    assert np.all(np.triu(bt["d.h.0.att"], 1) == 0) and np.all(np.triu(bt["d.h.0.scores"], 1) == 0)


CELLS = [
    ("d.logits", (2, 3)),
    ("d.lm_head", (5, 1)),
    ("d.ln_f", (1, 6)),
    ("d.h.1.res_2", (3, 2)),
    ("d.h.1.mlp_act", (4, 17)),
    ("d.h.1.mlp_pre", (4, 17)),
    ("d.h.1.ln_2", (0, 3)),
    ("d.h.0.res_1", (5, 0)),
    ("d.h.0.attn_concat", (3, 5)),
    ("d.h.0.att", (1, 5, 2)),
    ("d.h.0.scores", (0, 4, 4)),
    ("d.h.0.q", (1, 3, 2)),
    ("d.h.0.k", (0, 2, 1)),
    ("d.h.0.v", (1, 1, 3)),
    ("d.h.0.ln_1", (2, 2)),
    ("d.x0", (1, 4)),
    ("d.wte", (4, 7)),
    ("d.wpe", (0, 0)),
    ("transformer.h.0.attn.c_attn.weight", (3, 11)),
    ("transformer.h.1.ln_2.bias", (5,)),
]


@pytest.mark.parametrize("name,index", CELLS)
def test_sampled_cells_equal_a_central_difference(model, name, index):
    ids, targets = prompt_window(model, "the lazy dog jumps")
    ids[4] = ids[1]
    bt = backtrace(model, ids, targets)
    fd = finite_difference(model, bt, name, index)
    assert fd.step == FD_STEP and fd.backprop == pytest.approx(float(bt[name][index]))
    scale = np.abs(bt[name]).max()
    assert abs(fd.difference) <= 1e-4 * scale + 1e-7, (fd.backprop, fd.estimate)
    # and the estimate is the loss moved by +-step, recomputed here for a weight
    if name.startswith("transformer."):
        p = {k: np.array(v, dtype=np.float64) for k, v in model.params.items()}
        p[name][index] += FD_STEP
        assert fd.loss_plus == pytest.approx(reference.loss(p, ids, targets, 2), abs=1e-12)


# ----- one AdamW update --------------------------------------------------------------------------


@pytest.fixture()
def trainer():
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=8)
    t = make_trainer(
        Corpus.from_text(TEXT * 20), "char", model_config=cfg,
        train_config=TrainConfig(batch_size=2, max_steps=20, warmup_steps=3, eval_interval=100, learning_rate=0.05),
    )  # fmt: skip
    for _ in range(4):
        t.step()
    return t


def test_adamw_step_is_the_trainers_update_written_out(trainer):
    model, c = trainer.model, trainer.config
    ids, targets = prompt_window(model, "the lazy dog")
    name, index = "transformer.h.0.mlp.c_fc.weight", (3, 5)
    flat_before, m_before = model.flat.copy(), trainer.m.copy()
    u = explain_adamw_step(model, ids, targets, name, index, trainer)
    np.testing.assert_array_equal(model.flat, flat_before)  # nothing changed until applied
    np.testing.assert_array_equal(trainer.m, m_before)
    _, grads = model.loss_and_grads(ids[None], targets[None])
    assert u.grad == pytest.approx(float(grads[name][index]), rel=1e-5)
    norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    assert u.grad_norm == pytest.approx(norm, rel=1e-5)
    factor = min(1.0, c.grad_clip / (norm + 1e-6))
    assert u.clip_factor == pytest.approx(factor, rel=1e-5)
    assert u.grad_clipped == pytest.approx(u.grad * factor, rel=1e-5)
    assert u.step == 5 and u.lr == pytest.approx(trainer.lr_at(4))
    flat_i = model.layout.offsets[name] + np.ravel_multi_index(index, grads[name].shape)
    assert u.m_prev == trainer.m[flat_i] and u.v_prev == trainer.v[flat_i]
    g = u.grad_clipped
    assert u.m == pytest.approx(c.beta1 * u.m_prev + (1 - c.beta1) * g, rel=1e-5)
    assert u.v == pytest.approx(c.beta2 * u.v_prev + (1 - c.beta2) * g * g, rel=1e-5)
    assert u.m_hat == pytest.approx(u.m / (1 - c.beta1**5)) and u.v_hat == pytest.approx(u.v / (1 - c.beta2**5))
    assert u.decayed
    w = u.weight_before * (1 - u.lr * c.weight_decay)
    assert u.weight_after == pytest.approx(w + u.adam_change, rel=1e-5)
    assert u.change == pytest.approx(u.decay_change + u.adam_change, rel=1e-4)
    assert u.loss_before == pytest.approx(model.forward(ids[None], targets[None]), rel=1e-6)
    assert u.loss_after < u.loss_before  # a step along the window's own gradient
    apply_adamw_step(model, u)
    assert trainer.step_count == 5 and model.params[name][index] == np.float32(u.weight_after)
    assert model.forward(ids[None], targets[None]) == pytest.approx(u.loss_after, rel=1e-6)
    with pytest.raises(ConfigError, match="changed"):
        apply_adamw_step(model, u)


def test_adamw_step_without_a_trainer_starts_from_zero_moments(model):
    ids, targets = prompt_window(model, "the dog")
    u = explain_adamw_step(model, ids, targets, "transformer.ln_f.bias", 2, config=TrainConfig(grad_clip=0.0))
    assert u.step == 1 and u.m_prev == 0 and u.v_prev == 0 and not u.decayed and u.clip_factor == 1.0
    # at step 1 Adam moves every weight by about lr: m_hat / sqrt(v_hat) = sign(g)
    assert u.change == pytest.approx(-np.sign(u.grad) * u.lr, rel=1e-3)
    with pytest.raises(ConfigError):
        explain_adamw_step(model, ids, targets, "transformer.nope", 0)
