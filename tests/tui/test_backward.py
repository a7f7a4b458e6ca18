"""Backward: every shown gradient and chain-rule value recomputed from the core, the finite-difference key,
the AdamW panel and its apply key, and saving the screen."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.core import backtrace, explain_adamw_step, finite_difference, prompt_window, reference_backward
from tinylm.tui.app import create_app
from tinylm.tui.backexplain import explain_back
from tinylm.tui.backstages import BackStage, all_back_stages, stage_matrix
from tinylm.tui.screens.backward import BackwardScreen
from tinylm.tui.session import Session


def window_trace(session):
    return backtrace(session.model, *prompt_window(session.model, session.prompt))


class TestChainRule:
    def test_every_cell_of_every_stage_is_recomputed_from_its_operands(self, session):
        model = session.model
        bt = window_trace(session)
        params = dict(model.params)
        checked = 0
        for stage in all_back_stages(model.config.n_layer):
            for head in range(model.config.n_head if stage.per_head else 1):
                shown = stage_matrix(bt, stage, head)
                rows, cols = shown.shape
                for r in range(rows):
                    for c in range(0, cols, max(1, cols // 20)):
                        value = explain_back(stage, bt, params, r, c, head).value
                        scale = np.abs(shown).max() + 1e-12
                        assert value == pytest.approx(float(shown[r, c]), rel=1e-4, abs=1e-5 * scale), (stage, r, c)
                        checked += 1
        assert checked > 1000

    def test_every_stage_is_the_float64_reference_backward(self, session):
        model = session.model
        ids, targets = prompt_window(model, session.prompt)
        bt = backtrace(model, ids, targets)
        _, ref = reference_backward.backward(model.params, ids, targets, model.config.n_head, model.wpe)
        for stage in all_back_stages(model.config.n_layer):
            if stage.key == "loss":
                continue
            want = ref[stage.name]
            for head in range(model.config.n_head if stage.per_head else 1):
                w = want[head] if stage.per_head else want
                scale = np.abs(w).max() + 1e-12
                np.testing.assert_allclose(stage_matrix(bt, stage, head) / scale, w / scale, atol=1e-4)


async def _open(app, pilot):
    await pilot.press("7")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, BackwardScreen) and screen.bt is not None
    return screen


async def _settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


class TestKeys:
    async def test_walks_from_the_loss_to_the_embeddings(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _open(app, pilot)
            bt = window_trace(session)
            assert screen.stage == BackStage("loss") and screen.bt.loss == pytest.approx(bt.loss, rel=1e-6)
            text = screen_text(app)
            assert f"loss {bt.loss:.4f}" in text and "L = mean_t −log p_t[y_t]" in text
            await pilot.press("n")
            assert screen.stage == BackStage("logits")
            await pilot.press("right", "right")
            row, col = screen.query_one("#grid").real_cursor
            assert screen.explained.value == pytest.approx(float(bt["d.logits"][row, col]), rel=1e-4, abs=1e-7)
            for _ in range(len(screen.stages)):
                await pilot.press("n")
            assert screen.stage == BackStage("wpe")
            assert "d.x0" in screen_text(app)
            for line in screen_text(app).splitlines():
                assert len(line) <= 80

    async def test_layer_and_head_keys(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _open(app, pilot)
            await pilot.press(*"n" * 4)
            assert screen.stage == BackStage("res_2", 1)
            await pilot.press("left_square_bracket")
            assert screen.stage == BackStage("res_2", 0)
            screen.index = screen.stages.index(BackStage("scores", 0))
            screen.show_stage()
            await pilot.press("full_stop", "down", "down")
            bt = window_trace(session)
            r, c = screen.query_one("#grid").real_cursor
            assert session.head == 1
            want = float(bt["d.h.0.scores"][1, r, c])
            assert screen.explained.value == pytest.approx(want, rel=1e-4, abs=1e-9)

    async def test_f_checks_the_cell_by_finite_differences(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _open(app, pilot)
            screen.index = screen.stages.index(BackStage("mlp_pre", 1))
            screen.show_stage()
            await pilot.press("down", "right", "f")
            await _settle(app, pilot)
            r, c = screen.query_one("#grid").real_cursor
            check = screen.checks[("d.h.1.mlp_pre", (r, c))]
            want = finite_difference(session.model, window_trace(session), "d.h.1.mlp_pre", (r, c))
            assert check.estimate == pytest.approx(want.estimate, rel=1e-9)
            assert abs(check.difference) < 1e-4 * np.abs(screen.bt["d.h.1.mlp_pre"]).max() + 1e-8
            assert f"{check.difference:.2e}" in screen_text(app) and "step 1e-05" in screen_text(app)

    async def test_u_explains_one_adamw_step_and_a_applies_it(self, screen_text):
        session = Session.demo(seed=1, steps=3)  # its own model: this test changes the weights
        model, trainer = session.model, session.trainer
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _open(app, pilot)
            screen.index = screen.stages.index(BackStage("w_mlp_fc", 0))
            screen.show_stage()
            await pilot.press("down", "u")
            await _settle(app, pilot)
            u = screen.update_shown
            cell = screen.query_one("#grid").real_cursor
            assert u is not None and u.name == "transformer.h.0.mlp.c_fc.weight" and u.index == cell
            want = explain_adamw_step(model, screen.bt.ids, screen.bt.targets, u.name, u.index, trainer)
            for field in ("grad", "grad_clipped", "m", "v", "lr", "weight_after", "loss_before", "loss_after"):
                assert getattr(u, field) == pytest.approx(getattr(want, field), rel=1e-6), field
            text = screen_text(app)
            assert f"{u.loss_before:.5f} → {u.loss_after:.5f}" in text and "AdamW step 4" in text
            before = model.params[u.name][u.index]
            await pilot.press("a")
            await _settle(app, pilot)
            assert model.params[u.name][u.index] == np.float32(u.weight_after) != before
            assert trainer.step_count == 4
            assert screen.bt.loss == pytest.approx(u.loss_after, rel=1e-5)  # recomputed with the new weights

    async def test_u_on_an_activation_says_where_it_works(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _open(app, pilot)
            await pilot.press("n", "u")
            await _settle(app, pilot)
            assert screen.update_shown is None


async def test_ctrl_e_saves_the_screen_as_svg_and_text(session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await pilot.press("ctrl+e")
        await pilot.pause()
        await pilot.press("ctrl+e")  # a second save takes a new name
        await pilot.pause()
    svgs, txts = sorted(tmp_path.glob("tinylm-backward-*.svg")), sorted(tmp_path.glob("tinylm-backward-*.txt"))
    assert len(svgs) == len(txts) == 2
    assert svgs[0].read_text().lstrip().startswith("<svg")
    text = txts[0].read_text()
    assert "Loss" in text and "7 Back" in text and len(text.splitlines()) >= 23


async def test_a_check_on_screen_holds_the_view_until_the_stage_changes(session):
    from tinylm.tui.screens.view_state import snapshot_key

    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("n", "f")
        await _settle(app, pilot)
        held = screen.key
        session.bump()  # as a training step does
        screen._follow()
        await _settle(app, pilot)
        assert screen.key == held and screen.checks  # the check stays beside the numbers it checked
        await pilot.press("n")
        screen._follow()
        await _settle(app, pilot)
        assert screen.key == (*snapshot_key(session), None) and not screen.checks


async def test_a_is_refused_while_training_runs(session):
    from types import SimpleNamespace

    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        screen.index = screen.stages.index(BackStage("lm_head"))
        screen.show_stage()
        await pilot.press("u")
        await _settle(app, pilot)
        assert screen.update_shown is not None
        before = session.model.flat.copy()
        app.training = SimpleNamespace(alive=True)  # a run whose thread is alive (set for this call only)
        screen.action_apply()
        app.training = None
        np.testing.assert_array_equal(session.model.flat, before)
        assert screen.applied is None


async def test_e_edits_the_window(session):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("e", "ctrl+a", "ctrl+k", *"the", "enter")  # "the": ids "th", targets "he"
        await _settle(app, pilot)
        assert session.prompt == "the" and len(screen.bt.ids) == 2
        want = backtrace(session.model, *prompt_window(session.model, "the"))
        assert screen.bt.loss == pytest.approx(want.loss, rel=1e-6)
        await pilot.press("e", "ctrl+a", "ctrl+k", "t", "enter")  # one token is no window
        await _settle(app, pilot)
        assert screen.bt is None and "at least 2 tokens" in str(screen.query_one(".no-model").render())
        assert screen.query_one("#prompt-row").display


async def test_b_takes_a_window_of_the_training_text():
    from tinylm.tui.backstages import training_window

    session = Session.demo(seed=2, steps=1)
    trainer = session.trainer
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("b")
        await _settle(app, pilot)
        ids, targets = training_window(trainer, screen.row_start)
        assert len(ids) == trainer.x.shape[1] == 16
        np.testing.assert_array_equal(screen.bt.ids, ids)
        np.testing.assert_array_equal(screen.bt.targets, targets)
        text = trainer.train_ids
        start = screen.row_start % (len(text) - 16)
        np.testing.assert_array_equal(ids, text[start : start + 16])
        np.testing.assert_array_equal(targets, text[start + 1 : start + 17])  # the text shifted by one
        assert screen.bt.loss == pytest.approx(backtrace(session.model, ids, targets).loss, rel=1e-6)
        await pilot.press("e", "enter")  # back to the prompt
        await _settle(app, pilot)
        assert screen.row_start is None and len(screen.bt.ids) == len(session.prompt) - 1


async def test_the_check_shows_at_80x24_on_a_long_explanation(session, screen_text):
    """f's answer is read at once: on the stage with the longest chain rule (LayerNorm's, into x0) it is on
    screen without scrolling, right under the cell's value, and the notification says it too."""
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        screen.index = screen.stages.index(BackStage("x0"))
        screen.show_stage()
        await pilot.press("down", "down", "right", "f")
        await _settle(app, pilot)
        r, c = screen.query_one("#grid").real_cursor
        check = screen.checks[("d.x0", (r, c))]
        text = screen_text(app)
        assert f"{check.difference:.2e}" in text and "finite difference" in text
        assert any(f"{check.difference:.2e}" in str(n.message) for n in app._notifications)


