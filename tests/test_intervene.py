"""Interventions: the model's ablated pass equals the float64 reference with the same parts knocked out."""

import numpy as np
import pytest

from tinylm.core import (
    GPT,
    Ablation,
    ConfigError,
    Intervention,
    ModelConfig,
    Sampling,
    continuation,
    greedy_continuation,
    intervened_probs,
    rank_heads,
    reference,
    train_tokenizer,
)

TEXT = "the quick brown fox jumps over the lazy dog"
PROMPT = "over the lazy"


@pytest.fixture(scope="module")
def model():
    tok = train_tokenizer("char", TEXT)
    m = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=4, n_embd=16), tok, seed=2)
    m.flat[:] = np.random.default_rng(4).normal(0, 0.3, m.flat.size).astype(np.float32)
    return m


def ref_forward(model, ids, ablate=None):
    return reference.forward(model.params, ids, model.config.n_head, model.wpe, ablate=ablate)


CASES = [
    ([Ablation(1, "head", 3)], {"1.3": "zero"}),
    ([Ablation(0, "head", 1, "mean")], {"0.1": "mean"}),
    ([Ablation(0, "attn")], {"0.attn": "zero"}),
    ([Ablation(1, "attn", mode="mean")], {"1.attn": "mean"}),
    ([Ablation(0, "mlp")], {"0.mlp": "zero"}),
    ([Ablation(1, "mlp", mode="mean"), Ablation(0, "head", 2)], {"1.mlp": "mean", "0.2": "zero"}),
]


@pytest.mark.parametrize("ablations, plain", CASES)
def test_ablated_trace_is_the_reference_with_the_same_ablation(model, ablations, plain):
    tr = model.trace(PROMPT, Intervention(tuple(ablations)))
    ref = ref_forward(model, tr.ids, plain)
    for name in tr.names:
        np.testing.assert_allclose(tr[name], ref[name], rtol=1e-4, atol=2e-5, err_msg=name)
    clean = ref_forward(model, tr.ids)
    assert np.abs(ref["probs"][-1] - clean["probs"][-1]).max() > 1e-4  # the ablation changed something
    np.testing.assert_allclose(intervened_probs(model, PROMPT, ablations), ref["probs"][-1], rtol=1e-4, atol=1e-6)


def test_zeroing_every_head_equals_zero_inputs_to_the_attention_projection(model):
    """With every head zeroed, c_proj sees 0: a copy of the model whose c_proj weights are 0 gives the same."""
    every = [Ablation(l, "head", h) for l in range(2) for h in range(4)]
    ablated = intervened_probs(model, PROMPT, every)
    twin = GPT(model.config, model.tokenizer, init=False)
    twin.flat[:] = model.flat
    for l in range(2):
        twin.params[f"transformer.h.{l}.attn.c_proj.weight"][...] = 0
    np.testing.assert_allclose(ablated, twin.next_token_probs(PROMPT), rtol=1e-5, atol=1e-7)


def test_zero_attention_of_a_layer_equals_zero_projection_weights_and_bias(model):
    twin = GPT(model.config, model.tokenizer, init=False)
    twin.flat[:] = model.flat
    twin.params["transformer.h.0.attn.c_proj.weight"][...] = 0
    twin.params["transformer.h.0.attn.c_proj.bias"][...] = 0
    np.testing.assert_allclose(
        intervened_probs(model, PROMPT, Ablation(0, "attn")), twin.next_token_probs(PROMPT), rtol=1e-5, atol=1e-7
    )


def test_no_intervention_is_the_plain_pass(model):
    np.testing.assert_allclose(intervened_probs(model, PROMPT), model.next_token_probs(PROMPT), rtol=1e-6, atol=1e-8)


def test_forcing_a_token_is_the_pass_over_the_edited_prompt(model):
    ids = model.encode_prompt(PROMPT)
    x = model.tokenizer.encode("x")[0]
    tr = model.trace(PROMPT, Intervention(tokens={2: x}))
    edited = ids.copy()
    edited[2] = x
    np.testing.assert_array_equal(tr.ids, edited)
    np.testing.assert_allclose(tr["probs"][-1], model.next_token_probs(edited), rtol=1e-5, atol=1e-7)
    with pytest.raises(ConfigError, match="outside the prompt"):
        model.trace(PROMPT, Intervention(tokens={99: x}))


def test_ranking_recomputes_each_part_alone(model):
    effects = rank_heads(model, PROMPT)
    assert len(effects) == 2 * 4 + 2 * 2  # every head, every attention layer, every MLP
    token = int(np.argmax(model.next_token_probs(PROMPT)))
    deltas = [abs(e.delta) for e in effects]
    assert deltas == sorted(deltas, reverse=True)
    for e in effects:
        ab = e.ablation
        key = f"{ab.layer}.{ab.head}" if ab.part == "head" else f"{ab.layer}.{ab.part}"
        ref = ref_forward(model, model.encode_prompt(PROMPT), {key: "zero"})["probs"][-1]
        assert e.p_after == pytest.approx(ref[token], rel=1e-4, abs=1e-6), ab.label
        assert e.p_before == pytest.approx(model.next_token_probs(PROMPT)[token], rel=1e-5)
        assert e.top_after == int(np.argmax(ref))


def test_greedy_continuation_under_ablation_follows_the_reference(model):
    ab = Ablation(1, "mlp")
    toks = greedy_continuation(model, PROMPT, 3, ab)
    ids = list(model.encode_prompt(PROMPT))
    for tok in toks:
        ref = ref_forward(model, np.array(ids[-16:]), {"1.mlp": "zero"})["logits"][-1]
        assert tok == int(np.argmax(ref))
        ids.append(tok)


def test_a_sampled_continuation_draws_from_the_references_odds_with_the_seed(model):
    from tinylm.core.sampling import draw

    sampling = Sampling(temperature=1.5, top_k=5, seed=7)  # flat enough that draws differ from the argmax
    toks = continuation(model, PROMPT, 6, Ablation(0, "head", 1), sampling)
    rng, ids = np.random.default_rng(7), list(model.encode_prompt(PROMPT))
    for tok in toks:
        ref = ref_forward(model, np.array(ids[-16:]), {"0.1": "zero"})["logits"][-1]
        assert tok == draw(sampling.distribution(ref), rng)
        ids.append(tok)
    # without a change it is what generation draws with the same settings and seed (within the context:
    # past it generation drops the oldest quarter where a continuation slides by one)
    plain = continuation(model, PROMPT, 3, None, sampling)
    assert plain == [step.id for step in model.generate(PROMPT, Sampling(1.5, 5, seed=7), max_new_tokens=3)]
    assert continuation(model, PROMPT, 3, None, Sampling(greedy=True)) == greedy_continuation(model, PROMPT, 3)


@pytest.mark.parametrize(
    "text, message",
    [("1", "cannot read"), ("a.b", "cannot read"), ("1.x", "cannot read"), ("2.0", "layer 2"), ("0.4", "head 4")],
)
def test_out_of_range_or_unreadable_ablations_are_one_line_errors(model, text, message):
    with pytest.raises(ConfigError, match=message):
        intervened_probs(model, PROMPT, Ablation.parse(text))


def test_parse_reads_the_three_forms():
    assert Ablation.parse("1.3", "mean") == Ablation(1, "head", 3, "mean")
    assert Ablation.parse("0.attn").part == "attn" and Ablation.parse("2.mlp").label == "2.mlp"
