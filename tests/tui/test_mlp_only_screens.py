"""A model without attention on the screens that show attention: they say so plainly, show the MLP
stages with the model's numbers, and none of their keys crashes."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.core import (
    ModelConfig,
    TrainConfig,
    backtrace,
    load_corpus,
    make_trainer,
    prompt_window,
    reference,
    reference_backward,
)
from tinylm.tui.app import create_app
from tinylm.tui.backstages import all_back_stages, stage_matrix
from tinylm.tui.screens.attention import AttentionScreen
from tinylm.tui.screens.backward import BackwardScreen
from tinylm.tui.screens.inspect import InspectScreen
from tinylm.tui.session import Session
from tinylm.tui.stages import all_stages, stage_view


@pytest.fixture(scope="module")
def mlp_session_parts():
    corpus = load_corpus("fables")
    tr = make_trainer(
        corpus,
        "char",
        model_config=ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=16, attention=False),
        train_config=TrainConfig(batch_size=4, max_steps=10, warmup_steps=0, eval_interval=10, eval_batches=1),
    )
    for _ in range(10):
        tr.step()
    return tr.model, corpus


@pytest.fixture
def session(mlp_session_parts):
    model, corpus = mlp_session_parts
    return Session(model, None, corpus, prompt="The fox")


async def _settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_attention_screen_says_the_model_has_none(session, screen_text):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        app.switch_mode("attention")
        await _settle(app, pilot)
        assert isinstance(app.screen, AttentionScreen)
        for key in ("a", "A", "]", ".", "w", "t"):
            await pilot.press(key)
        await _settle(app, pilot)
        assert app.is_running and not session.ablations
        text = " ".join(screen_text(app).split())
        assert "no attention (MLP only)" in text


async def test_inspect_shows_the_mlp_stages_with_the_models_numbers(session, screen_text):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, InspectScreen)
        keys = [s.key for s in screen.stages if s.layer == 0]
        assert keys == ["ln_2", "mlp_pre", "mlp_act", "mlp_out", "res_2"]
        model = session.model
        ref = reference.forward(model.params, screen.state.trace.ids, 2, model.wpe, attention=False)
        for _ in range(len(screen.stages) - 1):
            stage = screen.stage
            if stage.key not in ("tokenize", "chosen"):
                view = stage_view(stage, screen.state.trace, 0, screen.state.vocab)
                np.testing.assert_allclose(view.values, ref[stage.trace_name], rtol=1e-4, atol=1e-5)
            await pilot.press("n")
        await pilot.press("p", "p", "p", ".", "]")
        await _settle(app, pilot)
        assert app.is_running
        assert "no attention" in " ".join(screen_text(app).split())
    assert [s.key for s in all_stages(1, attention=False)][4:-4] == ["ln_2", "mlp_pre", "mlp_act", "mlp_out", "res_2"]


async def test_backward_walks_the_mlp_blocks_and_matches_the_reference(session, screen_text):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, BackwardScreen) and screen.bt is not None
        model = session.model
        ids, targets = prompt_window(model, session.prompt)
        bt = backtrace(model, ids, targets)
        _, ref = reference_backward.backward(model.params, ids, targets, 2, model.wpe, attention=False)
        assert screen.stages == all_back_stages(2, attention=False)
        for stage in screen.stages[1:]:
            want = ref[stage.name]
            scale = np.abs(want).max() + 1e-12
            np.testing.assert_allclose(stage_matrix(bt, stage, 0) / scale, want / scale, atol=1e-4)
        for _ in range(len(screen.stages) - 1):
            await pilot.press("n")
        await pilot.press("f", ".")
        await _settle(app, pilot)
        assert app.is_running and screen.stage.key == "wpe"
        await pilot.press("[")  # into the blocks again: the MLP's stages, said to be all there is
        await _settle(app, pilot)
        assert screen.stage.key == "res_2"
        assert "no attention" in " ".join(screen_text(app).split())


async def test_training_never_shows_the_zero_attention_weights(session):
    """m walks the weights an MLP-only model trains: its attention weights are zeros, not worth a heatmap."""
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(app, pilot)
        screen = app.screen
        shown = set()
        for _ in range(2 * len(session.model.params)):
            shown.add(screen.current_matrix())
            await pilot.press("m")
        assert shown and not any(".attn." in name for name in shown)
        assert {"transformer.h.0.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.weight"} <= shown
