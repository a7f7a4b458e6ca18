"""Nothing trained or saved is lost: opening a checkpoint shows its settings, a new model never replaces
another model's directory without asking, unsaved training always asks before it goes, a finished run
can train further, and failures in the background reach the screen as messages."""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import pytest
from textual.widgets import Input, Select

from tinylm.core import load
from tinylm.tui.app import TinyLMApp, create_app
from tinylm.tui.screens.ask import Ask
from tinylm.tui.screens.quit import QuitScreen
from tinylm.tui.session import Session

TINY = dict(layers="1", heads="2", embd="16", context="16", batch="4", steps="5", warmup="0")


def digest(directory) -> dict[str, str]:
    """Every file of a directory and the hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


async def settle(app, pilot, delay: float = 0.4) -> None:
    await pilot.pause(delay)
    await app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot, condition, seconds: float = 60.0) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.fixture
def saved(tmp_path):
    """A checkpoint (1 layer, C=16, verses, 7 steps of 7) that differs from the form's defaults."""
    from tinylm.core import ModelConfig, TrainConfig, load_corpus, make_trainer

    corpus = load_corpus("verses")
    trainer = make_trainer(
        corpus,
        "char",
        model_config=ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=16),
        train_config=TrainConfig(batch_size=4, max_steps=7, warmup_steps=0, eval_interval=7, eval_batches=1, seed=3),
    )
    for _ in range(7):
        trainer.step()
    path = tmp_path / "mine"
    trainer.save(path)
    return path


def opening(path, **kw) -> TinyLMApp:
    """The app as `tinylm-tui --checkpoint path` starts it, without the kernel warm-up."""
    return TinyLMApp(checkpoint=str(path), warm_up=False, **kw)


class TestOpenedCheckpoint:
    async def test_the_form_shows_the_checkpoint_settings(self, saved):
        app = opening(saved)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.status == "ready")
            await settle(app, pilot)
            screen = app.screen
            values = {f: screen.query_one(f"#{f}", Input).value for f in ("layers", "embd", "context", "steps")}
            assert values == {"layers": "1", "embd": "16", "context": "16", "steps": "7"}
            assert screen.query_one("#source", Select).value == "verses"
            assert screen.query_one("#ckpt", Input).value == str(saved)

    async def test_what_is_typed_before_the_checkpoint_arrives_stays(self, saved, monkeypatch):
        import threading

        from tinylm.tui import startup

        arrived, real_build = threading.Event(), startup.build

        def slow_build(*args, **kwargs):
            arrived.wait(30)  # the form is up and typed into before the checkpoint is read
            return real_build(*args, **kwargs)

        monkeypatch.setattr(startup, "build", slow_build)
        app = opening(saved)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            assert app.session.model is None
            app.screen.query_one("#embd", Input).value = "32"
            arrived.set()
            await until(pilot, lambda: app.status == "ready")
            await settle(app, pilot)
            screen = app.screen
            values = {f: screen.query_one(f"#{f}", Input).value for f in ("layers", "embd", "context", "steps")}
            assert values == {"layers": "1", "embd": "32", "context": "16", "steps": "7"}
            assert any(m.startswith("Kept what you typed (") for m in messages(app))

    async def test_a_new_model_never_saves_over_the_opened_directory(self, saved, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        before = digest(saved)
        app = opening(saved)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.status == "ready")
            await settle(app, pilot)
            for field, value in TINY.items():
                app.screen.query_one(f"#{field}", Input).value = value
            await settle(app, pilot)
            await pilot.press("ctrl+t")
            await settle(app, pilot)
            await until(pilot, lambda: app.training is not None and not app.training.alive)
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen)  # trained and unsaved: it asks
            await pilot.press("y")
            await pilot.pause()
            assert isinstance(app.screen, Ask)  # the form's directory holds the opened model: it asks again
            await pilot.press("n")  # save as a new directory
            await pilot.pause()
        assert digest(saved) == before
        assert load(f"{saved}-2").config.n_embd == 16

    async def test_saving_into_another_models_directory_asks(self, saved, tmp_path):
        demo = Session.demo(seed=0, steps=2)
        before = digest(saved)
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.save_checkpoint(str(saved))
            await pilot.pause()
            assert isinstance(app.screen, Ask)
            await pilot.press("escape")  # cancel: nothing written
            await pilot.pause()
            assert digest(saved) == before
            app.save_checkpoint(str(saved))
            await pilot.pause()
            await pilot.press("n")  # save under a new name
            await pilot.pause()
        assert digest(saved) == before
        other = load(f"{saved}-2")
        np.testing.assert_array_equal(
            other.params["transformer.wte.weight"], demo.model.params["transformer.wte.weight"]
        )

    async def test_resaving_the_opened_model_to_its_own_directory_does_not_ask(self, saved):
        app = opening(saved)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.status == "ready")
            assert app.save_checkpoint() == str(saved)
            assert not isinstance(app.screen, Ask)


