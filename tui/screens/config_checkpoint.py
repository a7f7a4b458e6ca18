"""The Config screen's checkpoint actions: save, open, fine-tune, and filling the form from an opened model."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Select, TextArea

from ..workers import background
from .config_form import DEFAULT_CHECKPOINT, FILE, NUMBER_FIELDS, TYPED, format_value


class CheckpointActions:
    """Actions of the Config screen on checkpoint directories; the screen provides the form
    (values, select, corpus_info, corpus_options, tokenizer_options, show_source, _created, _filled_for)."""

    def checkpoint_dir(self) -> str:
        return self.query_one("#ckpt", Input).value.strip()

    def action_save(self) -> None:
        if self.checkpoint_dir():
            self.app.save_checkpoint(self.checkpoint_dir())
        else:
            self.notify("Type a checkpoint directory first.", severity="warning")

    def action_open(self) -> None:
        path = self.checkpoint_dir()
        if not path:
            self.notify("Type a checkpoint directory first.", severity="warning")
            return
        self.app.replace_model(lambda: self.open_checkpoint(path), f"opening {path}")

    def action_finetune(self) -> None:
        """Train the model in the checkpoint directory (any GPT-2) on the chosen corpus, with its own
        tokenizer and shape and the form's training settings."""
        path = self.checkpoint_dir()
        info = self.corpus_info
        if not path:
            self.notify("Type the directory of the model to fine-tune first.", severity="warning")
            return
        if info is None or "corpus" not in info:
            self.notify("The corpus is still being read.", title="Cannot fine-tune yet", severity="error")
            return
        try:
            _, tc, _ = self.form_configs()
        except ValueError as exc:  # FieldError and ConfigError: the summary names the field too
            self.notify(str(exc), title="Cannot fine-tune", severity="error")
            return

        def proceed() -> None:
            self.notify(f"Opening {path} to fine-tune it…", timeout=3)
            self.finetune(path, info["corpus"], tc)

        self.app.replace_model(proceed, f"fine-tuning {path}")  # unsaved training asks before it goes

    @background("create")
    def finetune(self, path, corpus, tc) -> None:
        from tinylm.core import TinyLMError, finetune_trainer

        from ..startup import FINETUNE_CONTEXT, finetune_config

        tc = finetune_config(tc)
        try:
            trainer = finetune_trainer(path, corpus, tc, max_context=FINETUNE_CONTEXT)
        except (TinyLMError, OSError) as exc:
            self.app.call_from_thread(self.notify, str(exc), title="Cannot fine-tune", severity="error", timeout=10)
            return
        self.app.call_from_thread(
            self.notify,
            f"Fine-tuning {path}: learning rate {tc.learning_rate:g} (a tenth of the form's), "
            f"batch {tc.batch_size} x {tc.context} tokens.",
            timeout=6,
        )
        self.app.call_from_thread(self._created, trainer, corpus)  # saved elsewhere: the original stays as it is

    @background("open")
    def open_checkpoint(self, path: str) -> None:

        from ..startup import build

        try:
            built = build(checkpoint=path)
        except Exception as exc:  # noqa: BLE001 - whatever a damaged directory raises, it is a message
            self.app.call_from_thread(
                self.notify, str(exc), title="Could not open checkpoint", severity="error", timeout=10
            )
            return
        self.app.call_from_thread(self._opened, built)

    def _opened(self, built) -> None:
        app = self.app
        app.stop_training()
        app.session.set_model(
            built.model, built.trainer, built.corpus, checkpoint=built.checkpoint, history=built.history
        )
        self.fill_from_session()
        step = built.trainer.step_count if built.trainer else "?"
        self.notify(f"Opened {built.checkpoint} (step {step}).")

    def fill_from_session(self) -> None:
        """Show the settings of the session's model in the form (once per model): its sizes, its training
        settings, its corpus and tokenizer and its directory, so that ctrl+t and ctrl+s start from them."""
        session = self.app.session
        model = session.model
        if model is None or self._filled_for is model:
            return
        # The first model arrives while the form is already up: what the user typed meanwhile stays.
        typed = self.values() if self._filled_for is None else {}
        kept = [s for s in NUMBER_FIELDS if typed.get(s.id, "") != self._typed_at_mount.get(s.id, typed.get(s.id))]
        self._filled_for = model
        mc, tc = model.config, session.trainer.config if session.trainer is not None else None
        for spec in NUMBER_FIELDS:
            source = mc if spec.target == "model" else tc if spec.target == "train" else None
            if source is not None and hasattr(source, spec.attr) and spec not in kept:
                self.query_one(f"#{spec.id}", Input).value = format_value(getattr(source, spec.attr))
        if kept:
            names = ", ".join(spec.label for spec in kept)
            self.notify(f"Kept what you typed ({names}); the other fields show the opened model.", timeout=6)
        self.query_one("#positional", Select).value = mc.positional
        self.query_one("#attention", Checkbox).value = mc.attention
        tokenizer = model.tokenizer
        kinds = [value for _, value in self.tokenizer_options()]
        if tokenizer is not None and tokenizer.kind in kinds:
            self.query_one("#tokenizer", Select).value = tokenizer.kind
            vocab = format_value(tokenizer.vocab_size) if tokenizer.kind != "char" else ""
            self.query_one("#vocab", Input).value = vocab
        self.fill_corpus(session.corpus)
        self.query_one("#ckpt", Input).value = session.checkpoint_path or DEFAULT_CHECKPOINT

    def fill_corpus(self, corpus) -> None:
        """Choose the corpus source the model was made from (a built-in name, a file or typed text)."""
        if corpus is None:
            return
        source = self.query_one("#source", Select)
        names = [value for _, value in self.corpus_options()]
        if corpus.source == "builtin" and corpus.name in names:
            source.value = corpus.name
        elif corpus.source == "file" and corpus.path:
            source.value = FILE
            self.query_one("#path", Input).value = corpus.path
        elif corpus.source == "text":
            source.value = TYPED
            self.query_one("#text", TextArea).text = corpus.text
        self.show_source()
