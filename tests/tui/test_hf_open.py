"""The dashboard with a Hugging Face GPT-2 directory: opened to look at, fine-tuned on a corpus, and bad
directories reported in a message while the app stays up."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinylm.core import GPT, CheckpointError, ModelConfig, save_checkpoint
from tinylm.tui.app import create_app
from tinylm.tui.startup import FINETUNE_CONTEXT, build

ROOT = Path(__file__).resolve().parents[2]
GPT2_FILES = next(
    (p for p in (ROOT.parent / "shared/data/gpt2-tokenizer", Path("/work/shared/data/gpt2-tokenizer")) if p.is_dir()),
    None,
)
needs_gpt2_files = pytest.mark.skipif(GPT2_FILES is None, reason="GPT-2's tokenizer files are not here")


def hf_directory(path: Path, tokenizer: bool = True, **config) -> Path:
    """A directory as the Hub holds GPT-2 (unprefixed tensor names, no tinylm keys), random weights."""
    cfg = ModelConfig(**{**dict(vocab_size=50257, block_size=64, n_layer=2, n_head=2, n_embd=16), **config})
    save_checkpoint(path, GPT(cfg, seed=0))
    tensors = {name.removeprefix("transformer."): t for name, t in load_file(str(path / "model.safetensors")).items()}
    for entry in path.iterdir():
        entry.unlink()
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    hf = dict(model_type="gpt2", vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd)
    hf.update(n_layer=cfg.n_layer, n_head=cfg.n_head, n_inner=None, activation_function="gelu_new")
    (path / "config.json").write_text(json.dumps(hf))
    if tokenizer:
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(GPT2_FILES / name, path / name)
    return path


@needs_gpt2_files
def test_build_opens_a_gpt2_directory_to_look_at(tmp_path):
    built = build(checkpoint=str(hf_directory(tmp_path / "gpt2")))
    assert built.trainer is None and built.model.tokenizer.kind == "gpt2"
    assert built.model.config.vocab_size == 50257


@pytest.mark.slow  # fine-tunes
@needs_gpt2_files
def test_build_with_a_corpus_fine_tunes_and_never_points_saving_at_the_original(tmp_path):
    path = hf_directory(tmp_path / "gpt2", block_size=256)
    built = build("fables", str(path))
    trainer = built.trainer
    assert trainer is not None and trainer.model.config.block_size == 256
    assert trainer.config.context == FINETUNE_CONTEXT  # shorter windows than the model's 256 positions
    assert built.checkpoint is None
    ids = trainer.model.tokenizer.encode("The fox")
    assert ids.tolist() == [464, 21831]  # GPT-2's ids
    trainer.step()
    assert np.isfinite(trainer.history[-1].train_loss)


def test_build_refuses_a_directory_without_tokenizer_in_one_line(tmp_path):
    path = hf_directory(tmp_path / "gpt2", tokenizer=False, vocab_size=100)
    with pytest.raises(CheckpointError, match="has weights but no tokenizer") as err:
        build(checkpoint=str(path))
    assert "\n" not in str(err.value)


async def _ready(app):
    for _ in range(600):
        if app.status in ("ready", "no model"):
            return
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("damage", ["n_inner", "no tokenizer", "pickle"])
async def test_bad_directory_gives_a_message_and_the_app_stays_up(tmp_path, damage):
    path = hf_directory(tmp_path / "gpt2", tokenizer=False, vocab_size=100)
    words = {"n_inner": "n_inner 7", "no tokenizer": "no tokenizer", "pickle": "pytorch_model.bin"}[damage]
    if damage == "n_inner":
        cfg = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**cfg, "n_inner": 7}))
    elif damage == "pickle":
        (path / "model.safetensors").rename(path / "pytorch_model.bin")
    app = create_app(checkpoint=str(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(app)
        assert app.status == "ready" and app.session.model is not None  # the default model instead
        messages = [n.message for n in app._notifications]
        assert any(words in m and "\n" not in m for m in messages), messages
        await pilot.press("3")
        await pilot.pause()
        assert app.is_running


@pytest.mark.slow  # fine-tunes in the app
@needs_gpt2_files
async def test_config_fine_tunes_the_directory_typed_in_its_checkpoint_field(tmp_path):
    from textual.widgets import Input

    path = hf_directory(tmp_path / "gpt2")
    app = create_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(app)
        app.stop_training()
        screen = app.screen
        screen.query_one("#ckpt", Input).value = str(path)
        for _ in range(300):  # the form reads the corpus in a worker
            if screen.corpus_info is not None and "corpus" in screen.corpus_info:
                break
            await asyncio.sleep(0.1)
        await pilot.press("ctrl+f")
        for _ in range(600):  # a slow moment of a loaded machine must not read as a failure
            if app.session.model is not None and app.session.model.config.vocab_size == 50257:
                break
            await asyncio.sleep(0.1)
        app.stop_training()
        trainer = app.session.trainer
        said = [str(n.message) for n in app._notifications]  # what the app told the user, should it fail
        assert trainer is not None and trainer.model.tokenizer.kind == "gpt2", (app.status, said)
        assert trainer.config.context == 64 and trainer.config.learning_rate == pytest.approx(3e-4)
        assert app.session.checkpoint_path != str(path)  # ctrl+s never writes over the original


@pytest.mark.slow  # fine-tunes in the app
@needs_gpt2_files
async def test_fine_tuning_over_unsaved_training_asks_first(tmp_path):
    from textual.widgets import Input

    from tinylm.tui.screens.ask import Ask
    from tinylm.tui.session import Session

    path = hf_directory(tmp_path / "gpt2")
    demo = Session.demo(seed=0, steps=2)  # two steps trained, saved nowhere
    old = demo.model
    app = create_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#ckpt", Input).value = str(path)
        for _ in range(300):
            if screen.corpus_info is not None and "corpus" in screen.corpus_info:
                break
            await asyncio.sleep(0.1)
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert isinstance(app.screen, Ask) and app.session.model is old
        await pilot.press("escape")  # keep the trained model
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.model is old
        await pilot.press("ctrl+f")
        await pilot.pause()
        await pilot.press("n")  # discard it: now the directory is fine-tuned
        for _ in range(600):
            if app.session.model is not old and app.session.model.config.vocab_size == 50257:
                break
            await asyncio.sleep(0.1)
        app.stop_training()
        assert app.session.model.config.vocab_size == 50257, [str(n.message) for n in app._notifications]


@needs_gpt2_files
async def test_config_names_the_opened_directory_its_size_and_its_tokenizer(tmp_path):
    from tinylm.tui.screens.config_form import human_count

    path = hf_directory(tmp_path / "gpt2")
    app = create_app(checkpoint=str(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(app)
        await pilot.pause()
        summary = str(app.screen.query_one("#summary").content)
        model = app.session.model
        assert "open       gpt2\n" in summary, summary
        assert f"           {human_count(model.num_params)} params · gpt2\n" in summary
