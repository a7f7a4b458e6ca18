"""A GPT-2-shaped model (scaled down: 4 layers, 4 heads, C=64, V=5,000, T=256) on the screens: blocks, zoom, tokens."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.core import DEFAULT_CORPUS, GPT, ModelConfig, load_corpus, reference, tokenizer_from_dict, train_tokenizer
from tinylm.tui.app import create_app
from tinylm.tui.screens.inspect import InspectScreen
from tinylm.tui.screens.vocabulary import VocabularyScreen, nearest, pca_2d
from tinylm.tui.session import Session
from tinylm.tui.tokens import token_label, visible
from tinylm.tui.widgets.blockmap import BlockHeatmap
from tinylm.tui.widgets.blocks import reduce_blocks
from tinylm.tui.widgets.probbars import ProbBars

VOCAB = 5000
PROMPT = "The fox, naïve, said: café 日本"  # multi-byte characters a byte-level BPE may split


@pytest.fixture(scope="module")
def wide_model() -> GPT:
    """Random weights of a scaled GPT-2 shape around a byte-level BPE grown to 5,000 tokens."""
    bpe = train_tokenizer("bpe", load_corpus(DEFAULT_CORPUS).text[:20000], 600).to_dict()
    merges = bpe["merges"]
    while 256 + len(merges) < VOCAB:  # chain byte pairs into longer tokens until the size is reached
        merges.append([len(merges) % 256, 255 + len(merges)])
    tokenizer = tokenizer_from_dict({**bpe, "merges": merges})
    config = ModelConfig(n_layer=4, n_head=4, n_embd=64, block_size=256, vocab_size=VOCAB)
    return GPT(config, tokenizer, seed=3)


def block_max_abs(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The reduction rule cell by cell: the value of largest |x| in each block, first one on ties."""
    R, C = values.shape
    out = np.zeros((-(-R // rows), -(-C // cols)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = values[i * rows : (i + 1) * rows, j * cols : (j + 1) * cols]
            out[i, j] = block.flat[int(np.argmax(np.abs(block)))]
    return out


class TestReduceBlocks:
    def test_each_shown_cell_is_its_blocks_largest_magnitude_with_sign(self):
        values = np.random.default_rng(0).normal(size=(37, 53))
        reduced = reduce_blocks(values, 5, 7)
        np.testing.assert_array_equal(reduced.values, block_max_abs(values, 5, 7).astype(np.float32))
        r, c = reduced.where_row, reduced.where_col
        np.testing.assert_array_equal(values[r, c].astype(np.float32), reduced.values)

    def test_masked_cells_lose_unless_the_whole_block_is_masked(self):
        values = np.arange(16, dtype=np.float64).reshape(4, 4)
        values[0, 1] = -np.inf  # a masked attention score
        mask = np.zeros((4, 4), bool)
        mask[2:, 2:] = True
        reduced = reduce_blocks(values, 2, 2, mask)
        assert reduced.values[0, 0] == 5.0 and not reduced.masked[0, 0]
        assert reduced.masked[1, 1] and not reduced.masked[1, 0]

    def test_one_by_one_blocks_change_nothing(self):
        values = np.random.default_rng(1).normal(size=(3, 4))
        reduced = reduce_blocks(values, 1, 1)
        assert reduced.identity
        np.testing.assert_array_equal(reduced.values, values.astype(np.float32))


class TestTokens:
    def test_a_leading_space_is_visible_and_split_bytes_are_shown_as_bytes(self, wide_model):
        tok = wide_model.tokenizer
        assert token_label(tok, "é".encode()[0]) == "\\xc3"  # the first byte of 'é', alone
        assert token_label(tok, tok.encode(" é")[0]).startswith("␣")
        ids = tok.encode(" the")
        assert "".join(token_label(tok, i) for i in ids).startswith("␣")

    def test_every_gpt2_token_has_a_label_the_terminal_can_show(self):
        """All 50,257 of GPT-2's real tokens, as the token axes and the probability bars show them."""
        import unicodedata
        from pathlib import Path

        from tinylm.core.tokenizers import load_hf_tokenizer
        from tinylm.tui.widgets.probbars import display_token, top_tokens

        files = Path("/work/shared/data/gpt2-tokenizer")
        files = next((p for p in (Path(__file__).parents[3] / "shared/data/gpt2-tokenizer", files) if p.is_dir()), None)
        if files is None:
            pytest.skip("GPT-2's tokenizer files are not here")
        tok = load_hf_tokenizer(files)
        assert tok.vocab_size == 50257
        for i in range(tok.vocab_size):
            raw = tok.token_bytes(i)
            for label in (token_label(tok, i), display_token(tok.token_label(i))):
                assert label and all(unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp") for c in label), (i, raw)
                assert ("\ufffd" in label) == (b"\xef\xbf\xbd" in raw), (i, raw, label)  # only a real U+FFFD
                assert label.startswith("␣") == raw.startswith(b" "), (i, raw, label)  # a leading space, visible
        assert token_label(tok, tok.encode("\n")[0]) == "⏎" and token_label(tok, tok.encode("\x00")[0]) == "␀"
        assert token_label(tok, tok.encode(" 🦊")[0]) == "␣\\xf0\\x9f"  # the bytes of a split character, as bytes
        probs = np.zeros(tok.vocab_size)
        probs[tok.encode(" 🦊")[0]] = 1.0
        assert display_token(top_tokens(probs, tok, 1)[0].text) == "␣\\xf0\\x9f"  # a bar, not a glyph U+FFFD


async def open_stage(pilot, key: str) -> InspectScreen:
    pilot.app.switch_mode("inspect")
    await pilot.pause()
    screen = pilot.app.screen
    screen.index = next(i for i, s in enumerate(screen.stages) if s.key == key)
    screen.show_stage()
    await pilot.pause()
    return screen


class TestInspectAtScale:
    @pytest.mark.slow  # every block of a GPT-2-wide vocabulary
    async def test_logits_are_shown_in_blocks_by_the_stated_rule_and_zoom_shows_real_values(self, wide_model):
        app = create_app(Session(wide_model, None, None, prompt=PROMPT))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_stage(pilot, "logits")
            grid = screen.query_one("#grid", BlockHeatmap)
            ids = screen.state.trace.ids
            logits = reference.forward(wide_model.params, ids, 4, wide_model.wpe)["logits"]  # (T, V), float64
            red = grid.reduced
            assert red.rows == 1 and red.cols > 1 and grid.shape[1] * red.cols >= VOCAB  # all 5,000 columns, no window
            assert f"1x{red.cols}" in grid.rule_text()  # the rule is on screen
            np.testing.assert_allclose(grid.values, block_max_abs(logits, 1, red.cols), rtol=1e-4, atol=1e-5)

            await pilot.press("right", "down")
            real_row, real_col = grid.real_cursor
            shown = grid.values[grid.cursor]
            assert shown == pytest.approx(logits[real_row, real_col], rel=1e-4, abs=1e-5)
            assert real_col // red.cols == grid.cursor[1]  # the cell the block shows lies in that block

            await pilot.press("z")  # zoom: real values around the cell the block showed
            assert grid.zoomed is not None and grid.real_cursor == (real_row, real_col)
            r0, c0 = grid.origin
            rows, cols = grid.shape
            np.testing.assert_allclose(grid.values, logits[r0 : r0 + rows, c0 : c0 + cols], rtol=1e-4, atol=1e-5)
            assert "zoomed: real values" in grid.rule_text()
            for _ in range(cols + 3):  # past the window's edge: it follows the cursor
                await pilot.press("right")
            r, c = grid.real_cursor
            assert c == min(real_col + cols + 3, VOCAB - 1)
            assert grid.values[grid.cursor] == pytest.approx(logits[r, c], rel=1e-4, abs=1e-5)
            assert screen.explained.value == pytest.approx(logits[r, c], rel=1e-4, abs=1e-4)  # explained: that cell

            await pilot.press("z")
            assert grid.zoomed is None and grid.cursor == (r, c // red.cols)

    async def test_every_layer_and_head_can_be_reached(self, wide_model):
        app = create_app(Session(wide_model, None, None, prompt=PROMPT))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_stage(pilot, "att")
            seen = set()
            for _ in range(4):
                for _ in range(4):
                    stage = screen.stage
                    seen.add((stage.layer, app.session.head))
                    grid = screen.query_one("#grid", BlockHeatmap)
                    want = screen.state.trace[f"h.{stage.layer}.att"][app.session.head]
                    np.testing.assert_array_equal(grid.full, want)
                    await pilot.press("full_stop")
                await pilot.press("right_square_bracket")
            assert seen == {(layer, head) for layer in range(4) for head in range(4)}
            labels = screen.state.trace.tokens
            assert any(label.startswith("␣") for label in labels) and any("\\x" in label for label in labels)


class TestVocabularyAtScale:
    @pytest.mark.slow  # the PCA of a GPT-2-wide table, twice
    @pytest.mark.parametrize("in_worker", [False, True])
    async def test_typing_a_token_finds_it_and_the_map_is_the_pca(self, wide_model, monkeypatch, in_worker):
        if in_worker:  # the path a GPT-2-sized table takes: tables and PCA computed in a worker
            monkeypatch.setattr("tinylm.tui.screens.vocabulary.QUICK_CELLS", 0)
        app = create_app(Session(wide_model, None, None))
        async with app.run_test(size=(80, 24)) as pilot:
            pilot.app.switch_mode("vocabulary")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = pilot.app.screen
            assert isinstance(screen, VocabularyScreen) and screen.analysis is not None
            tokens = screen.query_one("#tokens", BlockHeatmap)
            wte = wide_model.params["transformer.wte.weight"]
            red = tokens.reduced
            assert red.rows == 1 and red.cols > 1  # 64 numbers per token shown in blocks, every token a row
            np.testing.assert_array_equal(tokens.values, block_max_abs(wte, 1, red.cols).astype(np.float32))

            await pilot.press("slash", "space", "t", "h", "e")
            row = tokens.real_cursor[0]
            assert wide_model.tokenizer.token_label(row) == " the"
            info = str(screen.query_one("#token-info").render())
            assert info.startswith(f"id {row} '␣the'")
            await pilot.press("enter")  # the next token that starts with or contains ' the'
            after = tokens.real_cursor[0]
            assert after != row and " the" in wide_model.tokenizer.token_label(after)
            await pilot.press("escape", "down")
            assert tokens.has_focus and tokens.real_cursor[0] == after + 1

            await pilot.press("z")  # the real numbers around the cursor: a stretch of rows, the room's columns
            (r0, c0), (rows, cols) = tokens.origin, tokens.shape
            assert rows <= 256 and r0 <= after + 1 < r0 + rows
            np.testing.assert_array_equal(tokens.values, wte[r0 : r0 + rows, c0 : c0 + cols])
            await pilot.press("z")

            coords, explained = pca_2d(wte)
            np.testing.assert_allclose(np.abs(screen.coords), np.abs(coords), rtol=1e-4, atol=1e-6)
            near = nearest(wte, after + 1, 5)
            await app.workers.wait_for_complete()  # the closest tokens of a large table come from a worker
            await pilot.pause()
            assert f"'{visible(wide_model.tokenizer.token_label(near[0][0]))}' {near[0][1]:.2f}" in str(
                screen.query_one("#token-info").render()
            )

    async def test_pressing_keys_before_the_analysis_arrives_does_not_crash(self, wide_model, monkeypatch):
        monkeypatch.setattr("tinylm.tui.screens.vocabulary.QUICK_CELLS", 0)
        app = create_app(Session(wide_model, None, None))
        async with app.run_test(size=(80, 24)) as pilot:
            pilot.app.switch_mode("vocabulary")
            await pilot.press("w", "slash", "down", "w")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert pilot.app.screen.analysis is not None


class TestGenerateAtScale:
    async def test_a_large_models_passes_run_in_workers_and_the_temperature_keys_stay_live(
        self, wide_model, monkeypatch
    ):
        monkeypatch.setattr("tinylm.tui.screens.view_state.QUICK_WORK", 0)  # the path GPT-2 takes
        app = create_app(Session(wide_model, None, None, prompt="The fox"))
        async with app.run_test(size=(80, 24)) as pilot:
            pilot.app.switch_mode("generate")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = pilot.app.screen
            ids = wide_model.tokenizer.encode("The fox")
            logits = reference.forward(wide_model.params, ids, 4, wide_model.wpe)["logits"][-1]

            def shown() -> tuple[list[int], np.ndarray]:
                items = screen.query_one("#bars", ProbBars).items
                return [it.id for it in items], np.array([it.prob for it in items])

            def softmax(z: np.ndarray) -> np.ndarray:
                e = np.exp(z - z.max())
                return e / e.sum()

            top, probs = shown()
            np.testing.assert_allclose(probs, softmax(logits)[top], rtol=1e-4, atol=1e-7)
            await pilot.press("plus")  # temperature up: the bars follow without a new pass
            temperature = screen.sampling.temperature
            assert temperature > 1.0
            top, probs = shown()
            np.testing.assert_allclose(probs, softmax(logits / temperature)[top], rtol=1e-4, atol=1e-7)

            await pilot.press("n")  # one token, sampled in a worker
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert len(screen.generated) == 1 and screen.generated[0][0] in range(VOCAB)
