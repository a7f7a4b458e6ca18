"""Config: the live summary's numbers, inline errors that block training, corpus sources, create & train,
opening and saving checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Button, Checkbox, Input, Select, TextArea

from tinylm.core import (
    TOKENIZERS,
    ConfigError,
    load,
    load_corpus,
    memory_estimate,
    tokenizer_kind,
    train_tokenizer,
)
from tinylm.core.tokenizers.bpe import DEFAULT_BPE_VOCAB
from tinylm.tui.app import create_app
from tinylm.tui.screens.config import FILE, TYPED, ConfigScreen
from tinylm.tui.screens.config_form import build_configs, human_bytes, human_count
from tinylm.tui.session import Session


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector).content)


async def settle(app, pilot, delay: float = 0.4) -> None:
    """Wait for the typing pause, the corpus worker and the redraw."""
    await pilot.pause(delay)
    await app.workers.wait_for_complete()
    await pilot.pause()


async def set_fields(app, pilot, **values: str) -> None:
    for field, value in values.items():
        app.screen.query_one(f"#{field}", Input).value = value
    await settle(app, pilot)


class TestSummary:
    @pytest.mark.parametrize("size", [(80, 24), pytest.param((200, 60), marks=pytest.mark.slow)])
    async def test_numbers_are_computed_from_the_configs(self, session, size):
        app = create_app(session)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, ConfigScreen)
            tok = train_tokenizer("char", load_corpus("fables").text)
            mc, tc, _ = build_configs(screen.values(), "learned", vocab_size=tok.vocab_size)
            summary = text_of(screen, "#summary")
            assert f"tokens     {len(tok.encode(load_corpus('fables').text)):,}" in summary
            assert f"vocab      {tok.vocab_size:,} (char)" in summary
            assert f"params     {mc.num_params():,}" in summary
            flops = mc.flops_per_token() * tc.batch_size * mc.block_size
            assert f"FLOPs/step {human_count(flops, 'FLOP')}" in summary
            assert f"memory     {human_bytes(memory_estimate(mc, tc))}" in summary
            # above them, the model open now: the session's, not the form's
            model = session.model
            assert "open       not saved\n" in summary
            assert f"           {human_count(model.num_params)} params · {model.tokenizer.kind}\n" in summary
            assert all(len(line) <= 33 for line in summary.splitlines()[:2]), summary  # the side column at 80x24
            assert "ready" in text_of(screen, "#verdict")
            assert not screen.query_one("#create", Button).disabled

    async def test_tokenizer_choices_are_the_registrys_trainable_kinds(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            select = app.screen.query_one("#tokenizer", Select)
            assert [value for _, value in select._options] == [k.name for k in TOKENIZERS if k.trains]
            select.value = "bpe"
            await settle(app, pilot)
            assert text_of(app.screen, "#keys-hint") == f"bpe: {tokenizer_kind('bpe').description}"
            assert f"vocab      {DEFAULT_BPE_VOCAB:,} (bpe)" in text_of(app.screen, "#summary")

    async def test_summary_follows_a_change(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            before = text_of(app.screen, "#summary")
            await set_fields(app, pilot, layers="3")
            after = text_of(app.screen, "#summary")
            assert before != after
            vocab = app.screen.corpus_info["tokenizer"].vocab_size
            mc, _, _ = build_configs(app.screen.values(), "learned", vocab_size=vocab)
            assert mc.n_layer == 3 and f"params     {mc.num_params():,}" in after

    async def test_typing_into_a_field_by_keyboard(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            app.screen.query_one("#layers", Input).focus()
            await pilot.press("end", "backspace", "4")  # delete the 2, type a 4
            await settle(app, pilot)
            assert app.screen.values()["layers"] == "4"
            await pilot.press("escape", "2")  # leave the field; digits switch screens again
            assert app.current_mode == "training"


class TestInvalidSettings:
    @pytest.mark.parametrize(
        "field,value,message",
        [
            ("heads", "3", "not divisible"),
            ("lr", "abc", "'abc' is not a number"),
            ("layers", "0", "layers must be a positive"),
            ("dropout", "1.5", "dropout must be in [0, 1)"),
            ("warmup", "900", "warmup 900 must be fewer"),
            ("context", "100000", "fewer than one context window"),
        ],
    )
    async def test_explained_inline_and_blocks_training(self, session, field, value, message):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await set_fields(app, pilot, **{field: value})
            screen = app.screen
            assert message in text_of(screen, "#verdict")
            assert screen.query_one("#create", Button).disabled
            assert screen.query(".-invalid")  # the offending field is marked
            model_before = app.session.model
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert app.session.model is model_before and app.current_mode == "config"

    async def test_a_validation_part_shorter_than_a_window_blocks_training(self, session):
        text = "the cat sat on the mat. " * 12  # 288 tokens: more than context 64 + 1, but a tenth is 29
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.screen.query_one("#source", Select).value = TYPED
            app.screen.query_one("#text", TextArea).text = text
            await set_fields(app, pilot, context="64")
            verdict = text_of(app.screen, "#verdict")
            assert "validation part" in verdict and "has 29 tokens" in verdict, verdict
            assert app.screen.query_one("#create", Button).disabled
            model_before = app.session.model
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert app.session.model is model_before and app.current_mode == "config"

    def test_config_errors_are_the_cores_messages(self):
        with pytest.raises(ConfigError, match="n_embd 64 is not divisible by n_head 3"):
            build_configs({"heads": "3"}, "learned", vocab_size=10)


class TestCorpusSources:
    async def test_typed_text(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            screen = app.screen
            screen.query_one("#source", Select).value = TYPED
            text = "the cat sat on the mat. " * 30
            screen.query_one("#text", TextArea).text = text
            await settle(app, pilot)
            assert f"tokens     {len(text):,}" in text_of(screen, "#summary")
            assert "typed" in text_of(screen, "#summary")

    async def test_unreadable_file_gives_a_message(self, session, tmp_path):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            screen = app.screen
            screen.query_one("#source", Select).value = FILE
            screen.query_one("#path", Input).value = str(tmp_path / "missing.txt")
            await settle(app, pilot)
            assert "not found" in text_of(screen, "#verdict")
            assert screen.query_one("#create", Button).disabled
            binary = tmp_path / "binary.txt"
            binary.write_bytes(b"\xff\xfe\x00\x01" * 100)
            screen.query_one("#path", Input).value = str(binary)
            await settle(app, pilot)
            assert "✖" in text_of(screen, "#verdict") and app.is_running

    async def test_a_text_file(self, session, tmp_path):
        corpus = tmp_path / "mine.txt"
        corpus.write_text("hello world, hello tinylm. " * 40)
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.screen.query_one("#source", Select).value = FILE
            app.screen.query_one("#path", Input).value = str(corpus)
            await settle(app, pilot)
            assert f"tokens     {len(corpus.read_text()):,}" in text_of(app.screen, "#summary")


TINY = dict(layers="1", heads="2", embd="16", context="16", batch="4", steps="5", warmup="0")


class TestCreateAndCheckpoints:
    async def test_create_and_train(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await set_fields(app, pilot, **TINY)
            old = app.session.model
            await pilot.press("ctrl+t")
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            model = app.session.model
            assert model is not old and model.config.n_layer == 1 and model.config.n_embd == 16
            assert app.current_mode == "training"
            app.training._thread.join(60)
            assert app.session.trainer.step_count == 5

    async def test_attention_switch_creates_an_mlp_only_model(self, session):
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await set_fields(app, pilot, **TINY)
            screen = app.screen
            await pilot.press("ctrl+n")
            await settle(app, pilot)
            switch = screen.query_one("#attention", Checkbox)
            assert switch.value is False and "MLP only" in str(switch.label)
            vocab = train_tokenizer("char", load_corpus("fables").text).vocab_size
            mc, _, _ = build_configs(screen.values(), "learned", vocab_size=vocab, attention=False)
            assert f"trained    {mc.trained_params():,} (no attention)" in text_of(screen, "#summary")
            await pilot.press("ctrl+t")
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            assert app.session.model.config.attention is False
            app.training._thread.join(60)
            for name, w in app.session.model.params.items():
                assert "attn." not in name or not w.any(), name

    async def test_save_then_open(self, tmp_path):
        demo = Session.demo(seed=0, steps=3)
        app = create_app(demo)
        target = str(tmp_path / "ckpt")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.screen.query_one("#ckpt", Input).value = target
            await pilot.press("ctrl+s")
            await pilot.pause()
            saved = load(target)
            for name, value in demo.model.params.items():
                np.testing.assert_array_equal(saved.params[name], value)
            app.session.set_model(None)
            await pilot.press("ctrl+o")
            await app.workers.wait_for_complete()
            await pilot.pause()
            opened = app.session.model
            assert opened is not None and app.session.checkpoint_path == target
            np.testing.assert_array_equal(
                opened.params["transformer.wte.weight"], demo.model.params["transformer.wte.weight"]
            )
            assert app.screen.query_one("#embd", Input).value == str(demo.model.config.n_embd)

    async def test_damaged_checkpoint_gives_a_message_and_the_app_stays_up(self, session, tmp_path):
        damaged = tmp_path / "damaged"
        damaged.mkdir()
        (damaged / "config.json").write_text("{not json")
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.screen.query_one("#ckpt", Input).value = str(damaged)
            await pilot.press("ctrl+o")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.is_running and app.session.model is session.model
            messages = [n.message for n in app._notifications]
            assert any("damaged" in m.lower() or "config.json" in m for m in messages), messages
