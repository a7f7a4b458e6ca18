"""Generate: the next token's ten most likely candidates, one step or a stream, with live sampling knobs."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from ..safe_text import printable, shown_text
from ..widgets.compare import CompareView
from ..widgets.knobs import Knobs, describe, turn
from ..widgets.probbars import ProbBars, top_tokens
from ..workers import background
from .ablation import ABLATION_BINDINGS, AblationControls
from .kvcache import KVCacheScreen
from .trace_view import field_text, prompt_text
from .view_state import NO_MODEL, is_quick

STREAM_DELAY = 0.03  # seconds between streamed tokens, so the stream reads as token by token
OVERFLOW = "the probabilities are not finite (NaN): the weights overflow the forward pass"
TEMP, TOP_K, TOP_P = (Binding.Group(name, compact=True) for name in ("temp", "top-k", "top-p"))


def seed_after(seed: int | None, steps: int) -> int:
    """The seed `steps` tokens on (each token is drawn with its own); past the largest seed numpy takes,
    it wraps to 0, so a large typed seed never becomes one the sampler refuses."""
    from tinylm.core import MAX_SEED

    return ((seed or 0) + steps) % (MAX_SEED + 1)


class TokenStreamed(Message):
    """One streamed token (posted from the stream thread)."""

    def __init__(self, step, run: int) -> None:
        super().__init__()
        self.step, self.run = step, run


class GenerateScreen(AblationControls, Screen):
    """Type a prompt, watch the next-token probabilities, step or stream tokens, turn the knobs."""

    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("n,enter", "step", "Next"),
        Binding("space", "stream", "Stream"),
        Binding("minus", "knob('temperature', -1)", "Temperature down", group=TEMP),
        Binding("plus,equals_sign", "knob('temperature', 1)", "Temperature up", group=TEMP),
        Binding("k", "knob('top_k', -1)", "Top-k down", group=TOP_K),
        Binding("K", "knob('top_k', 1)", "Top-k up", group=TOP_K),
        Binding("p", "knob('top_p', -1)", "Top-p down", group=TOP_P),
        Binding("P", "knob('top_p', 1)", "Top-p up", group=TOP_P),
        Binding("g", "knob('greedy')", "Greedy"),
        Binding("c", "compare", "Compare"),
        Binding("v", "kv_cache", "KV cache", show=False),
        Binding("r", "reseed", "New seed", show=False),
        Binding("s", "edit_seed", "Set seed", show=False),
        Binding("e", "edit_prompt", "Edit prompt", show=False),
        Binding("x", "reset", "Reset text", show=False),
        Binding("t", "use_as_prompt", "Use as prompt", show=False),
        Binding("E", "toggle_eos", "Stop at the end-of-text token / keep sampling past it", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
        *(replace(b, show=False) for b in ABLATION_BINDINGS),  # on the head selected on Attention
    ]

    def __init__(self) -> None:
        super().__init__()
        self.base = ""  # the prompt as typed; generated text follows it but never enters the prompt field
        self.generated: list[tuple[int, str]] = []  # (id, text) of tokens appended since the prompt
        self.streaming = False
        self._stream_run = 0  # tokens from an older stream are ignored
        self._raw_key: tuple = ("", -1, 0)  # (text, session version, model id) of the cached probabilities
        self._raw = None  # raw next-token probabilities (V,) for _raw_key
        self._predicting: tuple | None = None  # the key a worker is computing probabilities for
        self.stop_at_eos = True  # stop where the model draws its end-of-text token (E: keep sampling past it)
        self.ended: str | None = None  # the text after which the model drew its end-of-text token

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("prompt")
            yield Input(compact=True, id="prompt", placeholder="type a prompt, enter to predict")
        with Horizontal(classes="row"):
            yield Knobs(id="knobs")
            yield Label("seed")
            yield Input(compact=True, id="seed", type="integer")
        with Horizontal(id="gen-main"):
            with VerticalScroll(id="output-box"):
                yield Static(id="output")
            with Vertical(id="bars-box"):
                yield Static(id="bars-title")
                yield ProbBars(id="bars")
                yield Static(id="ablation")
        yield CompareView()

    def on_resize(self, event) -> None:
        """The bars' panel takes two fifths of a wide terminal (48 columns at 80), and as many bars as fit."""
        self.query_one("#bars-box").styles.width = max(48, event.size.width * 2 // 5)
        if self.is_mounted and self.app.session.model is not None and not self.streaming:
            self.call_after_refresh(self.show_prediction)

    @property
    def sampling(self):
        """The sampling settings the knobs turn, the session's: the knock-out panels sample with them too."""
        return self.app.session.current_sampling()

    def on_mount(self) -> None:
        self.show_base(self.app.session.prompt)
        self.query_one("#seed", Input).value = str(self.sampling.seed)

    def on_screen_resume(self) -> None:
        session = self.app.session
        if session.prompt != self.base:  # another screen changed the shared prompt
            self.show_base(session.prompt)
            self.generated = []
        self.refresh_view()

    def show_base(self, prompt: str) -> None:
        """Make `prompt` the prompt, shown in its one-line field with line breaks as ⏎."""
        self.base = prompt
        field = self.query_one("#prompt", Input)
        with field.prevent(Input.Changed):
            field.value = field_text(prompt)

    @property
    def text(self) -> str:
        """The prompt and the generated text (byte-level tokens decoded together: a split character whole)."""
        tokenizer = self.app.session.model.tokenizer if self.app.session.model is not None else None
        if tokenizer is not None and tokenizer.byte_level:
            return self.base + tokenizer.decode([i for i, _ in self.generated])
        return self.base + "".join(t for _, t in self.generated)

    # -- drawing ---------------------------------------------------------------------------------
    def refresh_view(self) -> None:
        """Knobs, the text so far and the bars for the next token, from the current weights."""
        self.show_knobs()
        self.show_output()
        model = self.app.session.model
        bars = self.query_one("#bars", ProbBars)
        if model is None:
            self.query_one("#bars-title", Static).update(NO_MODEL)
            bars.set_items([])
            return
        if not self.streaming:
            self.show_prediction()

    def show_knobs(self) -> None:
        self.query_one(Knobs).show(self.sampling, self.streaming)

    def show_output(self) -> None:
        text = Text()
        text.append(printable(self.base), style="bold")
        tokenizer = self.app.session.model.tokenizer if self.app.session.model is not None else None
        text.append(printable(shown_text(tokenizer, self.generated)), style="green")
        if self.at_end():
            text.append("\n\nend of text: the model ended it here · E: keep sampling past it", style="bold")
        elif not self.generated:
            text.append("\n\nn: next token · space: stream · c: compare strategies · e: edit the prompt", style="dim")
        else:
            text.append("\n\nx: clear the generated text · t: take it all as the prompt", style="dim")
        self.query_one("#output", Static).update(text)
        self.query_one("#output-box", VerticalScroll).scroll_end(animate=False)

    def prediction(self):
        """(raw probs, sampling probs) of the next token after the text, or None while not known.

        The raw probabilities are cached per (text, weights version), so turning a knob only re-filters
        them. For a large model, or when the trainer holds the weights, the forward pass runs in a worker
        instead of making the key wait for it."""
        model = self.app.session.model
        if not self.text:
            return None
        key = (self.text, self.app.session.version, id(model))
        if key != self._raw_key and key != self._predicting:
            if is_quick(model, len(self.text)) and model.lock.acquire(blocking=False):
                try:
                    self._raw_key, self._raw = key, model.next_token_probs(self.text)
                finally:
                    model.lock.release()
            else:
                self._predicting = key
                self.predict(key)
        if self._raw is None or self._raw_key[0] != self.text:
            return None
        with np.errstate(divide="ignore"):
            logits = np.log(self._raw)  # log-probabilities differ from the logits by a constant: same softmax
        return self._raw, self.sampling.distribution(logits)

    @background("predict")
    def predict(self, key: tuple) -> None:
        raw = self.app.session.model.next_token_probs(key[0])
        self.app.call_from_thread(self._predicted, key, raw)

    def _predicted(self, key: tuple, raw) -> None:
        if key == self._predicting:
            self._predicting = None
        if key[0] == self.text and not self.streaming:
            self._raw_key, self._raw = key, raw
            self.show_prediction()

    def settings_title(self, text: str) -> None:
        """The bars' title naming the sampling settings: one line, cut at the edge rather than wrapped over a bar."""
        title = self.query_one("#bars-title", Static)
        title.add_class("-one-line")
        title.update(text)

    def show_prediction(self) -> None:
        model = self.app.session.model
        pred = self.prediction()
        title = self.query_one("#bars-title", Static)
        title.remove_class("-one-line")
        if pred is None:
            title.update("type a prompt to see the next token" if not self.text else "computing…")
            if not self.text:
                self.query_one("#bars", ProbBars).set_items([])
            return
        raw, probs = pred
        if not np.all(np.isfinite(raw)):
            title.update(Text(OVERFLOW, style="bold red"))
            self.query_one("#bars", ProbBars).set_items([])
            return
        note = " · (%) before sampling" if describe(self.sampling) != "temp 1" else ""
        if self.at_end():
            self.settings_title(f"end of text · {describe(self.sampling)} · E: go on")
        else:
            self.settings_title(f"next token · {describe(self.sampling)}{note}")
        self.query_one("#bars", ProbBars).set_items(top_tokens(probs, model.tokenizer, self.bar_count(), raw))
        self.refresh_ablation()

    def bar_count(self) -> int:
        """As many bars as the panel has rows (ten at least; ten while the knock-out panel is under them)."""
        if self.app.session.ablations:
            return 10
        return max(10, self.query_one("#bars-box").size.height - 1)

    # -- knock-outs (the mixin's keys act on the layer and head selected on the Attention screen) ----
    def ablation_source(self) -> tuple | None:
        model = self.app.session.model
        if model is None or not self.text or self.streaming:
            return None
        return (id(model), self.app.session.version, self.text), model.encode_prompt(self.text)

    ablation_top = 3  # under the ten bars: the panel must fit at 80x24

    def ablations_changed(self) -> None:
        self.show_prediction()  # ten bars while a knock-out is on (bar_count), then the panel under them

    ablation_says_sampling = False  # the knobs above show the settings the continuations are drawn with

    def show_ablation(self, text: Text | None) -> None:
        panel = self.query_one("#ablation", Static)
        panel.display = text is not None
        if text is not None:
            panel.update(text)

    def ablation_width(self) -> int:
        return max(self.query_one("#bars-box").scrollable_content_region.width, 20)

    def training_tick(self, state) -> None:
        """While a model trains, let the bars follow its weights (called by the app's poll)."""
        if self.is_current and not self.streaming and self.app.session.model is not None:
            if self._raw_key[1:] != (self.app.session.version, id(self.app.session.model)):
                self.show_prediction()

    # -- prompt and seed -------------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        self.set_prompt(event.value)
        self.set_focus(None)

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        if prompt_text(event.value) != self.base:
            self.set_prompt(event.value)

    def set_prompt(self, value: str) -> None:
        """The field's text (⏎ for line breaks) becomes the prompt shared with Inspect and Attention."""
        self.stop_stream()
        self.base, self.generated = prompt_text(value), []
        self.app.session.prompt = self.base
        self.refresh_view()

    @on(Input.Submitted, "#seed")
    def _seed_submitted(self, event: Input.Submitted) -> None:
        from tinylm.core import ConfigError, Sampling

        try:  # checked here, where it is typed: a seed numpy cannot take must never reach a sampler
            self.sampling.seed = Sampling(seed=int(event.value)).validate().seed
        except (ValueError, ConfigError) as exc:
            why = str(exc) if isinstance(exc, ConfigError) else f"seed must be a whole number, got {event.value!r}"
            self.notify(why, severity="error")
            event.input.value = str(self.sampling.seed)
        self.set_focus(None)
        self.refresh_view()

    def action_edit_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_edit_seed(self) -> None:
        self.query_one("#seed", Input).focus()

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def action_reseed(self) -> None:
        self.sampling.seed = seed_after(self.sampling.seed, 1)
        self.query_one("#seed", Input).value = str(self.sampling.seed)
        self.refresh_view()

    def action_reset(self) -> None:
        self.stop_stream()
        self.generated = []
        self.refresh_view()

    def action_use_as_prompt(self) -> None:
        """Make the prompt and the generated text the new prompt (also of Inspect and Attention)."""
        if not self.generated:
            self.notify("Nothing generated yet: n adds a token, space streams.")
            return
        self.stop_stream()
        text = self.text
        self.generated = []
        self.show_base(text)
        self.app.session.prompt = text
        self.refresh_view()

    # -- knobs: the bars follow at once ----------------------------------------------------------
    def action_knob(self, knob: str, delta: int = 0) -> None:
        turn(self.sampling, knob, delta)  # a streaming worker shares this Sampling: its next token follows
        self.refresh_view()

    # -- generating ------------------------------------------------------------------------------
    def action_step(self) -> None:
        """Sample one token from the distribution the bars show, and append it."""
        from tinylm.core import Sampling, TinyLMError

        model = self.app.session.model
        if model is None or not self.text:
            self.notify(NO_MODEL if model is None else "Type a prompt first (e).", severity="warning")
            return
        self.stop_stream()
        s = self.sampling
        seeded = Sampling(s.temperature, s.top_k, s.top_p, s.greedy, seed_after(s.seed, len(self.generated)))
        if is_quick(model, len(self.text)):
            try:
                with np.errstate(all="ignore"):
                    step = next(iter(model.generate(self.text, seeded, 1, stop_at_eos=self.stop_at_eos)))
            except (TinyLMError, ValueError) as exc:
                self.notify(str(exc), title="Cannot generate", severity="error")
                return
            self.append(step)
            self.refresh_view()
        else:  # a large model's pass over the whole text takes longer than a key may wait
            self.query_one("#bars-title", Static).update("computing the next token…")
            self.step_in_background(self.text, seeded, self.stop_at_eos)

    @background("step")
    def step_in_background(self, text: str, sampling, stop_at_eos: bool) -> None:
        from tinylm.core import TinyLMError

        try:
            with np.errstate(all="ignore"):
                step = next(iter(self.app.session.model.generate(text, sampling, 1, stop_at_eos=stop_at_eos)))
        except (TinyLMError, ValueError) as exc:
            self.app.call_from_thread(self.notify, str(exc), title="Cannot generate", severity="error")
            return
        self.app.call_from_thread(self._stepped, text, step)

    def _stepped(self, text: str, step) -> None:
        if text == self.text and not self.streaming:  # nothing else changed the text meanwhile
            self.append(step)
            self.refresh_view()

    def append(self, step) -> None:
        """Add a generated token to the text (the prompt stays as typed: t makes it all the prompt);
        the end-of-text token is not added but marks the text as ended."""
        if step.end:
            self.ended = self.text
        else:
            self.generated.append((step.id, step.text))

    def at_end(self) -> bool:
        """Whether the model ended the text as it stands (drew its end-of-text token after it)."""
        return self.stop_at_eos and self.ended is not None and self.ended == self.text

    def action_toggle_eos(self) -> None:
        """Stop at the model's end-of-text token, or keep sampling past it (a stream restarts with it)."""
        eos = self.app.session.model.config.eos_token_id if self.app.session.model is not None else None
        self.stop_at_eos = not self.stop_at_eos
        if eos is None:
            self.notify("This model names no end-of-text token (eos_token_id): nothing stops its text.")
        else:
            how = "stops at" if self.stop_at_eos else "keeps sampling past"
            self.notify(f"Generation {how} the end-of-text token (id {eos}).")
        if self.streaming:
            self.stop_stream()
            self.action_stream()
        self.refresh_view()

    def action_stream(self) -> None:
        if self.streaming:
            self.stop_stream()
            self.refresh_view()
            return
        if self.app.session.model is None or not self.text:
            self.notify(NO_MODEL if self.app.session.model is None else "Type a prompt first (e).", severity="warning")
            return
        self.streaming = True
        self._stream_run += 1
        self.stream(self.text, self._stream_run)
        self.show_knobs()

    def stop_stream(self) -> None:
        if self.streaming:
            self.streaming = False
            self._stream_run += 1
            self.workers.cancel_group(self, "stream")

    @background("stream")
    def stream(self, text: str, run: int) -> None:
        """Generate tokens until stopped; the knobs act on the next token (the Sampling object is shared)."""
        from textual.worker import get_current_worker

        from tinylm.core import TinyLMError

        worker = get_current_worker()
        model = self.app.session.model
        try:
            with np.errstate(all="ignore"):
                for step in model.generate(text, self.sampling, stop_at_eos=self.stop_at_eos):
                    if worker.is_cancelled:
                        return
                    self.post_message(TokenStreamed(step, run))
                    time.sleep(STREAM_DELAY)
        except (TinyLMError, ValueError) as exc:
            self.app.call_from_thread(self._stream_failed, run, str(exc))

    def _stream_failed(self, run: int, message: str) -> None:
        if run == self._stream_run:
            self.stop_stream()
            self.notify(message, title="Streaming stopped", severity="error")
            self.refresh_view()

    def on_token_streamed(self, message: TokenStreamed) -> None:
        if message.run != self._stream_run or not self.streaming:
            return
        step = message.step
        if not np.all(np.isfinite(step.raw_probs)):
            self.stop_stream()
            self.refresh_view()
            return
        self.append(step)
        if step.end:  # the model ended the text: the stream is over
            self.stop_stream()
            self.refresh_view()
            return
        self.show_output()
        model = self.app.session.model
        self.settings_title(f"drawn from · {describe(self.sampling)}")
        self.query_one("#bars", ProbBars).set_items(
            top_tokens(step.probs, model.tokenizer, self.bar_count(), step.raw_probs), highlight=step.id
        )

    def on_screen_suspend(self) -> None:
        self.stop_stream()

    def action_kv_cache(self) -> None:
        """The KV cache over the current text, filling token by token, with the work it saves."""
        if self.app.session.model is not None and self.text:
            self.stop_stream()
            self.app.push_screen(KVCacheScreen(self.text))

    def action_compare(self) -> None:
        view = self.query_one(CompareView)
        view.toggle_class("-shown")
        if view.has_class("-shown"):
            view.run_compare(self.app.session.model, self.text, self.sampling.seed or 0)
