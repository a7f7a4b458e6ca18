"""Knock-outs on the Attention screen: the shown probabilities are recomputed from the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import DataTable, Static

from tinylm.core import reference
from tinylm.tui.app import create_app
from tinylm.tui.screens.ablation import RankScreen
from tinylm.tui.screens.attention import AttentionScreen
from tinylm.tui.session import Session


@pytest.fixture
def session(trained_session):
    return Session(trained_session.model, None, trained_session.corpus, prompt="the quick fox")


def ref_probs(session, ablate=None):
    m = session.model
    ids = m.tokenizer.encode(session.prompt)
    return reference.forward(m.params, ids, m.config.n_head, m.wpe, ablate=ablate)["probs"][-1]


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def assert_sampled(session, tokens, ablate, sampling=None):
    """tokens are what the reference's probabilities give, drawn one after another with the sampling settings
    (Generate's defaults unless given) and their seed, the knock-outs applied at every step."""
    from tinylm.core import Sampling
    from tinylm.core.sampling import draw

    sampling = sampling or Sampling(temperature=1.0, seed=0)
    rng = sampling.rng()
    m = session.model
    ids = list(m.tokenizer.encode(session.prompt))
    for tok in tokens:
        ref = reference.forward(m.params, np.array(ids[-16:]), 2, m.wpe, ablate=ablate)
        want = (
            int(np.argmax(ref["probs"][-1])) if sampling.greedy else draw(sampling.distribution(ref["logits"][-1]), rng)
        )
        assert tok == want
        ids.append(tok)


def panel_text(screen) -> str:
    return str(screen.query_one("#ablation", Static).render())


async def test_keys_knock_out_the_head_the_mlp_and_switch_to_the_mean(session):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        app.switch_mode("attention")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AttentionScreen)
        assert not screen.query_one("#ablation").display  # nothing knocked out: no panel

        await pilot.press("a")
        await settle(pilot)
        before, after = ref_probs(session), ref_probs(session, {"0.0": "zero"})
        chosen = int(np.argmax(before))
        result = screen.ablation_result
        assert result.chosen == chosen
        np.testing.assert_allclose(result.before, before, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(result.after, after, rtol=1e-4, atol=1e-7)
        text = panel_text(screen)
        assert f"{100 * before[chosen]:.1f}% → {100 * after[chosen]:.1f}%" in text
        assert f"({100 * (after[chosen] - before[chosen]):+.2f} points)" in text
        assert "L0 H0" in text and "head 0 ✗" in str(screen.thumb_labels[0].render())

        await pilot.press("right_square_bracket", "m", "z")
        await settle(pilot)
        assert "(mean)" in panel_text(screen)
        np.testing.assert_allclose(
            screen.ablation_result.after, ref_probs(session, {"0.0": "mean", "1.mlp": "mean"}), rtol=1e-4, atol=1e-7
        )
        # the continuation shown is drawn with Generate's settings (temperature 1, seed 0 by default) from the
        # reference's probabilities, token after token, with the knock-outs
        assert_sampled(session, screen.ablation_result.continued_after, {"0.0": "mean", "1.mlp": "mean"})
        assert screen.ablation_result.sampling == "T=1 · seed 0" and "T=1 · seed 0" in panel_text(screen)

        await pilot.press("u")
        await settle(pilot)
        assert session.ablations == () and not screen.query_one("#ablation").display


async def test_which_heads_matter_table_is_every_part_recomputed(session):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        app.switch_mode("attention")
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        rank = app.screen
        assert isinstance(rank, RankScreen)
        table = rank.query_one(DataTable)
        assert table.row_count == 2 * 2 + 2 * 2  # 2 layers x 2 heads, 2 attention layers, 2 MLPs
        before = ref_probs(session)
        chosen = int(np.argmax(before))
        keys = {"H": lambda l, x: f"{l}.{x[1:]}", "a": lambda l, x: f"{l}.attn", "m": lambda l, x: f"{l}.mlp"}
        for r in range(table.row_count):
            _, part, p_before, p_after, change, _ = table.get_row_at(r)
            layer, what = part[1:].split(" ")
            ref = ref_probs(session, {keys[what[0]](layer, what): "zero"})[chosen]
            assert float(p_before) == pytest.approx(before[chosen], abs=1e-4)
            assert float(p_after) == pytest.approx(ref, abs=1e-4), part
            assert float(change) == pytest.approx(ref - before[chosen], abs=2e-4), part
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AttentionScreen)


