"""The KV cache screen: the rows, bytes and logits it shows are recomputed from the model and the reference."""

from __future__ import annotations

import numpy as np
from textual.widgets import Static

from tinylm.core import kv_bytes, reference
from tinylm.tui.app import create_app
from tinylm.tui.screens.kvcache import KVCacheScreen


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_the_cache_fills_row_by_row_and_is_rebuilt_when_full(session):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, KVCacheScreen)
        m, cfg = session.model, session.model.config
        prompt_len = len(m.tokenizer.encode(session.prompt))
        assert screen.watch.length == prompt_len
        await pilot.press("n", "n", "n")
        await settle(pilot)
        w = screen.watch
        assert [s.row for s in w.steps] == [prompt_len, prompt_len + 1, prompt_len + 2]
        ref = reference.forward(m.params, np.array(w.context), cfg.n_head, m.wpe)["logits"][-1]
        np.testing.assert_allclose(w.logits, ref, rtol=1e-4, atol=1e-5)
        assert w.steps[-1].token == int(
            np.argmax(reference.forward(m.params, np.array(w.context[:-1]), cfg.n_head, m.wpe)["logits"][-1])
        )
        summary = str(screen.query_one("#kv-summary", Static).render())
        assert f"{w.length}/{cfg.block_size} positions" in summary
        assert f"{kv_bytes(cfg, w.length) / 1024:.1f} KiB" in summary or f"{kv_bytes(cfg, w.length)} B" in summary
        grid = str(screen.query_one("#kv-grid", Static).render()).splitlines()[1:]
        assert len(grid) == 2 * cfg.n_layer
        for line in grid:
            cells = line.split()[-1]
            assert cells.count("█") == w.length - 1 and cells.index("▒") == w.steps[-1].row
        await pilot.press("space")  # past the context: the oldest quarter is dropped, the cache rebuilt
        await settle(pilot)
        assert any(s.rebuilt for s in w.steps)
        assert "context full" in str(screen.query_one("#kv-steps", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, KVCacheScreen)


async def test_ctrl_e_saves_the_cache_view_too(session, tmp_path, monkeypatch):
    """ctrl+e works on every screen, the KV cache view over Generate included: the file holds what it shows."""
    monkeypatch.chdir(tmp_path)
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, KVCacheScreen)
        await pilot.press("ctrl+e")
        await pilot.pause()
    texts = sorted(tmp_path.glob("tinylm-*.txt"))
    assert len(texts) == 1 and len(sorted(tmp_path.glob("tinylm-*.svg"))) == 1
    assert "KV cache of" in texts[0].read_text()
