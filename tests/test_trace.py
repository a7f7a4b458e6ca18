"""The trace is the model's own forward pass: every stage equals the reference forward's, shaped as documented."""

import numpy as np
import pytest

from tinylm.core import GPT, ModelConfig, reference, train_tokenizer

TEXT = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def model():
    tok = train_tokenizer("char", TEXT)
    m = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=4, n_embd=16), tok, seed=2)
    m.flat[:] = np.random.default_rng(4).normal(0, 0.3, m.flat.size).astype(np.float32)
    return m


def test_trace_logits_equal_model_logits(model):
    tr = model.trace("the lazy dog")
    # with more than one thread the trace splits its products by columns across threads, which
    # changes BLAS's blocking and so the last bits: equal to float32 rounding
    np.testing.assert_allclose(tr["logits"], model.logits(tr.ids[None])[0], rtol=1e-5, atol=1e-6)
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


def test_every_stage_is_the_float64_reference_forward(model):
    tr = model.trace("over the lazy")
    ref = reference.forward(model.params, tr.ids, model.config.n_head, model.wpe)
    assert set(tr.names) == set(ref)  # the same intermediates, under the same names
    for name in tr.names:
        assert tr[name].shape == ref[name].shape, name
        np.testing.assert_allclose(tr[name], ref[name], rtol=1e-4, atol=2e-5, err_msg=name)  # -inf where masked
    np.testing.assert_allclose(tr["probs"].sum(-1), 1, atol=1e-6)


def test_prompt_longer_than_context_is_cropped_to_the_last_tokens(model):
    tr = model.trace(TEXT)
    assert len(tr.ids) == 16 and "".join(tr.tokens) == TEXT[-16:]


def test_a_trace_keeps_its_numbers_after_the_model_runs_again(model):
    """The trace holds the forward pass's own buffers (views, not copies): the model must not
    write into them on its next pass."""
    tr = model.trace("the lazy dog")
    kept = {name: tr[name].copy() for name in tr.names}
    other = model.trace("quick brown fox jumps")
    model.logits(other.ids[None])
    for name in tr.names:
        np.testing.assert_array_equal(tr[name], kept[name], err_msg=name)
    assert not np.shares_memory(tr["h.1.att"], other["h.1.att"])


def test_byte_level_tokens_show_the_bytes_of_a_split_character():
    tok = train_tokenizer("bpe", TEXT, 260)
    m = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=8), tok, seed=2)
    tr = m.trace("a 🦊")
    assert tr.tokens == [tok.token_label(int(i)) for i in tr.ids]
    assert "".join(tr.tokens[-4:]) == r"\xf0\x9f\xa6\x8a"  # not four replacement characters


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_trace_is_the_same_forward_on_any_number_of_threads(model, threads, monkeypatch):
    """One thread: the model's own forward; more (for a large model: here every model is one):
    products split by columns across threads."""
    import numba

    from tinylm.core.threads import kernel_settings

    monkeypatch.setattr("tinylm.core.parallel.SPLIT_MIN_BYTES", 0)

    ids = model.encode_prompt("quick brown fox")
    model.forward(ids[None])
    full = model.last_activations.logits.copy()
    with kernel_settings(parallel=threads > 1):
        previous = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            tr = model.trace(ids)
        finally:
            numba.set_num_threads(previous)
    np.testing.assert_allclose(tr["logits"], full, rtol=1e-5, atol=1e-6)
    ref = reference.forward(model.params, tr.ids, model.config.n_head, model.wpe)
    np.testing.assert_allclose(tr["h.1.mlp_out"], ref["h.1.mlp_out"], rtol=1e-4, atol=2e-5)