def test_the_keys_are_in_the_help():
    from tinylm.tui.screens.help import screen_bindings

    described = {b.key: b.description for b in screen_bindings(AttentionScreen)}
    for key in ("a", "A", "m", "z", "u", "w"):
        assert described.get(key), key


async def test_generate_shows_the_knock_outs_for_its_text(session):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("n", "n", "A")  # two tokens appended, then layer 0's attention knocked out
        await settle(pilot)
        screen = app.screen
        m = session.model
        ids = m.tokenizer.encode(screen.text)
        ref = reference.forward(m.params, ids, m.config.n_head, m.wpe, ablate={"0.attn": "zero"})["probs"][-1]
        np.testing.assert_allclose(screen.ablation_result.after, ref, rtol=1e-4, atol=1e-7)
        text = panel_text(screen)
        chosen = screen.ablation_result.chosen
        assert f"→ {100 * ref[chosen]:.1f}%" in text and "L0 attn" in text
        assert text.splitlines()[-1].startswith("changed:")


async def test_t_forces_the_cursor_rows_token(session):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        app.switch_mode("attention")
        await settle(pilot)
        screen = app.screen
        await pilot.press("down", "down", "t")
        await pilot.pause()
        await pilot.press("x", "enter")
        await settle(pilot)
        m = session.model
        ids = m.tokenizer.encode(session.prompt)
        ids[2] = m.tokenizer.encode("x")[0]
        ref = reference.forward(m.params, ids, m.config.n_head, m.wpe)["probs"][-1]
        np.testing.assert_allclose(screen.ablation_result.after, ref, rtol=1e-4, atol=1e-7)
        assert "Token 2 forced to x" in panel_text(screen)
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("x", "y", "enter")  # two tokens: refused, nothing changes
        await settle(pilot)
        assert session.forced_tokens[1] == {2: int(ids[2])}
        await pilot.press("u")
        await settle(pilot)
        assert not screen.query_one("#ablation").display


async def test_inspect_has_the_same_keys_and_samples_with_generates_settings(session):
    from tinylm.tui.screens.inspect import InspectScreen

    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, InspectScreen)
        assert not screen.query_one("#ablation").display
        await pilot.press("a")  # head 0 of layer 0, the layer and head Inspect shows
        await settle(pilot)
        np.testing.assert_allclose(screen.ablation_result.after, ref_probs(session, {"0.0": "zero"}), rtol=1e-4)
        assert "L0 H0" in panel_text(screen)
        assert_sampled(session, screen.ablation_result.continued_after, {"0.0": "zero"})
        # Generate's knobs: greedy, then temperature 0.7 with another seed; the panel follows them
        sampling = session.current_sampling()
        sampling.greedy = True
        await pilot.press("Z")  # the mode (z zooms the grid here): a recompute with the new settings too
        await settle(pilot)
        assert "(mean)" in panel_text(screen) and screen.ablation_result.sampling == "greedy"
        assert_sampled(session, screen.ablation_result.continued_after, {"0.0": "mean"}, sampling)
        sampling.greedy, sampling.temperature, sampling.seed = False, 0.7, 5
        await pilot.press("m")
        await settle(pilot)
        assert "T=0.7 · seed 5" in panel_text(screen)
        assert_sampled(session, screen.ablation_result.continued_after, {"0.0": "mean", "0.mlp": "mean"}, sampling)
        assert_sampled(session, screen.ablation_result.continued_before, None, sampling)
        await pilot.press("u")
        await settle(pilot)
        assert not screen.query_one("#ablation").display


async def test_ctrl_e_saves_the_heads_table(session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert isinstance(app.screen, RankScreen)
        await pilot.press("ctrl+e")
        await pilot.pause()
    texts = sorted(tmp_path.glob("tinylm-attention-*.txt"))
    assert len(texts) == 1 and "L0 H0" in texts[0].read_text()