def test_a_new_name_sits_beside_the_directory(tmp_path):
    from tinylm.tui.app import free_path

    (tmp_path / "run").mkdir()
    (tmp_path / "run-2").mkdir()
    assert free_path(f"{tmp_path}/run/") == f"{tmp_path}/run-3"


class TestUnsavedTrainingAsks:
    @pytest.mark.parametrize("how", ["finish", "stop"])
    async def test_quit_after_training_asks(self, how, tmp_path):
        demo = Session.demo(seed=0, steps=0)
        demo.trainer.config.max_steps = 3 if how == "finish" else 10**6
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            run = app.start_training()
            if how == "stop":
                await until(pilot, lambda: demo.trainer.step_count >= 2)
                app.stop_training()
            run._thread.join(60)
            assert not app.training_active
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen) and app.is_running
            await pilot.press("escape")
            await pilot.pause()
            assert app.is_running
            demo.checkpoint_path = str(tmp_path / "kept")
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
        assert load(tmp_path / "kept").config.n_embd == demo.model.config.n_embd

    async def test_quit_after_saving_does_not_ask(self, tmp_path):
        demo = Session.demo(seed=0, steps=2)
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.save_checkpoint(str(tmp_path / "s")) is not None
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0

    async def test_creating_a_model_over_unsaved_training_asks(self):
        demo = Session.demo(seed=0, steps=2)
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            for field, value in TINY.items():
                app.screen.query_one(f"#{field}", Input).value = value
            await settle(app, pilot)
            old = demo.model
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert isinstance(app.screen, Ask) and app.session.model is old
            await pilot.press("escape")
            await settle(app, pilot)
            assert app.session.model is old
            await pilot.press("ctrl+t")
            await pilot.pause()
            await pilot.press("n")  # discard
            await settle(app, pilot)
            assert app.session.model is not old


class TestMoreSteps:
    async def test_a_finished_run_trains_further(self):
        demo = Session.demo(seed=0, steps=1)
        assert demo.trainer.done
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2")
            await pilot.pause()
            await pilot.press("t")
            await pilot.pause()
            assert app.training is not None
            app.training._thread.join(60)
            assert demo.trainer.step_count == 2 and demo.trainer.done


class TestFailuresBecomeMessages:
    async def test_checkpoint_without_tokenizer(self, saved):
        (saved / "tinylm_tokenizer.json").unlink()
        app = opening(saved)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.status in ("ready", "no model"))
            await pilot.press("3")
            await pilot.pause(0.5)
            assert app.is_running
            assert any("tokenizer" in m for m in messages(app)), messages(app)

    async def test_weights_that_overflow(self, saved):
        from safetensors.numpy import load_file, save_file

        tensors = load_file(saved / "model.safetensors")
        save_file({k: v * np.float32(1e10) for k, v in tensors.items()}, saved / "model.safetensors")
        app = opening(saved)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.status in ("ready", "no model"))
            await pilot.press("5")
            await pilot.pause(0.5)
            assert any("overflow" in m for m in messages(app)), messages(app)
            probs = app.session.model.next_token_probs("The fox")  # the default model took its place
            assert np.all(np.isfinite(probs))

    @pytest.mark.parametrize(
        "damage", [{"n_layer": "2"}, {"n_embd": [16]}, {"tinylm": "x"}, {"vocab_size": None}, {"n_head": 0}]
    )
    async def test_damaged_config_never_leaves_it_building(self, saved, damage):
        import json

        config = json.loads((saved / "config.json").read_text())
        config.update(damage)
        (saved / "config.json").write_text(json.dumps(config))
        app = opening(saved)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.status in ("ready", "no model"))
            assert app.session.model is not None and app.is_running
            assert messages(app) or app.session.checkpoint_path == str(saved)  # a message, or it opened

    async def test_negative_seed_in_the_form_is_a_message(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            for field, value in {**TINY, "seed": "-1"}.items():
                app.screen.query_one(f"#{field}", Input).value = value
            await settle(app, pilot)
            await pilot.press("ctrl+t")
            await settle(app, pilot)
            assert app.session.model is session.model and app.current_mode == "config"
            shown = messages(app) + [str(app.screen.query_one("#verdict").content)]
            assert any("seed" in m for m in shown), shown

    async def test_any_worker_failure_is_shown(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:

            def broken() -> None:
                raise RuntimeError("disk on fire")

            app.run_worker(broken, thread=True, exit_on_error=False)
            await settle(app, pilot)
            assert app.is_running
            assert any("disk on fire" in m for m in messages(app))
