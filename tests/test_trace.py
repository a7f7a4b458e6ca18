"""The trace is the model's own forward pass: its stages recompute from each other and from the weights."""

import numpy as np
import pytest

from tinylm.core import GPT, ModelConfig, train_tokenizer

TEXT = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def model():
    tok = train_tokenizer("char", TEXT)
    m = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=4, n_embd=16), tok, seed=2)
    m.flat[:] = np.random.default_rng(4).normal(0, 0.3, m.flat.size).astype(np.float32)
    return m


def test_trace_logits_equal_model_logits(model):
    tr = model.trace("the lazy dog")
    np.testing.assert_array_equal(tr["logits"], model.logits(tr.ids[None])[0])
    assert tr.tokens == list("the lazy dog")


def test_every_stage_has_its_documented_shape(model):
    tr = model.trace("quick fox")
    T, C, NH, V = 9, 16, 4, model.config.vocab_size
    shapes = {"wte": (T, C), "wpe": (T, C), "x0": (T, C), "ln_f": (T, C), "logits": (T, V), "probs": (T, V)}
    for l in range(2):
        h = f"h.{l}."
        shapes.update(
            {
                h + "q": (NH, T, 4),
                h + "k": (NH, T, 4),
                h + "v": (NH, T, 4),
                h + "scores": (NH, T, T),
                h + "att": (NH, T, T),
                h + "head_out": (NH, T, 4),
                h + "attn_concat": (T, C),
                h + "mlp_pre": (T, 4 * C),
                h + "mlp_act": (T, 4 * C),
                h + "res_2": (T, C),
                h + "ln_1.mean": (T,),
            }
        )
    for name, shape in shapes.items():
        assert tr[name].shape == shape, name


def test_stages_recompute_from_each_other_and_the_weights(model):
    tr = model.trace("over the lazy")
    P = {k: v.astype(np.float64) for k, v in model.params.items()}
    x = tr["wte"].astype(np.float64) + tr["wpe"]
    np.testing.assert_allclose(tr["x0"], x, atol=1e-6)
    np.testing.assert_allclose(tr["wte"], P["transformer.wte.weight"][tr.ids], atol=0)
    for l in range(2):
        h, w = f"h.{l}.", f"transformer.h.{l}."
        xin = tr["x0"] if l == 0 else tr[f"h.{l - 1}.res_2"]
        ln = (xin - tr[h + "ln_1.mean"][:, None]) * tr[h + "ln_1.rstd"][:, None] * P[w + "ln_1.weight"] + P[
            w + "ln_1.bias"
        ]
        np.testing.assert_allclose(tr[h + "ln_1"], ln, atol=1e-5)
        q, k, v = tr[h + "q"].astype(np.float64), tr[h + "k"].astype(np.float64), tr[h + "v"]
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(4)
        T = scores.shape[-1]
        lower = np.tril(np.ones((T, T), dtype=bool))
        np.testing.assert_allclose(tr[h + "scores"][:, lower], scores[:, lower], atol=1e-5)
        assert np.all(np.isneginf(tr[h + "scores"][:, ~lower]))
        e = np.exp(np.where(lower, scores, -np.inf) - scores.max(-1, keepdims=True))
        np.testing.assert_allclose(tr[h + "att"], e / e.sum(-1, keepdims=True), atol=1e-5)
        np.testing.assert_allclose(tr[h + "head_out"], tr[h + "att"] @ v, atol=1e-5)
        np.testing.assert_allclose(tr[h + "attn_concat"], tr[h + "head_out"].transpose(1, 0, 2).reshape(T, 16), atol=0)
        proj = tr[h + "attn_concat"] @ P[w + "attn.c_proj.weight"] + P[w + "attn.c_proj.bias"]
        np.testing.assert_allclose(tr[h + "attn_proj"], proj, atol=1e-5)
        np.testing.assert_allclose(tr[h + "res_1"], xin + tr[h + "attn_proj"], atol=1e-5)
        u = tr[h + "mlp_pre"].astype(np.float64)
        gelu = 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u**3)))
        np.testing.assert_allclose(tr[h + "mlp_act"], gelu, atol=1e-5)
        np.testing.assert_allclose(tr[h + "res_2"], tr[h + "res_1"] + tr[h + "mlp_out"], atol=1e-5)
    logits = tr["ln_f"].astype(np.float64) @ P["transformer.wte.weight"].T
    np.testing.assert_allclose(tr["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(tr["probs"].sum(-1), 1, atol=1e-6)


def test_prompt_longer_than_context_is_cropped_to_the_last_tokens(model):
    tr = model.trace(TEXT)
    assert len(tr.ids) == 16 and "".join(tr.tokens) == TEXT[-16:]
