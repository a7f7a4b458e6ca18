"""Vocabulary: embeddings shown are the weights, PCA matches an independent eigen-decomposition, keys, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.tui.app import create_app
from tinylm.tui.screens.vocabulary import VocabularyScreen, nearest, pca_2d
from tinylm.tui.session import Session
from tinylm.tui.widgets.heatmap import Heatmap
from tinylm.tui.widgets.scatter import Scatter


@pytest.fixture
def session(trained_session):
    return Session(trained_session.model, None, trained_session.corpus)


async def open_vocabulary(pilot) -> VocabularyScreen:
    pilot.app.switch_mode("vocabulary")
    await pilot.pause()
    assert isinstance(pilot.app.screen, VocabularyScreen)
    return pilot.app.screen


def eigen_pca(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA by the covariance matrix's eigenvectors (a different route than the screen's SVD)."""
    x = table.astype(np.float64) - table.mean(0)
    values, vectors = np.linalg.eigh(x.T @ x)
    order = np.argsort(values)[::-1][:2]
    return x @ vectors[:, order], values[order] / values.sum()


class TestFunctions:
    def test_pca_matches_the_eigenvectors_of_the_covariance(self, trained_session):
        wte = trained_session.model.params["transformer.wte.weight"]
        coords, explained = pca_2d(wte)
        ref, ref_explained = eigen_pca(wte)
        for axis in range(2):  # an axis' sign is arbitrary
            sign = np.sign(coords[:, axis] @ ref[:, axis])
            np.testing.assert_allclose(coords[:, axis], sign * ref[:, axis], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(explained, ref_explained, rtol=1e-5)

    def test_pca_of_tiny_and_flat_tables(self):
        coords, explained = pca_2d(np.ones((3, 1)))
        assert coords.shape == (3, 2) and not explained.any()
        coords, _ = pca_2d(np.eye(2))
        assert coords.shape == (2, 2)

    def test_nearest_by_cosine(self):
        table = np.array([[1.0, 0], [0.9, 0.1], [0, 1], [-1, 0]])
        assert [i for i, _ in nearest(table, 0, 3)] == [1, 2, 3]


class TestVocabularyScreen:
    @pytest.mark.parametrize("size", [(80, 24), pytest.param((200, 60), marks=pytest.mark.slow)])
    async def test_tables_are_the_weights_and_the_cursor_token_is_explained(self, session, size):
        app = create_app(session)
        async with app.run_test(size=size) as pilot:
            screen = await open_vocabulary(pilot)
            model = session.model
            V = model.config.vocab_size
            grid = screen.query_one("#tokens", Heatmap)
            wte = model.params["transformer.wte.weight"]
            np.testing.assert_array_equal(grid.values, wte)
            assert grid.shape == (V, model.config.n_embd)
            await pilot.press(*["down"] * 7, "right", "right")
            assert grid.cursor == (7, 2)
            tok = model.tokenizer.token_text(7)
            info = str(screen.query_one("#token-info").render())
            assert info.startswith(f"id 7 '{tok}'")
            assert " ".join(f"{v:+.4f}" for v in wte[7, :2]) in info  # the embedding's own numbers
            assert f"{wte[7, 2]:.4g}" in grid.render_line(grid.size.height - 1).text
            coords, explained = pca_2d(wte)
            assert f"PCA ({coords[7, 0]:+.3f}, {coords[7, 1]:+.3f})" in info
            assert f"PC1 {100 * explained[0]:.1f}%" in str(screen.query_one("#vocab-title").render())
            scatter = screen.query_one("#map", Scatter)
            assert scatter.highlight == 7 and 7 in scatter.placed  # the selected token is always on the map
            col, row = scatter.placed[7]
            assert scatter.render_line(row).text[col:].startswith(tok[:4])
            await pilot.press(*["pagedown"] * (V // max(grid.view_rows - 1, 1) + 1))
            assert grid.cursor[0] == V - 1  # the whole vocabulary is reachable

    async def test_position_table(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_vocabulary(pilot)
            await pilot.press("w")
            positions = screen.query_one("#positions", Heatmap)
            assert positions.has_focus
            np.testing.assert_array_equal(positions.values, session.model.params["transformer.wpe.weight"])
            await pilot.press("down", "down")
            assert str(screen.query_one("#token-info").render()).startswith("position 2")
            await pilot.press("w")
            assert screen.query_one("#tokens", Heatmap).has_focus

    @pytest.mark.slow  # trains, then many resizes
    async def test_follows_new_weights_and_survives_tiny_sizes(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_vocabulary(pilot)
            wte = session.model.params["transformer.wte.weight"]
            old = wte.copy()
            try:  # the model is shared by the whole test session: put the weight back whatever happens
                wte[3, 4] += 1.0
                session.bump()
                screen.reload()
                await pilot.pause()
                assert screen.query_one("#tokens", Heatmap).values[3, 4] == pytest.approx(old[3, 4] + 1.0)
            finally:
                wte[...] = old
            for size in [(20, 5), (8, 2), (80, 24)]:
                await pilot.resize_terminal(*size)
                await pilot.press("down", "w", "right", "w")

    async def test_no_model(self):
        app = create_app(Session())
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_vocabulary(pilot)
            assert "No model yet" in str(screen.query_one(".no-model").render())
            await pilot.press("w", "down")


def test_snapshot(snap_compare, trained_session):
    session = Session(trained_session.model, None, trained_session.corpus)
    assert snap_compare(create_app(session), press=["6", "down", "down", "down"], terminal_size=(80, 24))
