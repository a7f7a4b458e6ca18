"""What a new user meets in the first minutes: no control character on the terminal, generated text kept
apart from the prompt, a visible focus on Config, the Training screen's panels, plain words, and screens
that use a large terminal."""

from __future__ import annotations

import re

import numpy as np
import pytest
from textual.widgets import Input, Select

from tinylm.core import GenStep
from tinylm.tui.app import TinyLMApp, create_app
from tinylm.tui.safe_text import one_line, printable
from tinylm.tui.screens.config_form import FILE
from tinylm.tui.screens.generate import TokenStreamed
from tinylm.tui.session import Session
from tinylm.tui.widgets.heatmap import Heatmap
from tinylm.tui.widgets.probbars import ProbBars

CONTROLS = "\n\t\r\x1b[2J\x00\x07\x7f\u2028\x85"


async def settle(app, pilot, delay: float = 0.4) -> None:
    await pilot.pause(delay)
    await app.workers.wait_for_complete()
    await pilot.pause()


def has_control(text: str) -> bool:
    return any(ord(c) < 32 and c != "\n" or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in text)


class TestSafeText:
    def test_one_line_leaves_no_control_character(self):
        shown = one_line(f"a{CONTROLS}b")
        assert not has_control(shown) and "\n" not in shown
        assert shown.startswith("a⏎⇥␍␛[2J") and shown.endswith("b")
        assert one_line("plain text, ünïcode ✓") == "plain text, ünïcode ✓"

    def test_printable_keeps_line_breaks_only(self):
        shown = printable(f"one\ntwo{CONTROLS}")
        assert shown.startswith("one\ntwo\n⇥␍␛") and not has_control(shown.replace("\n", ""))


def streamed(model, text: str, token_id: int) -> GenStep:
    """A generated step whose text is `text` (as a tokenizer of a hostile corpus might produce)."""
    probs = model.next_token_probs("The fox")
    return GenStep(token_id, text, probs, probs)


