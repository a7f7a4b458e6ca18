"""Config: corpus, tokenizer, model and training settings with a live summary; create & train; checkpoints."""

from __future__ import annotations

import os

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from ..safe_text import one_line, printable
from ..workers import background
from .config_checkpoint import CheckpointActions
from .config_form import (
    DEFAULT_CHECKPOINT,
    DEFAULTS,
    FIELDS_BY_ID,
    FILE,
    NUMBER_FIELDS,
    POSITIONAL_KINDS,
    TYPED,
    FieldError,
    attention_label,
    build_configs,
    format_value,
    human_bytes,
    human_count,
    in_form_words,
    open_model_lines,
    which_field,
)
from .registry import key_range

SECTIONS = {"layers": "Model", "batch": "Training"}
OTHER_HINTS = {
    "source": "corpus: a built-in text, a file or text typed here",
    "path": "file path: a UTF-8 text file",
    "text": "typed text: the corpus itself",
    "tokenizer": "tokenizer: char, word or BPE pieces",
    "positional": "positions: learned or sine/cosine",
    "attention": "attention: off leaves each block its MLP alone, so a token sees only itself "
    "(space or ctrl+n flips it)",
    "ckpt": "directory: where ctrl+s saves, ctrl+o opens",
    "device": "device: train on the CPU or on the GPU (the screens read a CPU copy of the weights)",
    "create": "enter: create the model and train it",
}


