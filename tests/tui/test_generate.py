"""Generate: honest probability bars, knobs that re-filter at once, stepping, streaming, seeds, comparison."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Input

from tinylm.core import Sampling, reference
from tinylm.tui.app import create_app
from tinylm.tui.screens.generate import GenerateScreen
from tinylm.tui.session import Session
from tinylm.tui.widgets.compare import COMPARE_TOKENS, strategies
from tinylm.tui.widgets.probbars import ProbBars


def expected_bars(model, text: str, sampling: Sampling, k: int = 10):
    """(ids, probs) of the k most likely tokens, recomputed from the model."""
    raw = model.next_token_probs(text)
    with np.errstate(divide="ignore"):
        probs = sampling.distribution(np.log(raw))
    order = np.lexsort((np.arange(probs.size), -probs))[:k]
    return [int(i) for i in order], probs[order]


def shown_bars(app):
    items = app.screen.query_one("#bars", ProbBars).items
    return [it.id for it in items], np.array([it.prob for it in items])


async def open_generate(app, pilot):
    await pilot.press("5")
    await pilot.pause()
    assert isinstance(app.screen, GenerateScreen)
    return app.screen


class TestBars:
    @pytest.mark.parametrize("size", [(80, 24), pytest.param((200, 60), marks=pytest.mark.slow)])
    async def test_bars_are_the_models_next_token_probabilities(self, session, screen_text, size):
        app = create_app(session)
        async with app.run_test(size=size) as pilot:
            await open_generate(app, pilot)
            ids, probs = shown_bars(app)
            want_ids, want_probs = expected_bars(session.model, "The fox", Sampling(), len(ids))
            assert len(ids) >= 10 and ids == want_ids  # as many bars as the panel has rows
            np.testing.assert_allclose(probs, want_probs, rtol=1e-6)
            model = session.model
            ref = reference.forward(model.params, model.encode_prompt("The fox"), model.config.n_head, model.wpe)
            np.testing.assert_allclose(probs, ref["probs"][-1][ids], rtol=1e-4)  # the float64 reference's numbers
            text = screen_text(app)
            assert "next token" in text
            assert f"{100 * want_probs[0]:.1f}%" in text  # the top bar's number as printed

    async def test_knobs_refilter_at_once(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press("plus")
            assert screen.sampling.temperature == 1.2
            ids, probs = shown_bars(app)
            want_ids, want_probs = expected_bars(session.model, "The fox", Sampling(temperature=1.2), len(ids))
            assert ids == want_ids
            np.testing.assert_allclose(probs, want_probs, rtol=1e-6)
            assert "temp 1.2" in screen_text(app)
            for _ in range(3):
                await pilot.press("minus")
            assert screen.sampling.temperature == 0.7
            await pilot.press("k", "k", "k")  # off -> 50 -> 20 -> 10
            assert screen.sampling.top_k == 10
            ids, probs = shown_bars(app)
            _, want = expected_bars(session.model, "The fox", Sampling(temperature=0.7, top_k=10), len(ids))
            np.testing.assert_allclose(probs, want, rtol=1e-6)
            await pilot.press("p", "p")  # off -> 0.95 -> 0.9
            assert screen.sampling.top_p == 0.9
            _, want = expected_bars(session.model, "The fox", Sampling(temperature=0.7, top_k=10, top_p=0.9), len(ids))
            np.testing.assert_allclose(shown_bars(app)[1], want, rtol=1e-6)
            await pilot.press("g")
            ids, probs = shown_bars(app)
            assert probs[0] == 1.0 and ids[0] == int(np.argmax(session.model.next_token_probs("The fox")))
            assert "greedy on" in screen_text(app)

    async def test_unseen_characters_and_empty_prompt(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            screen.query_one("#prompt", Input).value = "Zürich ☃ 日本"
            await pilot.pause()
            ids, probs = shown_bars(app)
            assert len(ids) >= 10
            want = expected_bars(session.model, "Zürich ☃ 日本", Sampling(), len(ids))[1]
            np.testing.assert_allclose(probs, want, rtol=1e-6)
            screen.query_one("#prompt", Input).value = ""
            await pilot.pause()
            assert "type a prompt" in screen_text(app)
            await pilot.press("n")  # nothing to continue: a message, no crash
            assert app.is_running

    async def test_without_a_model(self, screen_text):
        app = create_app(Session())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5", "n", "space", "plus", "c")
            assert "No model yet" in screen_text(app)


class TestGenerating:
    async def test_step_appends_the_sampled_token(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press("n", "n", "n")
            assert len(screen.generated) == 3
            text = "The fox"
            for i, (token, piece) in enumerate(screen.generated):  # each draw is seeded by seed + position
                step = next(iter(session.model.generate(text, Sampling(seed=i), max_new_tokens=1)))
                assert (token, piece) == (step.id, step.text)
                text += piece
            assert screen.text == text  # the generated text follows the prompt on screen,
            assert app.session.prompt == "The fox"  # but the prompt stays as typed (t takes the text)
            assert screen.query_one("#prompt", Input).value == "The fox"

    async def test_seed_is_settable_and_reproducible(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press("s")  # focus the seed field
            await pilot.press("end", "backspace", "4", "2", "enter")
            assert screen.sampling.seed == 42
            await pilot.press("n", "n", "n", "n")
            first = screen.text
            await pilot.press("x")  # back to the prompt
            assert screen.text == "The fox"
            await pilot.press("n", "n", "n", "n")
            assert screen.text == first
            await pilot.press("r")
            assert screen.sampling.seed == 43 and "43" in screen_text(app)

    @pytest.mark.parametrize("typed", ["-1", "-99999999999999999999", "99999999999999999999"])
    async def test_a_seed_numpy_cannot_take_is_refused_where_it_is_typed(self, session, typed):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press("s", "ctrl+a", "ctrl+k", *typed, "enter")
            await pilot.pause()
            shown = [n.message for n in app._notifications]
            assert screen.sampling.seed == 0 and any("from 0 to" in m for m in shown), shown  # the reason
            await pilot.press("n", "space")  # sampling goes on with the seed it had
            await pilot.pause(0.3)
            await pilot.press("space")
            assert app.is_running and screen.generated

    async def test_the_largest_seed_wraps_instead_of_failing(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press("s", "ctrl+a", "ctrl+k", *str(2**63 - 1), "enter")
            await pilot.press("n", "n", "r")  # the 2nd token's seed and the next seed are past the largest
            await pilot.pause()
            assert app.is_running and len(screen.generated) == 2 and screen.sampling.seed == 0

    async def test_streaming_starts_and_stops(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press("space")
            assert screen.streaming
            await pilot.pause(0.5)
            await pilot.press("space")
            assert not screen.streaming
            produced = len(screen.generated)
            assert produced > 0
            expected = [g.id for g in session.model.generate("The fox", Sampling(seed=0), max_new_tokens=produced)]
            assert [t for t, _ in screen.generated] == expected
            await pilot.pause(0.3)
            assert len(screen.generated) == produced  # stopped means stopped

    async def test_compare_strategies_side_by_side(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(200, 60)) as pilot:
            await open_generate(app, pilot)
            await pilot.press("c")
            await app.workers.wait_for_complete()
            await pilot.pause()
            for i, (_label, sampling) in enumerate(strategies(0)):
                steps = session.model.generate("The fox", sampling, max_new_tokens=COMPARE_TOKENS)
                tok = session.model.tokenizer  # the unknown token is named, not shown as U+FFFD
                want = "".join(tok.token_text(g.id) if g.id == tok.unk_id else g.text for g in steps)
                shown = str(app.screen.query_one(f"#cmp-{i}").content)
                assert shown == want.replace("\n", "⏎ ")
            text = screen_text(app)
            for label in ("greedy", "temperature 0.7", "top-k 10", "top-p 0.9"):
                assert label in text


class TestProbBarsWidget:
    def test_tokens_are_made_visible(self):
        from tinylm.tui.tokens import visible
        from tinylm.tui.widgets.probbars import display_token

        assert display_token(" ") == "␣" and display_token("\n") == "⏎" and display_token("") == "∅"
        for text in (" ", "\n", "\t", "\r", "\x00", "a\nb"):  # one glyph for a token on every screen
            assert display_token(text) == visible(text)
        assert display_token("abcdefghij", 5) == "abcd…"

    def test_bar_length_is_the_probability(self):
        from tinylm.tui.widgets.probbars import bar

        assert bar(1.0, 10) == "█" * 10 and bar(0.0, 10) == " " * 10
        assert bar(0.5, 10).rstrip() == "█" * 5 and bar(0.0625, 2) == "▏ "

    def test_percent_keeps_two_digits_below_a_tenth_of_a_percent(self):
        from tinylm.tui.widgets.probbars import percent

        assert percent(0.123) == "12.3%" and percent(1.0) == "100.0%" and percent(0.0) == "0.0%"
        assert percent(2.1e-5) == "0.0021%" and percent(1 / 50257) == "0.002%"
        assert percent(3.4e-9) == "3.4e-07%"
        assert all(len(percent(p)) <= 8 for p in (1.0, 0.5, 1e-3, 9.9e-4, 1e-7, 1e-12))

    def test_top_tokens_sorted_with_ties_by_id(self, trained_session):
        from tinylm.tui.widgets.probbars import top_tokens

        probs = np.array([0.1, 0.3, 0.3, 0.2, 0.1])
        items = top_tokens(probs, trained_session.model.tokenizer, k=3)
        assert [it.id for it in items] == [1, 2, 3]


class TestEndOfText:
    """A model whose config names an end-of-text token stops there: n and the stream, E keeps sampling."""

    @staticmethod
    def force_eos(session, monkeypatch, free: list[int]) -> list[int]:
        """Make the third new token of `free` the model's end-of-text token; the ids up to it."""
        stop = next(i for i in range(2, len(free)) if free[i] not in free[:i])
        monkeypatch.setattr(session.model.config, "eos_token_id", free[stop])
        return free[: stop + 1]

    async def test_step_stops_at_eos_and_says_so(self, session, screen_text, monkeypatch):
        free, text = [], "The fox"
        for i in range(12):  # what n appends: each draw seeded by seed + position
            step = next(iter(session.model.generate(text, Sampling(seed=i), 1, stop_at_eos=False)))
            free.append(step.id)
            text += step.text
        free = self.force_eos(session, monkeypatch, free)
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press(*["n"] * (len(free) + 2))
            assert [t for t, _ in screen.generated] == free[:-1]  # the eos token is not added, nothing after it
            shown = screen_text(app)
            assert "end of text" in shown and "E: keep sampling" in shown
            await pilot.press("E", "n")
            assert [t for t, _ in screen.generated] == free  # past it when told to
            assert "end of text" not in screen_text(app)

    async def test_stream_stops_by_itself_at_eos(self, session, screen_text, monkeypatch):
        free = [g.id for g in session.model.generate("The fox", Sampling(seed=0), 12, stop_at_eos=False)]
        free = self.force_eos(session, monkeypatch, free)
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_generate(app, pilot)
            await pilot.press("space")
            for _ in range(100):
                await pilot.pause(0.05)
                if not screen.streaming:
                    break
            assert not screen.streaming  # the stream ended by itself
            assert [t for t, _ in screen.generated] == free[:-1]
            assert "end of text" in screen_text(app)
