"""The app shell: the screen registry's modes and keys, mode bar, help, command palette, no-model screens,
resizing, quitting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from tinylm.tui.app import TinyLMApp, create_app
from tinylm.tui.screens.help import HelpScreen, screen_bindings
from tinylm.tui.screens.quit import QuitScreen
from tinylm.tui.screens.registry import SCREENS, ScreenEntry
from tinylm.tui.session import Session

SIZES = [(80, 24), pytest.param((200, 60), marks=pytest.mark.slow)]
SCREEN_NAMES = {
    "config": "ConfigScreen",
    "training": "TrainingScreen",
    "inspect": "InspectScreen",
    "attention": "AttentionScreen",
    "generate": "GenerateScreen",
    "vocabulary": "VocabularyScreen",
    "backward": "BackwardScreen",
}


class TestModes:
    @pytest.mark.parametrize("size", SIZES)
    async def test_number_keys_switch_screens(self, session, screen_text, size):
        app = create_app(session)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            assert type(app.screen).__name__ == "ConfigScreen"
            for entry in SCREENS:
                await pilot.press(entry.key)
                await pilot.pause()
                assert app.current_mode == entry.mode
                assert type(app.screen).__name__ == SCREEN_NAMES[entry.mode]
                text = screen_text(app)
                assert f"{entry.key} {entry.label}" in text or f"{entry.key} {entry.short}" in text  # the mode bar
                assert "? help" in text  # the mode bar shows the help key

    async def test_mode_bar_lists_every_screen_at_80_columns(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            bar = [line for line in screen_text(app).splitlines() if "1 Config" in line][0]
            for entry in SCREENS:
                assert f"{entry.key} {entry.short}" in bar
            assert "? help" in bar

    @pytest.mark.parametrize("mode", [entry.mode for entry in SCREENS])
    async def test_no_model_yet_is_explained_on_every_screen(self, mode, screen_text):
        app = create_app(Session())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.switch_mode(mode)
            await pilot.pause()
            if mode != "config":  # Config is where a model gets made, so it shows the form
                assert "No model yet" in screen_text(app)

    @pytest.mark.slow  # many resizes on every screen
    async def test_resizing_to_tiny_and_back_never_crashes(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            for entry in SCREENS:
                await pilot.press(entry.key)
                for size in [(20, 5), (1, 1), (200, 60), (80, 24)]:
                    await pilot.resize_terminal(*size)
                    await pilot.pause()
            assert "1 Config" in screen_text(app)


def _textuals_own(node, binding) -> bool:
    """Whether a binding is one Textual gives every screen or widget (tab, copy), not one of ours."""
    for cls in type(node).__mro__:
        if "BINDINGS" in vars(cls) and cls.__module__.startswith("textual."):
            for b in Binding.make_bindings(vars(cls)["BINDINGS"]):
                if (b.key, b.action) == (binding.key, binding.action):
                    return True
    return False


class TestHelpAndCommands:
    async def test_help_lists_every_key_of_every_screen(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(200, 60)) as pilot:
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            help_text = str(app.screen.key_table().columns[1]._cells) + str(app.screen.key_table().columns[0]._cells)
            for entry in SCREENS:
                assert entry.description in help_text
                for binding in screen_bindings(entry.screen_class()):
                    assert binding.description in help_text, (entry.mode, binding.key)
            for b in Binding.make_bindings(TinyLMApp.BINDINGS):
                assert b.description in help_text
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

    async def test_help_lists_the_keys_of_each_screens_widgets(self, session):
        """What the palette offers on each screen (the focused grid's z included) is in the help too."""
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            offered = {}
            for entry in SCREENS:
                app.switch_mode(entry.mode)
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.pause()
                offered[entry.mode] = {
                    a.binding.description
                    for a in app.screen.active_bindings.values()
                    if a.binding.description and a.node is not app and not _textuals_own(a.node, a.binding)
                }
            await pilot.press("question_mark")
            await pilot.pause()
            table = app.screen.key_table()
            what = [str(c) for c in table.columns[1]._cells]
            sections = [i for i, c in enumerate(table.columns[0]._cells) if str(c)[:1].isdigit() and not what[i]]
            for n, entry in enumerate(SCREENS):
                start = sections[n]
                end = sections[n + 1] if n + 1 < len(sections) else len(what)
                missing = offered[entry.mode] - set(what[start:end])
                assert not missing, (entry.mode, missing)

    async def test_help_fits_at_80x24(self, session, screen_text):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            await pilot.pause()
            assert "Keys" in screen_text(app)

    @pytest.mark.parametrize("mode", ["config", "training", "generate"])
    async def test_command_palette_offers_every_action(self, session, mode):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            app.switch_mode(mode)
            await pilot.pause()
            titles = {c.title for c in app.get_system_commands(app.screen)}
            for entry in SCREENS:
                assert f"Screen: {entry.label}" in titles
            for binding in screen_bindings(type(app.screen)):
                assert binding.description in titles, binding.description
            assert "Help" in titles and "Quit" in titles

    async def test_command_palette_switches_screens(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"Screen: Generate")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            assert app.current_mode == "generate"


class ToyScreen(Screen):
    """A screen added to the registry by a test, to show that one entry is all a new screen needs."""

    BINDINGS = [Binding("z", "zap", "Zap the toy")]

    def compose(self) -> ComposeResult:
        yield Static("toy screen body")

    def action_zap(self) -> None:
        self.query_one(Static).update("zapped")


class TestRegistry:
    KEY = str(len(SCREENS) + 1)  # the key after the last screen's
    TOY = ScreenEntry(KEY, "toy", "Toy", "Toy", f"{__name__}:ToyScreen", "a toy screen from the tests")

    async def test_one_registry_line_adds_a_screen_everywhere(self, session, screen_text):
        app = create_app(session, screens=(*SCREENS, self.TOY))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press(self.TOY.key)  # its key
            await pilot.pause()
            assert app.current_mode == "toy" and type(app.screen).__name__ == "ToyScreen"
            text = screen_text(app)
            assert "toy screen body" in text and f"{self.TOY.key} Toy" in text  # its mode bar tab
            assert "Zap the toy" in text  # its keys in the footer
            titles = {c.title: c.help for c in app.get_system_commands(app.screen)}
            assert titles["Screen: Toy"] == f"a toy screen from the tests (key {self.KEY})"  # its palette entry
            assert "Zap the toy" in titles
            await pilot.press("question_mark")
            await pilot.pause()
            table = app.screen.key_table()
            keys, what = [str(c) for c in table.columns[0]._cells], [str(c) for c in table.columns[1]._cells]
            assert (f"{self.TOY.key} Toy", "a toy screen from the tests") in zip(keys, what)  # its help line
            assert ("z", "Zap the toy") in zip(keys, what)  # and its keys
            assert f"Keys 1-{self.TOY.key} switch screens" in screen_text(app)

    def test_every_entry_is_distinct_and_importable(self):
        for field in ("key", "mode", "label", "short", "target"):
            values = [getattr(entry, field) for entry in SCREENS]
            assert len(set(values)) == len(values), field
        for entry in SCREENS:
            assert len(entry.key) == 1 and entry.description
            assert issubclass(entry.screen_class(), Screen)


class TestQuit:
    async def test_quit_without_training_exits(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0

    async def test_quit_while_training_asks_and_can_save(self, tmp_path, screen_text):
        demo = Session.demo(seed=0, steps=0)
        app = create_app(demo)
        target = tmp_path / "ckpt"
        async with app.run_test(size=(80, 24)) as pilot:
            run = app.start_training()
            run.pause()  # a paused run keeps the question relevant without busying the CPU
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen)
            assert "esc keep training" in screen_text(app)  # the keys' line is not wrapped at 80 columns
            await pilot.press("escape")  # keep training
            await pilot.pause()
            assert not isinstance(app.screen, QuitScreen) and app.is_running
            demo.checkpoint_path = str(target)
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")  # save & quit
            await pilot.pause()
        assert (target / "config.json").exists()
        assert not run.alive

    async def test_ctrl_c_says_in_plain_words_how_to_quit_and_ctrl_q_still_asks(self, screen_text):
        demo = Session.demo(seed=0, steps=0)
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            run = app.start_training()
            run.pause()
            await pilot.press("ctrl+c")
            await pilot.pause(0.3)
            shown = [n.message for n in app._notifications]
            assert any("q quits" in m for m in shown), shown
            assert not any("[" in m for m in shown)  # no markup shown as text
            assert "[b]" not in screen_text(app)
            await pilot.press("ctrl+q")  # Textual's quit key asks about the running model like q
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen) and app.is_running
            await pilot.press("n")
            await pilot.pause()
        assert not run.alive

    async def test_a_save_that_cannot_be_written_says_why_in_words(self, tmp_path):
        (tmp_path / "notes.txt").write_text("mine")
        demo = Session.demo(seed=0, steps=1)
        app = create_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.save_checkpoint(str(tmp_path / "notes.txt" / "run")) is None
            await pilot.pause()
            shown = [n.message for n in app._notifications]
            assert any(f"{tmp_path / 'notes.txt'} is a file, not a directory" in m for m in shown), shown
            assert not any("Errno" in m or ".tmp-" in m for m in shown)  # no errno, no temporary name
        assert (tmp_path / "notes.txt").read_text() == "mine"


