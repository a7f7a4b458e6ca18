"""Inspect: stages, explanations recomputed from the weights with plain numpy, keys, prompt, sizes, looks."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from tinylm.core import reference
from tinylm.tui.app import create_app
from tinylm.tui.explain import explain
from tinylm.tui.screens.inspect import InspectScreen
from tinylm.tui.session import Session
from tinylm.tui.stages import all_stages, stage_view
from tinylm.tui.widgets.heatmap import Heatmap


def vocab_of(model) -> list[str]:
    return [model.tokenizer.token_text(i) for i in range(model.config.vocab_size)]


class TestExplanations:
    def test_every_cell_of_every_stage_is_recomputed_from_its_inputs(self, session):
        model, trace = session.model, session.trace()
        params, vocab = dict(model.params), vocab_of(model)
        checked = 0
        for stage in all_stages(model.config.n_layer):
            for head in range(model.config.n_head if stage.per_head else 1):
                view = stage_view(stage, trace, head, vocab)
                rows, cols = view.values.shape
                for r in range(rows):
                    for c in range(cols):
                        shown = float(view.values[r, c])
                        value = explain(stage, trace, params, r, c, head, vocab).value
                        if stage.key == "att" and c > r:
                            assert value == 0.0 and shown == 0.0
                        elif math.isinf(shown):
                            assert value == shown
                        else:
                            assert value == pytest.approx(shown, rel=1e-4, abs=1e-5), (stage, head, r, c)
                        checked += 1
        assert checked > 2000

    def test_every_displayed_matrix_matches_the_float64_reference_forward(self, session):
        model, trace = session.model, session.trace()
        ref = reference.forward(model.params, trace.ids, model.config.n_head, model.wpe)
        vocab = vocab_of(model)
        for stage in all_stages(model.config.n_layer):
            expected = ref[stage.trace_name]
            if stage.key == "tokenize":
                expected = trace.ids[None, :]  # the ids themselves
            elif stage.key == "chosen":
                expected = expected[-1:]  # the last position's distribution
            for head in range(model.config.n_head if stage.per_head else 1):
                shown = stage_view(stage, trace, head, vocab).values
                want = expected[head] if stage.per_head else expected
                np.testing.assert_allclose(shown, want, rtol=1e-4, atol=1e-5, err_msg=stage.label())

    def test_score_explanation_shows_query_key_products_dot_and_scaling(self, session):
        model, trace = session.model, session.trace()
        hs = model.config.head_size
        stage = next(s for s in all_stages(2) if s.key == "scores" and s.layer == 1)
        expl = explain(stage, trace, model.params, 4, 2, head=1, width=200)
        q, k = trace["h.1.q"][1, 4].astype(np.float64), trace["h.1.k"][1, 2].astype(np.float64)
        text = "\n".join(expl.lines)
        assert " ".join(f"{v:+.4f}" for v in q) in text  # the query row
        assert " ".join(f"{v:+.4f}" for v in k) in text  # the key row
        assert " ".join(f"{v:+.4f}" for v in q * k) in text  # their element-wise products
        assert f"= {q @ k:.4f}" in text and f"√{hs}" in text
        assert expl.value == pytest.approx(q @ k / math.sqrt(hs), rel=1e-9)
        masked = explain(stage, trace, model.params, 2, 4, head=1)
        assert masked.value == -math.inf and "masked" in masked.lines[0]

    def test_softmax_layernorm_gelu_and_probability_texts(self, session):
        model, trace = session.model, session.trace()
        vocab = vocab_of(model)
        stages = {(s.key, s.layer): s for s in all_stages(2)}
        att = explain(stages["att", 0], trace, model.params, 3, 1, head=0, width=200)
        row = trace["h.0.scores"][0, 3, :4].astype(np.float64)
        assert f"normaliser Σ exp(s − max) = {np.exp(row - row.max()).sum():.4f}" in att.lines
        ln = explain(stages["ln_1", 0], trace, model.params, 2, 5)
        x = trace["x0"][2].astype(np.float64)
        assert f"row mean = {x.mean():.4f}" in ln.lines[1]
        gelu = explain(stages["mlp_act", 1], trace, model.params, 0, 7)
        assert f"pre = {trace['h.1.mlp_pre'][0, 7]:.4f}" == gelu.lines[0]
        chosen = explain(stages["chosen", None], trace, model.params, 0, 3, vocab=vocab)
        best = int(trace["probs"][-1].argmax())
        assert f"greedy choice: '{vocab[best]}'" in chosen.lines[-1] or "greedy choice" in chosen.lines[-1]


def make_app(session):
    return create_app(session)


async def open_inspect(pilot):
    pilot.app.switch_mode("inspect")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, InspectScreen)
    return screen


def title(screen) -> str:
    return str(screen.query_one("#stage-title").render())


class TestKeys:
    @pytest.mark.parametrize("size", [(80, 24), pytest.param((200, 60), marks=pytest.mark.slow)])
    async def test_step_through_every_stage_and_back(self, session, size):
        app = make_app(session)
        async with app.run_test(size=size) as pilot:
            screen = await open_inspect(pilot)
            assert title(screen).startswith("Tokenize")
            n = len(screen.stages)
            assert n == 4 + 15 * 2 + 4
            for i in range(1, n):
                await pilot.press("n")
                assert screen.index == i
                grid = screen.query_one("#grid", Heatmap)
                assert screen.explained is not None
                row, col = grid.cursor
                shown = grid.values[row, col]
                if np.isfinite(shown) and not grid.masked[row, col]:
                    assert screen.explained.value == pytest.approx(shown, rel=1e-4, abs=1e-5)
            assert title(screen).startswith("Chosen token")
            await pilot.press("n")
            assert screen.index == n - 1  # stays on the last stage
            await pilot.press("p", "p")
            assert title(screen).startswith("Logits")

    async def test_layer_and_head_keys_change_the_grid(self, session):
        app = make_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_inspect(pilot)
            await pilot.press(*["n"] * 8)  # tokenize, wte, wpe, x0, ln_1, q, k, v -> scores
            assert screen.stage.key == "scores" and screen.stage.layer == 0
            trace = session.trace()
            grid = screen.query_one("#grid", Heatmap)
            np.testing.assert_array_equal(grid.values, trace["h.0.scores"][0])
            await pilot.press("full_stop")
            assert session.head == 1 and "head 1 (0–1)" in title(screen)
            np.testing.assert_array_equal(grid.values, trace["h.0.scores"][1])
            await pilot.press("right_square_bracket")
            assert screen.stage.layer == 1 and session.layer == 1
            np.testing.assert_array_equal(grid.values, trace["h.1.scores"][1])
            await pilot.press("right_square_bracket", "comma", "comma")
            assert screen.stage.layer == 0 and session.head == 1  # both wrap around
            await pilot.press("left_square_bracket")
            assert screen.stage.layer == 1

    async def test_cursor_explains_the_selected_cell(self, session):
        app = make_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_inspect(pilot)
            await pilot.press(*["n"] * 8, "down", "down", "down", "right", "l")
            grid = screen.query_one("#grid", Heatmap)
            assert grid.cursor == (3, 2)
            expected = float(session.trace()["h.0.scores"][0, 3, 2])
            assert screen.explained.value == pytest.approx(expected, rel=1e-5)
            text = str(screen.query_one("#explain").render())
            assert text.startswith(f"[␣, e] = {expected:.4f}")
            assert "q·k = Σ (q ⊙ k)" in text

    async def test_editing_the_prompt_retraces(self, session):
        app = make_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_inspect(pilot)
            await pilot.press("e", "ctrl+a", "ctrl+k", *"a cat", "enter")
            assert session.prompt == "a cat"
            grid = screen.query_one("#grid", Heatmap)
            assert grid.col_labels == ["a", "␣", "c", "a", "t"]
            assert grid.has_focus  # keys work again after enter
            await pilot.press("n")
            assert screen.index == 1

    async def test_reload_never_waits_for_a_training_step(self, session):
        app = make_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_inspect(pilot)
            held, release = threading.Event(), threading.Event()

            def training_step():  # holds the weights as the trainer does during a step
                with session.model.lock:
                    held.set()
                    release.wait(5)

            thread = threading.Thread(target=training_step)
            thread.start()
            held.wait()
            session.prompt = "ab"
            start = time.perf_counter()
            screen.reload()
            assert time.perf_counter() - start < 1.0  # the UI thread did not wait for the lock (held for 5 s)
            assert screen.state.trace.tokens != ["a", "b"]  # still the previous snapshot
            release.set()
            thread.join()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.state.trace.tokens == ["a", "b"]
            assert screen.query_one("#grid", Heatmap).col_labels == ["a", "b"]  # redrawn from the new snapshot

    async def test_no_model_shows_a_friendly_line(self):
        app = make_app(Session())
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_inspect(pilot)
            assert screen.query_one(".no-model").display
            assert "No model yet" in str(screen.query_one(".no-model").render())
            await pilot.press("n", "right_square_bracket", "full_stop", "down")  # nothing to step: no crash

    @pytest.mark.slow  # many resizes
    async def test_tiny_terminal_and_back(self, session):
        app = make_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_inspect(pilot)
            for size in [(20, 5), (10, 3), (80, 24), (200, 60)]:
                await pilot.resize_terminal(*size)
                await pilot.press("n", "down", "right")
            assert screen.index == 4


def test_snapshot_scores_stage(snap_compare, trained_session):
    session = Session(trained_session.model, None, trained_session.corpus, prompt="The fox")
    assert snap_compare(create_app(session), press=["3", *["n"] * 8, "down", "down", "right"], terminal_size=(80, 24))
