"""End to end at 80x24 in tmux with a scaled GPT-2-shaped checkpoint (4 layers, C=64, V=5,000): blocks, zoom, search."""

from __future__ import annotations

import shutil

import pytest
from test_e2e_tmux import Tmux

from tinylm.core import (
    DEFAULT_CORPUS,
    GPT,
    ModelConfig,
    load_corpus,
    save_checkpoint,
    tokenizer_from_dict,
    train_tokenizer,
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def wide_checkpoint(path) -> str:
    bpe = train_tokenizer("bpe", load_corpus(DEFAULT_CORPUS).text[:20000], 600).to_dict()
    merges = bpe["merges"]
    while 256 + len(merges) < 5000:
        merges.append([len(merges) % 256, 255 + len(merges)])
    config = ModelConfig(n_layer=4, n_head=4, n_embd=64, block_size=256, vocab_size=5000)
    save_checkpoint(path, GPT(config, tokenizer_from_dict({**bpe, "merges": merges}), seed=3))
    return str(path)


def assert_fits(screen: str, width: int = 80) -> None:
    """No line wider than the terminal, no traceback."""
    assert "Traceback" not in screen
    assert all(len(line) <= width for line in screen.splitlines()), screen


def test_a_wide_model_at_80x24(tmp_path):
    tui = Tmux(["--checkpoint", wide_checkpoint(tmp_path / "wide")], cwd=tmp_path)
    try:
        tui.wait_for(r"ready", timeout=120)
        tui.keys("3")
        tui.wait_for(r"\[id, The\] =", timeout=60)  # the trace is on screen: the stage keys work
        tui.keys("n", "n", "n")  # + Position: T x 64, wider than the grid's room at 80 columns
        screen = tui.wait_for(r"cell=max\|x\| of 1x\d+ · z zoom")
        assert_fits(screen)
        tui.keys("z")
        screen = tui.wait_for(r"real values · z back")
        assert_fits(screen)
        tui.keys("6")
        screen = tui.wait_for(r"Vocabulary: 5,000 tokens .*\n.*PC1", timeout=60)  # the analysis is drawn
        assert_fits(screen)
        tui.keys("/")
        tui.wait_for(r"a token's text")  # the find field has focus: keys sent before that go to the table
        tui.keys("Space", "t", "h", "e")
        screen = tui.wait_for(r"id \d+ '␣the'")
        assert_fits(screen)
        assert tui.alive()
    finally:
        tui.close()