class TestCommandLine:
    def run_cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tinylm.tui", *args], capture_output=True, text=True, timeout=120)

    @pytest.mark.parametrize(
        "args",
        [
            ("--corpus", "/no/such/file.txt"),
            ("--corpus", "nosuchcorpus"),
            ("--theme", "nosuchtheme"),
            ("--checkpoint", "/no/such/dir"),
            ("--threads", "0"),
        ],
    )
    def test_bad_input_is_one_line_and_exit_2(self, args):
        result = self.run_cli(*args)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("tinylm-tui: error:")

    def test_help_lists_options(self):
        result = self.run_cli("--help")
        assert result.returncode == 0
        for option in ("--corpus", "--checkpoint", "--theme"):
            assert option in result.stdout


class TestSnapshots:
    @pytest.mark.parametrize("key", ["1", "2", "5"])
    def test_screens_at_80x24(self, snap_compare, trained_session, key):
        session = Session(trained_session.model, None, trained_session.corpus, prompt="The fox")
        assert snap_compare(create_app(session), press=[key], terminal_size=(80, 24))

    def test_help_at_80x24(self, snap_compare, trained_session):
        session = Session(trained_session.model, None, trained_session.corpus, prompt="The fox")
        assert snap_compare(create_app(session), press=["question_mark"], terminal_size=(80, 24))


class TestStartup:
    @pytest.mark.slow  # loads and warms up in the background
    async def test_opens_a_checkpoint_in_the_background(self, tmp_path):
        import asyncio

        import numpy as np

        demo = Session.demo(seed=0, steps=3)
        demo.trainer.save(tmp_path / "ckpt")
        app = create_app(checkpoint=str(tmp_path / "ckpt"))
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(600):
                if app.status == "ready":
                    break
                await asyncio.sleep(0.1)
            assert app.status == "ready"
            model, trainer = app.session.model, app.session.trainer
            assert trainer is not None and trainer.step_count == 3  # training can continue exactly
            for name, value in demo.model.params.items():
                np.testing.assert_array_equal(model.params[name], value)
            await pilot.press("2")
            await pilot.pause()