async def test_the_grid_takes_the_room_a_resize_gives(session):
    """At 80 columns ∂L/∂logits (T x V) is drawn in blocks; widened to 200 the same stage is redrawn whole."""
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("n")
        grid = screen.query_one("#grid")
        assert screen.stage == BackStage("logits") and grid.reduced.cols > 1
        await pilot.resize_terminal(200, 60)
        await _settle(app, pilot)
        assert grid.reduced.identity and grid.values.shape == screen.bt["d.logits"].shape


async def test_every_stage_name_fits_the_list_on_one_line_at_80x24(session, screen_text):
    """The list scrolls at 80x24 (its scrollbar takes a column): no name may wrap onto a line of its own."""
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        stages_list = screen.query_one("#stages")
        assert stages_list.max_scroll_y > 0  # the case that costs the column
        lines = [line.split("│")[0].rstrip(" ▁▂▃▄▅▆▇█").strip() for line in screen_text(app).splitlines()[1:-2]]
        titles = {stage.title for stage in screen.stages}
        shown = [line for line in lines if line]
        assert [line for line in shown if not (line in titles or line.startswith("─ layer"))] == []


async def test_a_large_matrix_is_reduced_in_a_worker_and_shown_whole(session, monkeypatch):
    """From PREPARE_IN_WORKER cells a stage's blocks are made off the UI thread: until they come, the grid
    shows a loading indicator and refuses the checks; then it holds exactly the stage's gradient."""
    import tinylm.tui.screens.backward as backward

    monkeypatch.setattr(backward, "PREPARE_IN_WORKER", 1)  # every stage goes through the worker
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        grid = screen.query_one("#grid")
        screen.index = screen.stages.index(BackStage("lm_head"))
        screen.show_stage()
        assert grid.loading and screen.check_action("check", ()) is None
        assert str(screen.query_one("#explain").render()).strip() == ""  # no cell of the stage before
        await _settle(app, pilot)
        assert not grid.loading and screen.check_action("check", ()) is True
        want = stage_matrix(window_trace(session), BackStage("lm_head"), 0)
        np.testing.assert_allclose(grid.full, want, rtol=1e-5, atol=1e-8)
        r, c = grid.real_cursor
        assert screen.explained.value == pytest.approx(float(want[r, c]), rel=1e-4, abs=1e-9)
        await pilot.press("n", "n")  # a stage left before its worker ends is not drawn over the next one
        await _settle(app, pilot)
        assert screen.stage == screen.stages[screen.stages.index(BackStage("lm_head")) + 2]
        np.testing.assert_allclose(grid.full, stage_matrix(screen.bt, screen.stage, session.head), rtol=1e-6)


async def test_a_small_stage_after_a_large_one_in_flight_is_not_left_loading(session, monkeypatch):
    """Leaving the LM head's gradient (drawn in a worker) for a small stage before the worker ends: the small
    stage is drawn at once and the grid is not left under the loading indicator."""
    import tinylm.tui.screens.backward as backward

    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        head = screen.stages.index(BackStage("lm_head"))
        monkeypatch.setattr(backward, "PREPARE_IN_WORKER", screen.bt["d.lm_head"].size)  # the head alone
        screen.index = head
        screen.show_stage()
        grid = screen.query_one("#grid")
        assert grid.loading
        screen.index = head + 1
        screen.show_stage()  # before the head's worker has reported
        assert not grid.loading and screen.check_action("check", ()) is True
        await _settle(app, pilot)
        assert not grid.loading and screen.stage == screen.stages[head + 1]
        np.testing.assert_allclose(grid.full, stage_matrix(screen.bt, screen.stage, session.head), rtol=1e-6)
