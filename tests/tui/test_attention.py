"""Attention: the shown weights are the model's (checked against plain numpy), keys, attends-to line, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.core import reference
from tinylm.tui.app import create_app
from tinylm.tui.screens.attention import AttentionScreen, attends_to, pool
from tinylm.tui.session import Session
from tinylm.tui.widgets.heatmap import Heatmap


@pytest.fixture
def session(trained_session):
    return Session(trained_session.model, None, trained_session.corpus, prompt="the quick fox")


async def open_attention(pilot) -> AttentionScreen:
    pilot.app.switch_mode("attention")
    await pilot.pause()
    assert isinstance(pilot.app.screen, AttentionScreen)
    return pilot.app.screen


def test_attends_to_lists_the_largest_weights_first():
    att = np.array([[1.0, 0, 0], [0.25, 0.75, 0], [0.5, 0.2, 0.3]])
    assert attends_to(att, ["a", " ", "\n"], 2) == "'⏎' (position 2) attends to: 'a' (0.50), '⏎' (0.30), '␣' (0.20)"
    assert attends_to(att, list("abc"), 0).endswith("'a' (1.00)")


def test_pool_averages_visible_cells_and_keeps_the_triangle():
    att = np.tril(np.arange(1.0, 26.0).reshape(5, 5))
    mask = np.triu(np.ones((5, 5), bool), 1)
    mean, masked = pool(att, mask, 2)
    assert mean.shape == (3, 3)
    assert mean[0, 0] == pytest.approx((1 + 6 + 7) / 3)  # the masked cell above the diagonal is left out
    assert masked.tolist() == [[False, True, True], [False, False, True], [False, False, False]]
    same, same_mask = pool(att, mask, 1)
    assert same is att and same_mask is mask


class TestAttentionScreen:
    @pytest.mark.parametrize("size", [(80, 24), pytest.param((200, 60), marks=pytest.mark.slow)])
    async def test_every_head_of_the_layer_is_the_models_attention(self, session, size):
        app = create_app(session)
        async with app.run_test(size=size) as pilot:
            screen = await open_attention(pilot)
            model, trace = session.model, session.trace()
            ref = reference.forward(model.params, trace.ids, model.config.n_head, model.wpe)
            big = screen.query_one("#big", Heatmap)
            T = len(trace.ids)
            for layer in range(model.config.n_layer):
                for head in range(model.config.n_head):
                    assert (session.layer, session.head) == (layer, head)
                    np.testing.assert_allclose(big.values, ref[f"h.{layer}.att"][head], rtol=1e-4, atol=1e-6)
                    np.testing.assert_array_equal(big.masked, np.triu(np.ones((T, T), bool), 1))  # causal triangle
                    assert (
                        big.col_labels
                        == big.row_labels
                        == ["t", "h", "e", "␣", "q", "u", "i", "c", "k", "␣", "f", "o", "x"]
                    )
                    assert len(screen.thumbs) == model.config.n_head
                    for h, (thumb, small) in enumerate(screen.thumbs):
                        np.testing.assert_allclose(small.values, ref[f"h.{layer}.att"][h], rtol=1e-4, atol=1e-6)
                        assert thumb.has_class("-selected") == (h == head)
                    await pilot.press("full_stop")
                await pilot.press("right_square_bracket")
            assert (session.layer, session.head) == (0, 0)  # wrapped around
            await pilot.press("comma", "left_square_bracket")
            assert (session.layer, session.head) == (1, 1)

    @pytest.mark.parametrize("size", [(80, 24), (200, 60)])
    async def test_rows_grow_with_the_columns_on_a_large_terminal(self, session, size, screen_text):
        app = create_app(session)
        async with app.run_test(size=size) as pilot:
            screen = await open_attention(pilot)
            await pilot.pause(0.3)
            big = screen.query_one("#big", Heatmap)
            T = len(session.trace().ids)
            if size == (80, 24):
                assert (big.cell_width, big.row_lines) == (2, 1)
                return
            # at most square cells (a terminal cell is about twice as tall as wide), as tall as the room allows
            assert 1 < big.row_lines <= big.cell_width // 2
            assert big.size.height == 1 + T * big.row_lines + 1  # header, the rows, the status line
            assert big.region.bottom <= screen.query_one("#left").region.bottom
            lines = screen_text(app).splitlines()
            top = big.region.y + 1  # below the column labels
            mid = (big.row_lines - 1) // 2
            labels = [lines[top + r * big.row_lines + mid][big.region.x : big.region.x + 2].strip() for r in range(T)]
            assert labels == big.row_labels  # each row's label on its middle line
            await pilot.click(big, offset=(big.label_gutter + 1, 1 + 4 * big.row_lines + big.row_lines - 1))
            assert big.cursor == (4, 0)  # a click on a tall row's last line selects that row

    async def test_cursor_row_lists_what_the_token_attends_to(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_attention(pilot)
            await pilot.press(*["down"] * 5)
            att = session.trace()["h.0.att"][0]
            text = str(screen.query_one("#attends").render())
            assert text.startswith("'u' (position 5) attends to:")
            best = int(att[5, :6].argmax())
            assert f"'{'␣' if best == 3 else 'the quick'[best]}' ({att[5, best]:.2f})" in text

    async def test_thumbnail_click_selects_the_head(self, session):
        app = create_app(session)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_attention(pilot)
            await pilot.pause()
            thumb, small = screen.thumbs[1]
            await pilot.click(small)
            assert session.head == 1 and thumb.has_class("-selected")

    async def test_long_prompt_thumbnails_are_pooled_to_fit(self, session):
        session.prompt = "the quick brown fox jumps"
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_attention(pilot)
            await pilot.pause()
            thumb, small = screen.thumbs[0]
            room = screen.query_one("#heads-box").scrollable_content_region.width
            assert small.shape[1] <= room  # fits beside the big map
            factor = -(-16 // small.shape[1])  # the model's context crops the prompt to 16 tokens
            att = session.trace()["h.0.att"][0]
            mean, _ = pool(att, np.triu(np.ones(att.shape, bool), 1), factor)
            np.testing.assert_allclose(small.values, mean, rtol=1e-6)
            if factor > 1:
                assert f"({factor}x{factor} mean)" in str(screen.thumb_labels[0].render())
            big = screen.query_one("#big", Heatmap)
            assert big.region.bottom <= screen.query_one("#left").region.bottom  # its status line is on screen

    @pytest.mark.slow  # many resizes
    async def test_prompt_with_a_newline_and_tiny_sizes(self, session):
        session.prompt = "ab\nc"
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_attention(pilot)
            assert screen.query_one("#prompt").value == "ab⏎c"  # a one-line field shows the line break
            assert screen.query_one("#big", Heatmap).row_labels == ["a", "b", "⏎", "c"]
            await pilot.press("e", "end", "ctrl+j", "d", "enter")
            assert session.prompt == "ab\nc\nd"
            await pilot.press("e", "ctrl+a", "ctrl+k", *"abc", "enter")
            assert screen.query_one("#big", Heatmap).shape == (3, 3)
            for size in [(20, 5), (12, 3), (80, 24)]:
                await pilot.resize_terminal(*size)
                await pilot.press("down", "full_stop")
        app = create_app(Session())
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_attention(pilot)
            assert "No model yet" in str(screen.query_one(".no-model").render())
            await pilot.press("full_stop", "right_square_bracket")


def test_snapshot(snap_compare, trained_session):
    session = Session(trained_session.model, None, trained_session.corpus, prompt="the quick fox")
    assert snap_compare(create_app(session), press=["4", "down", "down", "down", "right"], terminal_size=(80, 24))


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_a_long_prompt_fills_the_room_on_the_first_visit(size):
    """The big map is sized once the screen is laid out: it took 3 rows on a first visit with a long prompt."""
    from tinylm.core import GPT, ModelConfig, load_corpus, train_tokenizer

    corpus = load_corpus("fables")
    tok = train_tokenizer("char", corpus.text)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=1024, n_layer=2, n_head=2, n_embd=16), tok)
    app = create_app(Session(model, None, corpus, prompt=corpus.text[:3000]))
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        await pilot.press("4")
        await pilot.pause(0.5)
        screen = pilot.app.screen
        room = screen.query_one("#left").size.height - 3
        big = screen.query_one("#big", Heatmap)
        assert room > 10 and big.size.height == room, (big.size, room)


async def test_screens_share_one_snapshot_of_the_same_model_and_prompt(session, monkeypatch):
    """Inspect traced the prompt; Attention shows the same trace instead of tracing it again."""
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        app.switch_mode("inspect")
        await pilot.pause(0.2)
        inspected = app.screen.state
        assert inspected.trace is not None and session.snapshot is inspected
        traced = []
        monkeypatch.setattr(type(session.model), "trace", lambda *a, **k: traced.append(a))
        screen = await open_attention(pilot)
        await pilot.pause(0.2)
        assert screen.state is inspected and traced == []
        session.prompt = "a fox"  # another prompt: a new trace
        monkeypatch.undo()
        screen.reload()
        await pilot.pause(0.2)
        assert screen.state is not inspected and screen.state.trace.tokens == ["a", "␣", "f", "o", "x"]


async def test_a_map_with_no_room_waits_for_room_without_spinning(session, monkeypatch):
    """With no rows for the map a draw waits for its column to get some: asking again after every refresh
    spun the CPU, deaf to keys."""
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_attention(pilot)
        await pilot.pause(0.2)
        screen.query_one("#left").styles.height = 0  # as a terminal too small for it leaves it
        await pilot.pause(0.3)
        assert screen.query_one("#left").size.height == 0
        calls = []
        shown = AttentionScreen.show
        monkeypatch.setattr(AttentionScreen, "show", lambda self: (calls.append(1), shown(self)))
        screen.show()
        for _ in range(5):
            await pilot.pause(0.05)
        assert len(calls) == 1  # no room: it waits for some, without asking again
        monkeypatch.undo()
        screen.query_one("#left").styles.height = "1fr"  # room again: drawn to it
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert screen.query_one("#big", Heatmap).size.height > 3
