"""A model without attention (MLP-only blocks) against the float64 references, finite differences and
transformers: the checkpoint is a GPT-2 with zero attention weights that computes the same function."""

import json

import numpy as np
import pytest

from tinylm.core import (
    GPT,
    ConfigError,
    ModelConfig,
    TrainConfig,
    backtrace,
    finite_difference,
    load,
    load_corpus,
    make_trainer,
    reference,
    reference_backward,
)
from tinylm.core.intervene import Ablation, Intervention, intervened_probs, rank_heads
from tinylm.core.kvwatch import kv_bytes
from tinylm.core.sampling import Sampling

TINY = dict(vocab_size=7, block_size=6, n_layer=2, n_head=2, n_embd=8, attention=False)
ATTENTION = ("ln_1.", "attn.c_attn.", "attn.c_proj.")


def mlp_model(dtype=np.float64, **overrides):
    model = GPT(ModelConfig(**{**TINY, **overrides}), dtype=dtype)
    # Larger-than-init weights, attention's too: an MLP-only model must never read them.
    model.flat[:] = np.random.default_rng(100).normal(0, 0.3, model.flat.size)
    return model


def batch(model, B=2, T=None, seed=1):
    rng = np.random.default_rng(seed)
    V, T = model.config.vocab_size, T or model.config.block_size
    return rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))


def zeroed(params):
    """The weights with every attention tensor zero, as the checkpoint holds them."""
    return {n: (np.zeros_like(w) if "attn." in n else np.array(w)) for n, w in params.items()}


def test_logits_are_the_reference_without_attention_and_gpt2_with_zero_attention():
    model = mlp_model()
    ids, _ = batch(model)
    ours = model.logits(ids)
    np.testing.assert_allclose(ours, reference.logits(model.params, ids, 2, attention=False), rtol=1e-6, atol=1e-6)
    # the same function as a plain GPT-2 whose attention weights are all zero
    np.testing.assert_allclose(ours, reference.logits(zeroed(model.params), ids, 2), rtol=1e-6, atol=1e-6)


def test_a_new_model_starts_with_zero_attention_weights():
    model = GPT(ModelConfig(**TINY))
    for name, w in model.params.items():
        if "attn." in name:
            assert not w.any(), name


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_every_gradient_matches_finite_differences(dropout):
    model = mlp_model(dropout=dropout)
    ids, targets = batch(model, T=4)

    def loss_at():
        rng = np.random.default_rng(5) if dropout else None
        return model.forward(ids, targets, dropout_rng=rng)

    loss_at()
    model.backward()
    grads = {n: g.copy() for n, g in model.grads.items()}
    eps = 1e-6
    for name, view in model.params.items():
        flat, numeric = view.reshape(-1), np.zeros(view.size)
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + eps
            up = loss_at()
            flat[i] = keep - eps
            down = loss_at()
            flat[i] = keep
            numeric[i] = (up - down) / (2 * eps)
        analytic = grads[name].reshape(-1)
        if name.split(".", 3)[-1].startswith(ATTENTION):
            assert not analytic.any() and not numeric.any(), name  # never read, never moved
            continue
        rel = np.linalg.norm(analytic - numeric) / (np.linalg.norm(analytic) + np.linalg.norm(numeric))
        assert rel < 1e-6, (name, rel)


def test_gradients_are_the_float64_reference_backward():
    model = mlp_model()
    ids, targets = batch(model, B=1)
    loss, grads = model.loss_and_grads(ids, targets)
    ref_loss, ref = reference_backward.backward(model.params, ids[0], targets[0], 2, attention=False)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref[name], rtol=1e-7, atol=1e-10, err_msg=name)


def test_trace_and_backtrace_have_no_attention_stages_and_match_the_references():
    model = mlp_model()
    ids, targets = batch(model, B=1)
    tr = model.trace(ids[0])
    ref = reference.forward(model.params, ids[0], 2, attention=False)
    assert set(tr.names) == set(ref)
    assert not any(n.endswith((".q", ".att", ".scores", ".ln_1", ".attn_proj")) for n in tr.names)
    for name in ref:
        np.testing.assert_allclose(tr[name], ref[name], rtol=1e-6, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(tr["h.1.res_1"], tr["h.0.res_2"])  # the block's input, unchanged
    bt = backtrace(model, ids[0], targets[0])
    _, dref = reference_backward.backward(model.params, ids[0], targets[0], 2, attention=False)
    assert {n for n in bt.arrays} <= set(dref)
    for name, g in bt.arrays.items():
        np.testing.assert_allclose(g, dref[name], rtol=1e-6, atol=1e-8, err_msg=name)
    fd = finite_difference(model, bt, "d.h.0.res_1", (1, 3))
    assert fd.difference == pytest.approx(0.0, abs=1e-7)


def test_generation_with_the_cache_is_the_full_forward():
    model = mlp_model(dtype=np.float32, block_size=8)
    steps = list(model.generate([1, 2, 3], Sampling(greedy=True), max_new_tokens=8))  # runs past the context
    ids = [1, 2, 3]
    for step in steps:
        expected = int(np.argmax(model.logits(np.array(ids[-8:]))[0, -1]))
        assert step.id == expected
        ids.append(step.id)
    assert kv_bytes(model.config, 8) == 0


def test_interventions_refuse_attention_parts_and_rank_the_mlps_alone():
    model = mlp_model(dtype=np.float32)
    with pytest.raises(ConfigError, match="no attention"):
        intervened_probs(model, [1, 2, 3], Ablation(0, "head", 1))
    with pytest.raises(ConfigError, match="no attention"):
        Intervention((Ablation(1, "attn"),)).check(model.config)
    effects = rank_heads(model, [1, 2, 3])
    assert sorted(e.ablation.label for e in effects) == ["0.mlp", "1.mlp"]
    p = intervened_probs(model, [1, 2, 3], Ablation(1, "mlp"))
    ref = reference.forward(model.params, np.array([1, 2, 3]), 2, ablate={"1.mlp": "zero"}, attention=False)
    np.testing.assert_allclose(p, ref["probs"][-1], rtol=1e-4, atol=1e-6)


def test_config_refuses_a_non_boolean_switch():
    with pytest.raises(ConfigError, match="attention must be true or false"):
        ModelConfig(attention="no").validate()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tr = make_trainer(
        load_corpus("fables"),
        "char",
        None,
        ModelConfig(n_layer=2, n_head=4, n_embd=32, block_size=24, attention=False),
        TrainConfig(batch_size=4, max_steps=15, eval_interval=15, eval_batches=1, learning_rate=3e-3),
    )
    for _ in range(15):
        tr.step()
    path = tmp_path_factory.mktemp("mlp") / "ckpt"
    tr.save(path)
    return tr.model, path


def test_training_leaves_attention_at_zero_and_the_checkpoint_says_mlp_only(trained):
    model, path = trained
    for name, w in model.params.items():
        if "attn." in name:
            assert not w.any(), name
    assert json.loads((path / "config.json").read_text())["tinylm"]["attention"] is False
    again = load(path)
    assert again.config.attention is False
    ids = np.arange(10)[None] % model.config.vocab_size
    np.testing.assert_array_equal(again.logits(ids), model.logits(ids))


def test_transformers_computes_the_same_function(trained):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model, path = trained
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(path)).eval()
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, (3, 24))
    with torch.no_grad():
        theirs = hf(torch.from_numpy(ids)).logits.numpy()
    assert np.abs(model.logits(ids) - theirs).max() < 1e-4