class TestGenerateKeepsThePrompt:
    async def test_streamed_control_characters_never_reach_the_screen_or_the_prompt(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await pilot.pause()
            screen = app.screen
            screen.streaming = True
            for piece in ("\n", "line\n", "\x1b[2J", "\t", "\r"):
                screen.on_token_streamed(TokenStreamed(streamed(session.model, piece, 0), screen._stream_run))
            await pilot.pause()
            prompt = screen.query_one("#prompt", Input)
            assert prompt.value == "The fox" and app.session.prompt == "The fox"
            text = screen_text(app)
            assert not has_control(text.replace("\n", ""))
            assert all(len(line) <= 80 for line in text.splitlines())
            assert "␛[2J" in text  # shown, not obeyed

    async def test_use_as_prompt_is_explicit(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await pilot.pause()
            await pilot.press("n", "n", "n")
            await pilot.pause()
            screen = app.screen
            generated = "".join(t for _, t in screen.generated)
            assert len(screen.generated) == 3 and app.session.prompt == "The fox"
            await pilot.press("3")  # Inspect traces the prompt, not the generated text
            await pilot.pause()
            assert app.session.prompt == "The fox"
            await pilot.press("5")
            await pilot.pause()
            await pilot.press("t")
            await pilot.pause()
            assert app.session.prompt == "The fox" + generated
            assert app.screen.query_one("#prompt", Input).value == one_line("The fox" + generated)

    async def test_unknown_token_is_named(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await pilot.pause()
            screen = app.screen
            unk = session.model.tokenizer.unk_id
            screen.streaming = True
            screen.on_token_streamed(TokenStreamed(streamed(session.model, "\ufffd", unk), screen._stream_run))
            await pilot.pause()
            shown = str(screen.query_one("#output").content)
            assert "<unk>" in shown and "\ufffd" not in shown


class TestConfigFocus:
    async def test_tab_visits_only_visible_fields_and_the_focus_stands_out(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            seen = []
            for _ in range(20):
                await pilot.press("tab")
                await pilot.pause()
                focused = app.focused
                seen.append(focused.id)
                assert focused.id != "form" and focused.region.height == 1, focused
            assert {"source", "layers", "seed", "ckpt", "create"} <= set(seen)
            await pilot.press("escape")
            layers, heads = (app.screen.query_one(f"#{f}", Input) for f in ("layers", "heads"))
            layers.focus()
            await pilot.pause()
            on, off = layers.styles.background, heads.styles.background
            assert abs(on.brightness - off.brightness) > 0.1 or on.get_contrast_text() != off.get_contrast_text()
            hint = str(app.screen.query_one("#keys-hint").content)
            assert hint.startswith("layers")
            app.screen.query_one("#tokenizer", Select).focus()
            await pilot.pause()
            assert str(app.screen.query_one("#keys-hint").content).startswith("tokenizer")

    async def test_digits_on_a_field_do_not_switch_screens(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.screen.query_one("#tokenizer", Select).focus()
            await pilot.pause()
            await pilot.press("3")
            await pilot.pause()
            assert app.current_mode == "config"

    async def test_corpus_argument_is_the_forms_corpus(self):
        app = TinyLMApp(corpus="verses", warm_up=False)
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(600):
                if app.status == "ready":
                    break
                await pilot.pause(0.1)
            await settle(app, pilot)
            assert app.screen.query_one("#source", Select).value == "verses"
            assert app.session.corpus.name == "verses"


class TestEmptyPrompt:
    @pytest.mark.parametrize("key, label", [("3", "prompt"), ("4", "prompt"), ("7", "window")])
    async def test_the_prompt_being_typed_is_on_screen(self, session, screen_text, key, label):
        session.prompt = ""
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(key)
            await pilot.pause(0.3)
            assert "press e" in screen_text(app)
            await pilot.press("e", "a", "b")
            await pilot.pause(0.2)
            lines = screen_text(app).splitlines()
            assert lines[0].split() == [label, "ab"], lines  # where the user types, above the message
            field = app.screen.query_one("#prompt", Input)
            assert field.has_focus and 0 <= field.region.y and field.region.bottom <= 22
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert session.prompt == "ab"


class TestCorpusArgument:
    async def test_ctrl_t_before_the_first_model_trains_the_argument(self, tmp_path, monkeypatch):
        import threading

        from tinylm.tui import startup

        path = tmp_path / "mine.txt"
        path.write_text("abc " * 300)
        slow, real_build = threading.Event(), startup.build
        monkeypatch.setattr(startup, "build", lambda *a, **k: (slow.wait(60), real_build(*a, **k))[1])
        app = TinyLMApp(corpus=str(path), warm_up=False)
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(600):
                if app.core_loaded:
                    break
                await pilot.pause(0.05)
            for _ in range(600):  # the form has read its corpus (the startup worker is still waiting)
                if app.screen.corpus_info is not None:
                    break
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            assert app.building and not slow.is_set()
            # the first model is still being built: the form shows, and ctrl+t trains, the argument
            assert app.screen.query_one("#source", Select).value == FILE
            assert app.screen.query_one("#path", Input).value == str(path)
            await pilot.press("ctrl+t")
            for _ in range(600):
                if app.session.model is not None:
                    break
                await pilot.pause(0.05)
            assert app.session.corpus.text == path.read_text()
            assert app.session.model.config.vocab_size == 5  # a, b, c, space and <unk>: not the built-in corpus
            slow.set()
            if app.training is not None:
                app.training.stop()

    async def test_a_corpus_too_short_for_a_model_stays_in_the_form_and_blocks_training(self, tmp_path):
        path = tmp_path / "one.txt"
        path.write_text("a")
        app = TinyLMApp(corpus=str(path), warm_up=False)
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(600):
                if not app.building:
                    break
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.session.model is None and app.status == "no model"
            assert app.screen.query_one("#path", Input).value == str(path)  # not the built-in default
            verdict = str(app.screen.query_one("#verdict").content)
            assert "fewer than one context window" in verdict, verdict
            await pilot.press("ctrl+t")
            await pilot.pause(0.5)
            assert app.session.model is None  # nothing trained on another corpus instead

    async def test_ctrl_t_waits_for_the_checkpoint_argument(self, tmp_path):
        demo = Session.demo(seed=0, steps=1)
        demo.trainer.save(tmp_path / "ckpt")
        app = TinyLMApp(checkpoint=str(tmp_path / "ckpt"), warm_up=False)
        async with app.run_test(size=(80, 24)) as pilot:
            app.building = True  # as while the kernels compile, before the checkpoint is in the session
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            app.building = True
            await pilot.press("ctrl+t")
            await pilot.pause(0.5)
            assert app.session.model is None or app.session.checkpoint_path == str(tmp_path / "ckpt")
            assert app.training is None


def shown_matrix(heatmap) -> np.ndarray:
    """The whole matrix a weight map shows (a block map keeps it beside its reduced cells)."""
    return np.asarray(getattr(heatmap, "full", heatmap.values))


class TestTrainingPanels:
    async def test_weight_matrix_shows_the_current_model_from_the_first_run(self):
        demo = Session.demo(seed=0, steps=0)
        demo.trainer.config.max_steps = 3
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2")
            await pilot.pause()
            await pilot.press("t")
            app.training._thread.join(60)
            await pilot.pause(0.5)
            weights = app.screen.query_one("#weights", Heatmap)
            name = app.screen.current_matrix()
            np.testing.assert_allclose(shown_matrix(weights), demo.model.params[name], rtol=1e-6)
            other = Session.demo(seed=1, steps=0)  # a new model of another shape replaces it
            app.session.set_model(other.model, other.trainer, other.corpus)
            other.trainer.config.max_steps = 2
            app.start_training()
            app.training._thread.join(60)
            await pilot.pause(0.5)
            want = other.model.params[app.screen.current_matrix()]
            np.testing.assert_allclose(shown_matrix(weights), want, rtol=1e-6)

    async def test_nothing_cut_at_80x24(self, screen_text):
        demo = Session.demo(seed=0, steps=0)
        demo.trainer.config.max_steps = 2
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2", "t")
            app.training._thread.join(60)
            await pilot.pause(0.5)
            text = screen_text(app)
            assert "elapsed 0:0" in text and "h.0.attn.c_attn " in text and "m: next" in text

    @pytest.mark.parametrize("layers, embd, rule_fits", [(2, 64, True), (12, 256, False)])
    async def test_map_titles_keep_both_ends_at_80x24(self, screen_text, layers, embd, rule_fits):
        from tinylm.core import DEFAULT_CORPUS, ModelConfig, TrainConfig, load_corpus, make_trainer

        corpus = load_corpus(DEFAULT_CORPUS)
        shape = ModelConfig(n_layer=layers, n_head=4, n_embd=embd, block_size=32)
        trainer = make_trainer(corpus, "char", model_config=shape, train_config=TrainConfig(max_steps=1))
        app = create_app(Session(trainer.model, trainer, corpus))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2")
            await pilot.pause(0.5)
            for _ in range(3 * layers):  # every kind of matrix, the widest layer numbers too
                text = screen_text(app)
                titles = [line for line in text.splitlines() if "m: next" in line]  # the key is never cut
                assert len(titles) == 1, text
                title = titles[0]
                blocks = app.screen.query_one("#weights", Heatmap).reduced
                name = app.screen.current_matrix().removeprefix("transformer.").removesuffix(".weight")
                assert f"{name} " in title  # which matrix, whole
                if rule_fits and not blocks.identity:  # what a coloured cell is (the default model's maps)
                    assert f"max|x| {blocks.rows}x{blocks.cols}" in title or f"of {blocks.rows}x{blocks.cols}" in title
                assert re.search(r"wte \d+x\d+ .*step 0 *$", next(x for x in text.splitlines() if "wte" in x))
                await pilot.press("m")
                await pilot.pause(0.1)

    async def test_toasts_leave_the_status_bar_visible(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            app.notify("a message long enough to be wide " * 2)
            await pilot.pause(0.3)
            lines = screen_text(app).splitlines()
            assert "1 Config" in lines[-2] and "? help" in lines[-2]


class TestWords:
    async def test_temperature_is_named_and_layers_show_their_range(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await pilot.pause()
            assert "temp 1" in screen_text(app) and "T 1 " not in screen_text(app)
            await pilot.press("4")
            await pilot.pause(0.3)
            assert "layer 0 (0–1)" in screen_text(app)  # counted from 0, as the weights' names h.0, h.1

    @pytest.mark.parametrize("key", ["3", "4", "7"])
    async def test_layer_and_head_are_named_alike_on_every_screen(self, session, key, screen_text):
        from tinylm.core import Ablation

        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(key)
            await pilot.pause(0.5)
            for _ in range(40):  # step to a per-head stage (Attention shows one at once)
                if re.search(r"head \d", screen_text(app)):
                    break
                await pilot.press("n")
                await pilot.pause(0.05)
            text = screen_text(app)
            # layer first, counted from 0 with the range: as h.0, h.1 name them
            assert re.search(r"layer [01] \(0–1\)( ·|\s).*head [01] \(0–1\)", text), text
            assert not re.search(r"head \d+/\d+|of layer", text)
        assert Ablation(1, "head", 0).describe() == "layer 1 · head 0 (zeroed)"
        assert Ablation(0, "mlp", mode="mean").describe() == "layer 0 · MLP (set to its mean over positions)"

    def test_shapes_say_what_their_letters_mean(self, trained_session):
        from tinylm.tui.stages import all_stages, stage_view

        trace = trained_session.model.trace("The fox")
        vocab = [trained_session.model.tokenizer.token_text(i) for i in range(trained_session.model.config.vocab_size)]
        for stage in all_stages(2):
            shape = stage_view(stage, trace, 0, vocab).shape
            for letters, words in (("NH", "NH heads"), ("HS", "HS head size"), ("V", "V vocabulary")):
                if f"{letters}," in shape or f",{letters})" in shape or f"({letters}," in shape:
                    assert words in shape, shape

    def test_form_errors_use_the_forms_words(self):
        from tinylm.tui.screens.config_form import in_form_words

        assert in_form_words("n_embd 64 is not divisible by n_head 3") == "embedding 64 is not divisible by heads 3"


class TestLargeTerminal:
    @pytest.mark.parametrize("key, grid", [("4", "#big"), ("3", "#grid")])
    async def test_grids_grow_with_the_terminal(self, session, key, grid):
        widths = []
        for size in ((80, 24), (200, 60)):
            app = create_app(session)
            async with app.run_test(size=size) as pilot:
                await pilot.press(key)
                await pilot.pause(0.5)
                widths.append(app.screen.query_one(grid, Heatmap).cell_width)
        assert widths[0] == 2 and widths[1] > 2

    async def test_generate_shows_more_bars_when_there_is_room(self, session):
        app = create_app(session)
        async with app.run_test(size=(200, 60)) as pilot:
            await pilot.press("5")
            await pilot.pause(0.5)
            assert len(app.screen.query_one("#bars", ProbBars).items) > 10
