"""Scrubbing the training history on the Training, Attention and Vocabulary screens: the step shown and the
numbers are the recorder's, recomputed here from its snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.core import describe_head, describe_heads, embedding_maps, heads_summary
from tinylm.tui.app import create_app
from tinylm.tui.safe_text import one_line
from tinylm.tui.session import Session
from tinylm.tui.training_worker import EMBEDDING
from tinylm.tui.widgets.heatmap import Heatmap
from tinylm.tui.widgets.scatter import Scatter


@pytest.fixture
def run_session(trained_session) -> Session:
    """The shared trained model with its trainer (30 steps: snapshots 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 30);
    nothing here trains it."""
    return Session(trained_session.model, trained_session.trainer, trained_session.corpus, prompt="The fox")


async def test_scrubbing_the_training_screen_shows_each_snapshot(run_session, screen_text):
    recorder = run_session.trainer.recorder
    shots = recorder.snapshots()
    assert [s.step for s in shots] == [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 30]
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.2)
        assert "history step" not in screen_text(app) and "< history." in screen_text(app)
        await pilot.press("less_than_sign")  # from live: the latest snapshot
        await pilot.pause(0.2)
        for k in (10, 9, 8):
            shot, text = shots[k], screen_text(app)
            assert f"history step {shot.step} of 30 · {k + 1}/11 snapshots (≤{recorder.max_snapshots}," in text
            assert f"{recorder.nbytes / 1e6:.1f} MB" in text
            assert f"train loss{shot.train_loss:8.3f}" in text
            assert (
                f"val loss {shot.val_loss:9.3f}" in text if shot.val_loss is not None else f"val loss {'–':>9}" in text
            )
            expected = heads_summary(describe_heads(shot.attention))
            heads = next(line for line in text.splitlines() if "heads on the probe:" in line)
            assert expected.startswith(heads.split("heads on the probe: ")[1].rstrip(" …").rstrip("…"))
            prompt = run_session.model.tokenizer.decode(list(recorder.probe_ids[:8]))
            sample = one_line((prompt + shot.sample).replace("\n", " ⏎ ").strip())
            assert f"sample at step {shot.step}: {sample[:30]}" in text
            np.testing.assert_array_equal(app.screen.query_one("#wte", Heatmap).full, shot.embedding)
            await pilot.press("less_than_sign")
            await pilot.pause(0.2)
        await pilot.press("L")  # live again: the trainer's own numbers
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "history step" not in text
        np.testing.assert_array_equal(app.screen.query_one("#wte", Heatmap).full, run_session.model.params[EMBEDDING])
        await pilot.press("greater_than_sign")  # from live, > starts at the first snapshot
        await pilot.pause(0.2)
        assert "history step 0 of 30 · 1/11 snapshots" in screen_text(app)
        assert f"train loss{'–':>8}" in screen_text(app)  # before the first step there is no loss


async def test_past_the_latest_snapshot_is_live_and_the_step_is_shared_by_the_screens(run_session, screen_text):
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "less_than_sign")
        await pilot.pause(0.1)
        assert run_session.history_step == 30
        await pilot.press("greater_than_sign")
        await pilot.pause(0.1)
        assert run_session.history_step is None and "history step" not in screen_text(app)
        await pilot.press("less_than_sign", "less_than_sign")
        assert run_session.history_step == 24


async def test_scrubbing_attention_shows_the_probes_maps_at_that_step(run_session, screen_text):
    recorder = run_session.trainer.recorder
    shots = recorder.snapshots()
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.pause(0.3)
        await pilot.press("less_than_sign", "less_than_sign")  # step 24
        await pilot.pause(0.3)
        shot = shots[-2]
        text = screen_text(app)
        assert "History · step 24 of 30" in text
        big = app.screen.query_one("#big", Heatmap)
        np.testing.assert_array_equal(big.values, shot.attention[0][0])
        probe = run_session.model.tokenizer.decode(list(recorder.probe_ids))
        assert "".join(big.row_labels).replace("␣", " ").replace("⏎", "\n") == probe  # the probe, not the prompt
        assert describe_head(shot.attention[0][0]).text in text
        await pilot.press("right_square_bracket", "full_stop")  # layer 1, head 1 of the same snapshot
        await pilot.pause(0.2)
        np.testing.assert_array_equal(big.values, shot.attention[1][1])
        await pilot.press("L")
        await pilot.pause(0.3)
        assert "History ·" not in screen_text(app)
        np.testing.assert_allclose(big.values, run_session.model.trace("The fox")["h.1.att"][1])


async def test_scrubbing_vocabulary_moves_the_points_on_one_fixed_basis(run_session, screen_text):
    recorder = run_session.trainer.recorder
    shots = recorder.snapshots()
    maps = embedding_maps([s.embedding for s in shots])  # on the latest snapshot's axes
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        await pilot.pause(0.5)
        for k in (10, 9):
            await pilot.press("less_than_sign")
            await pilot.pause(0.2)
            text = screen_text(app)
            assert f"History · step {shots[k].step} of 30" in text
            np.testing.assert_allclose(app.screen.query_one("#map", Scatter).points, maps.coords[k], atol=1e-12)
            e = maps.explained[k]
            assert f"PC1 {100 * e[0]:.1f}% PC2 {100 * e[1]:.1f}%" in text
        moved = np.linalg.norm(maps.coords[8] - maps.coords[7], axis=1).mean()  # step 16 against step 12
        await pilot.press("less_than_sign")
        await pilot.pause(0.2)
        assert f"mean move {moved:.3f} since step 12" in screen_text(app)
        spread = np.sqrt((maps.coords[8] ** 2).sum(axis=1).mean())
        assert f"spread {spread:.3f}" in screen_text(app)  # at 80 columns, not cut off the line's end


async def test_the_keys_are_in_help_and_the_palette(run_session, screen_text):
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        commands = {c.title for c in app.get_system_commands(app.screen)}
        assert {"History: earlier snapshot", "History: later snapshot", "History: back to live"} <= commands

    from tinylm.tui.screens.help import screen_bindings
    from tinylm.tui.screens.registry import SCREENS

    described = {e.mode: {b.description for b in screen_bindings(e.screen_class())} for e in SCREENS}
    for mode in ("training", "attention", "vocabulary"):
        assert {"History: earlier snapshot", "History: later snapshot", "History: back to live"} <= described[mode]


def test_opening_a_saved_run_brings_its_history_back(trained_session, tmp_path):
    from tinylm.tui.startup import build

    trainer = trained_session.trainer
    from tinylm.core import save_checkpoint

    save_checkpoint(tmp_path / "run", trainer.model, trainer=trainer)  # as the dashboard's ctrl+s saves
    built = build(checkpoint=str(tmp_path / "run"))
    again = built.trainer.recorder.snapshots()
    assert [s.step for s in again] == trainer.recorder.steps
    for a, b in zip(again, trainer.recorder.snapshots()):
        np.testing.assert_array_equal(a.attention, b.attention)
        assert (a.train_loss, a.val_loss, a.sample) == (b.train_loss, b.val_loss, b.sample)


async def test_a_model_without_attention_says_so_in_the_history(screen_text):
    from tinylm.core import ModelConfig, TrainConfig, load_corpus, make_trainer

    cfg = TrainConfig(batch_size=4, max_steps=3, eval_interval=3, eval_batches=1)
    trainer = make_trainer(
        load_corpus("fables"),
        "char",
        model_config=ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, attention=False),
        train_config=cfg,
    )
    while not trainer.done:
        trainer.step()
    app = create_app(Session(trainer.model, trainer, load_corpus("fables")))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "less_than_sign")
        await pilot.pause(0.2)
        assert "history step 3 of 3" in screen_text(app)
        assert "heads on the probe: none: the model has no attention (MLP only)" in screen_text(app)


async def test_a_checkpoint_opened_without_its_trainer_still_has_its_history(trained_session, tmp_path, screen_text):
    from tinylm.core import save_checkpoint
    from tinylm.tui.startup import build

    trainer = trained_session.trainer
    save_checkpoint(tmp_path / "run", trainer.model, trainer=trainer)
    (tmp_path / "run" / "trainer_state.json").unlink()  # weights only now: the run cannot resume
    built = build(checkpoint=str(tmp_path / "run"))
    assert built.trainer is None and built.history.steps == trainer.recorder.steps
    session = Session()
    session.set_model(built.model, None, built.corpus, checkpoint=built.checkpoint, history=built.history)
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "less_than_sign")
        await pilot.pause(0.2)
        shot = trainer.recorder.snapshots()[-1]
        assert "history step 30 of 30" in screen_text(app)
        assert f"train loss{shot.train_loss:8.3f}" in screen_text(app)
        await pilot.press("4")
        await pilot.pause(0.3)
        np.testing.assert_array_equal(app.screen.query_one("#big", Heatmap).values, shot.attention[0][0])


async def test_attention_history_names_every_head_at_80_columns(run_session, screen_text):
    """When the heads' full descriptions do not fit the line, the selected head keeps its own and the others
    take their short forms, so no head is cut off the edge."""
    shots = run_session.trainer.recorder.snapshots()
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.pause(0.3)
        for k in range(len(shots) - 1, -1, -1):
            await pilot.press("less_than_sign")
            await pilot.pause(0.2)
            line = next(s for s in screen_text(app).splitlines() if s.startswith(" h0 "))
            patterns = describe_heads(shots[k].attention)[0]  # layer 0, head 0 selected
            assert "…" not in line, line
            assert f"h0 {patterns[0].text}" in line
            for h, p in enumerate(patterns[1:], start=1):
                assert f"h{h} {p.text}" in line or f"h{h} {p.short}" in line, line


def test_the_training_screens_heads_line_fits_its_room(run_session):
    """A summary longer than the line says each head's pattern short instead of losing the counts at the end."""
    from tinylm.tui.history_view import heads_line, scrubbed

    run_session.history_step = run_session.trainer.recorder.snapshots()[-1].step
    at = scrubbed(run_session)
    full = heads_line(at, run_session.model)
    assert heads_line(at, run_session.model, room=len(full)) == full
    patterns = describe_heads(at.snapshot.attention)
    assert heads_line(at, run_session.model, room=len(full) - 1) == heads_summary(patterns, short=True)