class ConfigScreen(CheckpointActions, Screen):
    """Choose what to train and how big; the summary on the right follows every change."""

    AUTO_FOCUS = ""  # the screen keys must work on arrival; tab enters the form
    BINDINGS = [
        Binding("ctrl+t", "create", "Create & train"),
        Binding("ctrl+o", "open", "Open checkpoint"),
        Binding("ctrl+f", "finetune", "Fine-tune"),
        Binding("ctrl+s", "save", "Save checkpoint"),
        Binding("ctrl+n", "toggle_attention", "Attention on/off"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.corpus_key: tuple | None = None  # what the summary's corpus numbers were computed for
        self.corpus_info: dict | None = None  # corpus, tokenizer, n_tokens (or error)
        self.error: str | None = None  # why training is blocked, or None
        self._pending = None
        self._filled_for = None  # the model whose settings the form shows
        self._typed_at_mount: dict[str, str] = {}  # the number fields as composed, to tell what the user typed
        self.idle_hint = ""  # the hint while no field has the focus

    def corpus_options(self) -> list[tuple[str, str]]:
        """The source choices: built-in corpora (once the core is imported), a file, typed text."""
        builtin = []
        if self.app.core_loaded:
            from tinylm.core import builtin_corpora

            builtin = [(name, name) for name, _ in builtin_corpora()]
        return builtin + [("a text file…", FILE), ("text typed below…", TYPED)]

    def tokenizer_options(self) -> list[tuple[str, str]]:
        """The kinds one can train (from the core's registry once it is imported; the default until then)."""
        if not self.app.core_loaded:
            return [(DEFAULTS["tokenizer"], DEFAULTS["tokenizer"])]
        from tinylm.core import TOKENIZERS

        return [(k.name, k.name) for k in TOKENIZERS if k.trains]

    def compose(self) -> ComposeResult:
        # Two-column grids instead of a container per row: fewer widgets make the screen open faster.
        with Horizontal(id="body"):
            with VerticalScroll(id="form"):
                with Grid(classes="fields"):
                    yield Static("Corpus", classes="section")
                    yield Label("source")
                    options = self.corpus_options()
                    yield Select(options, value=options[0][1], allow_blank=False, compact=True, id="source")
                    yield Label("file path", classes="path-field")
                    yield Input(placeholder="path to a UTF-8 .txt file", compact=True, id="path", classes="path-field")
                yield TextArea(id="text", soft_wrap=True, show_line_numbers=False)
                with Grid(classes="fields"):
                    yield Static("Tokenizer", classes="section")
                    yield Label("tokenizer")
                    yield Select(
                        self.tokenizer_options(),
                        value=DEFAULTS["tokenizer"],
                        allow_blank=False,
                        compact=True,
                        id="tokenizer",
                    )
                    for spec in NUMBER_FIELDS:
                        if spec.id in SECTIONS:
                            yield Static(SECTIONS[spec.id], classes="section")
                        yield Label(spec.label)
                        yield Input(
                            format_value(spec.default),
                            compact=True,
                            id=spec.id,
                            placeholder="auto" if spec.default is None else "",
                            tooltip=spec.hint,
                        )
                        if spec.id == "context":
                            yield Label("positions")
                            yield Select(
                                [(k, k) for k in POSITIONAL_KINDS],
                                value=DEFAULTS["positional"],
                                allow_blank=False,
                                compact=True,
                                id="positional",
                            )
                            yield Label("attention")
                            yield Checkbox(attention_label(True), True, compact=True, id="attention")
                    yield Static("Checkpoint", classes="section")
                    yield Label("directory")
                    yield Input(DEFAULT_CHECKPOINT, compact=True, id="ckpt")
                    yield Label("device")
                    # shown once a GPU (or numba's simulator) is found usable; until then, or else, one line why not
                    yield Select([("cpu", "cpu")], value="cpu", allow_blank=False, compact=True, id="device")
                    yield Static("cpu (looking for a GPU…)", id="device-reason")
            with Vertical(id="side"):
                yield Static(id="summary")
                yield Static(id="verdict")
                yield Button("Create & train", id="create", variant="success", compact=True)
                others = key_range(tuple(entry for entry in self.app.screen_entries if entry.mode != "config"))
                self.idle_hint = f"tab: next field · esc: leave a field\nthen {others} show the other screens"
                yield Static(self.idle_hint, id="keys-hint")

    def on_descendant_focus(self, event) -> None:
        """Show what the focused setting means under the summary (every focusable field has a hint)."""
        self.show_hint(event.widget)

    def on_descendant_blur(self, event) -> None:
        self.call_after_refresh(lambda: self.show_hint(self.focused))

    def show_hint(self, widget) -> None:
        for label in self.query(".fields > Label.-current"):
            label.remove_class("-current")
        parent = getattr(widget, "parent", None)
        if widget is not None and parent is not None and widget in parent.children:
            index = parent.children.index(widget)
            if index > 0 and isinstance(parent.children[index - 1], Label):
                parent.children[index - 1].add_class("-current")
        wid = getattr(widget, "id", None) or ""
        spec = FIELDS_BY_ID.get(wid)
        if spec is not None:
            hint = f"{spec.label}: {spec.hint}"
        elif wid in OTHER_HINTS:
            hint = OTHER_HINTS[wid]
        else:
            self.query_one("#keys-hint", Static).update(self.idle_hint)
            return
        self.query_one("#keys-hint", Static).update(f"{hint}\nesc: leave the field")

    def on_key(self, event) -> None:
        """While a field has the focus, digits belong to it, never to the screen switcher: a Select or
        the button takes no digits, so say how to switch instead of switching under the user's hands."""
        if event.character and event.character.isdigit() and isinstance(self.focused, (Select, Button)):
            event.stop()
            event.prevent_default()
            keys = key_range(tuple(self.app.screen_entries))
            self.notify(f"esc leaves the field; then {keys} switch screens.", timeout=3)

    def on_mount(self) -> None:
        self.query_one("#form").can_focus = False  # tab goes from field to field, never to the scroll box
        self.query_one("#device", Select).display = False
        self.find_device()
        self._typed_at_mount = self.values()
        if self.app.core_loaded:
            self.show_corpus_argument()
            self.fill_from_session()
        self.show_source()
        self.recompute()

    def on_screen_resume(self) -> None:
        source = self.query_one("#source", Select)
        if self.app.core_loaded and len(source._options) <= 2:  # the built-in corpora arrived
            source.set_options(self.corpus_options())
            self.show_corpus_argument()
        tokenizer = self.query_one("#tokenizer", Select)
        if self.app.core_loaded and len(tokenizer._options) <= 1:  # the registry arrived with the core
            tokenizer.set_options(self.tokenizer_options())
            tokenizer.value = DEFAULTS["tokenizer"]
        if self.app.core_loaded:
            self.fill_from_session()
        self.recompute()

    @background("device")
    def find_device(self) -> None:
        """Ask whether the CUDA kernels can run here (it initialises the GPU driver: off the UI thread)."""
        from tinylm.core import cuda_missing, cuda_simulated

        try:
            problem = cuda_missing()
        except Exception as exc:  # a broken driver install must not take the form down
            problem = f"{type(exc).__name__}: {exc}"
        self.app.call_from_thread(self._show_device, problem, cuda_simulated())

    def _show_device(self, problem: str | None, simulated: bool) -> None:
        select, reason = self.query_one("#device", Select), self.query_one("#device-reason", Static)
        if problem is None:
            gpu = "cuda (simulator: slow)" if simulated else "cuda (GPU)"
            select.set_options([("cpu", "cpu"), (gpu, "cuda")])
            select.value = "cpu"
            select.display, reason.display = True, False
        else:
            # one line: what is missing, shortened to its first clause; the whole message is the tooltip
            short = problem.split(";")[0].split(" (")[0]
            reason.update(Text(f"cpu: {short}", no_wrap=True, overflow="ellipsis"))
            reason.tooltip = f"--device cuda: {problem}"

    def device(self) -> str:
        """The device the form chose: "cuda" only when one is offered and picked."""
        select = self.query_one("#device", Select)
        return "cuda" if select.display and select.value == "cuda" else "cpu"

    # -- reading the form ------------------------------------------------------------------------
    def values(self) -> dict[str, str]:
        return {spec.id: self.query_one(f"#{spec.id}", Input).value for spec in NUMBER_FIELDS}

    def select(self, id: str) -> str:
        return str(self.query_one(f"#{id}", Select).value)

    def attention_on(self) -> bool:
        return self.query_one("#attention", Checkbox).value

    def form_configs(self, vocab_size: int | None = None):
        """build_configs over everything the form holds."""
        return build_configs(self.values(), self.select("positional"), vocab_size, self.attention_on())

    def corpus_request(self) -> tuple:
        """A hashable description of the chosen corpus and tokenizer (the cache key of the summary)."""
        source = self.select("source")
        vocab = self.values()["vocab"].strip()
        if source == FILE:
            what = self.query_one("#path", Input).value.strip()
        elif source == TYPED:
            what = self.query_one("#text", TextArea).text  # the text itself, so the worker need not read widgets
        else:
            what = source
        return (source, what, self.select("tokenizer"), vocab)

    def show_corpus_argument(self) -> None:
        """Start from the corpus the command line names (else the first built-in one), so that the form
        shows, checks and trains what was asked for, also before the first model is built or when the
        corpus cannot make one."""
        source = self.query_one("#source", Select)
        names = [value for _, value in self.corpus_options()]
        arg = self.app.corpus_arg
        if not arg:
            source.value = names[0]
        elif arg in names:
            source.value = arg
        else:
            source.value = FILE
            self.query_one("#path", Input).value = os.path.abspath(arg)
        self.show_source()

    def show_source(self) -> None:
        source = self.select("source")
        for widget in self.query(".path-field"):
            widget.display = source == FILE
        self.query_one("#text").display = source == TYPED

    # -- reacting to edits -----------------------------------------------------------------------
    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "source":
            self.show_source()
        if event.select.id == "tokenizer" and self.app.core_loaded and event.value != Select.BLANK:
            from tinylm.core import tokenizer_kind

            self.query_one("#keys-hint", Static).update(f"{event.value}: {tokenizer_kind(event.value).description}")
        self.recompute()

    @on(Input.Changed)
    @on(TextArea.Changed)
    def _edited(self, event) -> None:
        if getattr(event, "input", None) is not None and event.input.id == "ckpt":
            return
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(0.25, self.recompute)  # wait for a pause in typing

    def recompute(self) -> None:
        """Recompute the summary: model numbers now, corpus numbers in a worker when the corpus changed."""
        if not self.app.core_loaded:
            self.query_one("#verdict", Static).update(Text("loading the engine…", style="dim"))
            self.query_one("#create", Button).disabled = True
            return
        request = self.corpus_request()
        if request != self.corpus_key:
            self.corpus_key = request
            self.corpus_info = None
            self.load_corpus(request)
        self.show_summary()

    @background("corpus")
    def load_corpus(self, request: tuple) -> None:
        """Read the corpus and train the tokenizer off the UI thread (BPE training can take a moment)."""
        from tinylm.core import Corpus, TinyLMError, load_corpus, train_tokenizer

        source, what, kind, vocab = request
        try:
            if source == FILE:
                if not what:
                    raise ValueError("type the path of a text file")
                corpus = load_corpus(what if "/" in what else f"./{what}")
            elif source == TYPED:
                corpus = Corpus.from_text(what)
            else:
                corpus = load_corpus(source)
            vocab_size = int(vocab) if vocab.isdigit() else None
            tokenizer = train_tokenizer(kind, corpus.text, vocab_size)
            info = {"corpus": corpus, "tokenizer": tokenizer, "n_tokens": len(tokenizer.encode(corpus.text))}
        except (TinyLMError, ValueError, OSError) as exc:
            info = {"error": str(exc)}
        self.app.call_from_thread(self._corpus_loaded, request, info)

    def _corpus_loaded(self, request: tuple, info: dict) -> None:
        if request == self.corpus_key:
            self.corpus_info = info
            self.show_summary()

    def show_summary(self) -> None:
        """Fill the summary and the verdict (ready, or the first problem)."""
        from tinylm.core import ConfigError, CorpusError, check_split_lengths, memory_estimate

        for spec in NUMBER_FIELDS:
            self.query_one(f"#{spec.id}", Input).remove_class("-invalid")
        info = self.corpus_info
        vocab = info["tokenizer"].vocab_size if info and "tokenizer" in info else None
        lines = open_model_lines(self.app.session) if self.app.core_loaded else Text()
        lines.append("New model (ctrl+t)\n", style="bold")
        self.error = None
        if info is None:
            lines.append("corpus     reading…\n", style="dim")
        elif "error" in info:
            self.error = info["error"]
        else:
            corpus = info["corpus"]
            lines.append(f"corpus     {one_line(corpus.name)} ({len(corpus.text):,} chars)\n")
            lines.append(f"tokens     {info['n_tokens']:,}\n")
            lines.append(f"vocab      {vocab:,} ({info['tokenizer'].kind})\n")
        try:
            mc, tc, _ = self.form_configs(vocab_size=vocab or 2)
            if info and "n_tokens" in info:
                try:  # the trainer's own rule: both the training and the validation part hold one window
                    check_split_lengths(info["n_tokens"], tc.context or mc.block_size, tc.val_fraction)
                except CorpusError as exc:
                    raise FieldError("context", str(exc)) from None
        except (FieldError, ConfigError) as exc:
            field = exc.field_id if isinstance(exc, FieldError) else which_field(str(exc))
            if field:
                self.query_one(f"#{field}", Input).add_class("-invalid")
            self.error = self.error or in_form_words(str(exc))
        else:
            if vocab is not None:
                tokens_per_step = tc.batch_size * mc.block_size
                lines.append(f"params     {mc.num_params():,}\n")
                if not mc.attention:
                    lines.append(f"trained    {mc.trained_params():,} (no attention)\n")
                lines.append(f"FLOPs/step {human_count(mc.flops_per_token() * tokens_per_step, 'FLOP')}\n")
                lines.append(f"memory     {human_bytes(memory_estimate(mc, tc))}\n")
                lines.append(f"tokens/step {tokens_per_step:,} ({tc.batch_size} x {mc.block_size})\n")
        self.query_one("#summary", Static).update(lines)
        verdict = self.query_one("#verdict", Static)
        if self.error:
            verdict.update(Text(f"✖ {printable(self.error)}", style="bold red"))
        elif info is None:
            verdict.update(Text("…", style="dim"))
        else:
            verdict.update(Text("✔ ready: ctrl+t creates the model and trains it", style="bold green"))
        self.query_one("#create", Button).disabled = bool(self.error) or info is None

    @on(Checkbox.Changed, "#attention")
    def _attention_changed(self, event: Checkbox.Changed) -> None:
        event.checkbox.label = attention_label(event.value)
        self.recompute()

    # -- actions ---------------------------------------------------------------------------------
    def action_toggle_attention(self) -> None:
        """Attention on or off (off: MLP-only blocks), whichever field has the focus."""
        self.query_one("#attention", Checkbox).toggle()

    def action_leave_field(self) -> None:
        self.set_focus(None)

    @on(Button.Pressed, "#create")
    def action_create(self) -> None:
        """Build a new model from the settings and start training it."""
        self.show_summary()
        info = self.corpus_info
        if self.error or info is None or "corpus" not in info:
            self.notify(self.error or "The corpus is still being read.", title="Cannot train yet", severity="error")
            return
        if self.app.building and self.app.checkpoint_arg:  # a new model now would take the checkpoint's place
            self.notify(
                f"{self.app.checkpoint_arg} is still opening: ctrl+t creates a new model once it is open.",
                title="Cannot train yet",
                severity="warning",
            )
            return
        mc, tc, vocab = self.form_configs()
        device = self.device()

        def create() -> None:
            self.notify("Building the model…", timeout=2)
            self.create_trainer(info["corpus"], info["tokenizer"], mc, tc, device)

        self.app.replace_model(create, "creating a new one")

    @background("create")
    def create_trainer(self, corpus, tokenizer, mc, tc, device: str = "cpu") -> None:
        from tinylm.core import TinyLMError, get_kernels, make_trainer

        try:
            kernels = get_kernels(device)
            trainer = make_trainer(
                corpus, tokenizer.kind, model_config=mc, train_config=tc, tokenizer=tokenizer, kernels=kernels
            )
        except (TinyLMError, ValueError, MemoryError, RuntimeError) as exc:
            self.app.call_from_thread(self.notify, str(exc), title="Cannot train", severity="error", timeout=10)
            return
        self.app.call_from_thread(self._created, trainer, corpus)

    def _created(self, trainer, corpus) -> None:
        app = self.app
        app.stop_training()
        # trained on a GPU, the screens read a CPU copy that the training run refreshes (see TrainingRun)
        model = trainer.model if trainer.model.device == "cpu" else trainer.model.on("cpu")
        app.session.set_model(model, trainer, corpus)  # a new model: no directory of its own yet
        app.session.settings["save_to"] = self.checkpoint_dir() or None  # where it goes (asking if taken)
        self._filled_for = model
        app.start_training()
        app.switch_mode("training")
