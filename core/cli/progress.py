"""`tinylm train` at run time: the run's description, the progress line, evaluation lines, Ctrl-C, a sample."""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time

from ..trainer import TrainMetrics
from .common import fmt_bytes, fmt_count, fmt_time, plural

TTY_REFRESH_S = 0.1  # a terminal line redrawn at most 10 times a second costs nothing measurable
PLAIN_LINES = 50  # about this many progress lines per run when stdout is a file or a pipe


class Progress:
    """One updating line on a terminal (`\\r`), plain lines otherwise; every evaluation a durable line."""

    def __init__(self, stream, quiet: bool = False):
        self.stream, self.quiet = stream, quiet
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.last_val: tuple[int, float, float] | None = None  # (step, val loss, accuracy)
        self.window: list[float] = []  # train losses since the last evaluation
        self._line_shown = False
        self._last_draw = 0.0

    def update(self, m: TrainMetrics) -> None:
        self.window.append(m.train_loss)
        if m.val_loss is not None:
            mean = sum(self.window) / len(self.window)
            self.durable(
                f"step {m.step}/{m.max_steps}: val loss {m.val_loss:.4f}, accuracy {100 * m.accuracy:.1f}% | "
                f"train loss {mean:.4f} (mean of {len(self.window)} steps) | lr {m.lr:.2e} | "
                f"{fmt_time(m.elapsed_s)} elapsed"
            )
            self.last_val = (m.step, m.val_loss, m.accuracy)
            self.window = []
        if self.quiet:
            return
        last = m.step == m.max_steps
        if self.tty:
            now = time.monotonic()
            if last or now - self._last_draw >= TTY_REFRESH_S:
                self._last_draw = now
                width = shutil.get_terminal_size((100, 24)).columns - 1
                # Cut to the width: a wrapped line cannot be redrawn in place with \r.
                self._write("\r" + self.line(m, with_val=True)[:width] + "\x1b[K")
                self._line_shown = True
        elif last or m.step == 1 or m.step % max(1, m.max_steps // PLAIN_LINES) == 0:
            self._write(self.line(m, with_val=False) + "\n")

    def _write(self, text: str) -> None:
        """Write and flush; a stream that fails (a terminal closed under the run) ends the progress
        output, not the training."""
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.stream = None

    def line(self, m: TrainMetrics, with_val: bool) -> str:
        """Time first, so a narrow terminal that cuts the line still shows how long is left."""
        width = len(str(m.max_steps))
        parts = [
            f"step {m.step:>{width}}/{m.max_steps} {100 * m.progress:3.0f}%",
            f"{fmt_time(m.elapsed_s)} elapsed, {fmt_time(m.eta_s)} left",
            f"loss {m.train_loss:.4f}",
        ]
        if with_val and self.last_val is not None:
            _, val, acc = self.last_val
            parts.append(f"val {val:.4f} acc {100 * acc:.1f}%")
        parts += [f"lr {m.lr:.2e}", f"grad {m.grad_norm:.3f}", f"{fmt_count(m.tokens_per_s)} tok/s"]
        return " | ".join(parts)

    def durable(self, text: str) -> None:
        """A line that stays: on a terminal it replaces the progress line, which is redrawn after it."""
        if self.quiet:
            return
        if self._line_shown:
            self._write("\r\x1b[K")
            self._line_shown = False
        self._write(text + "\n")

    def close(self) -> None:
        """End the updating line so that what follows starts on a fresh one."""
        if self._line_shown:
            self._write("\n")
            self._line_shown = False


# Signals that ask a run to stop after its step and save: `kill` (TERM) and a closed terminal or SSH
# connection (HUP) would otherwise end the process with its training unsaved.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _say(text: str) -> None:
    """A line on stderr, if there still is one (after SIGHUP the terminal may be gone)."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class StopOnCtrlC:
    """The first Ctrl-C (or a TERM or HUP signal) asks training to stop after the current step; a
    second Ctrl-C interrupts at once (the trainer still stops at a step boundary, so the saved state
    stays exact); while saving, Ctrl-C waits for the save."""

    def __init__(self):
        self.requested = False
        self.saving = False  # set while the checkpoint is written: Ctrl-C then only says so
        self._previous = {}

    def _handler(self, signum, frame):
        if self.saving:
            _say("\ntinylm: saving the checkpoint, a moment (a kill now keeps the previous checkpoint)")
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        _say("\ntinylm: stopping after this step (Ctrl-C again to stop now)")

    def _stop_handler(self, signum, frame):
        if not self.requested and not self.saving:
            self.requested = True
            _say(f"\ntinylm: {signal.Signals(signum).name} received: stopping after this step and saving")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handler)
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's choice stands
                    self._previous[sig] = signal.signal(sig, self._stop_handler)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}
        return False


def numba_threads() -> int:
    import numba

    return numba.get_num_threads()


def describe_run(trainer, out, resumed: bool, init: str | None = None) -> list[str]:
    """A few lines saying what is about to be trained, on what, and where it will be saved."""
    from ..run import memory_estimate

    model, c = trainer.model, trainer.config
    mc, corpus, tok = model.config, trainer.corpus, model.tokenizer
    n_tokens = trainer.n_train_tokens + trainer.n_val_tokens
    lines = [f"starting    from the model in {init} (its weights, tokenizer and shape)"] if init else []
    if corpus is not None:
        where = {"builtin": "built-in", "file": "file", "text": "typed text"}.get(corpus.source, corpus.source)
        lines.append(
            f"corpus      {corpus.name} ({where}): {len(corpus.text):,} characters -> {n_tokens:,} tokens; "
            f"{trainer.n_train_tokens:,} to train, {trainer.n_val_tokens:,} to validate"
        )
    lines.append(f"tokenizer   {tok.kind}, {tok.vocab_size:,} tokens")
    itemsize = model.dtype.itemsize
    lines.append(
        f"model       {plural(mc.n_layer, 'layer')} x {plural(mc.n_head, 'head')} x {mc.n_embd} wide, "
        f"context {mc.block_size}, {mc.positional} positions{f', dropout {mc.dropout:g}' if mc.dropout else ''}"
        f"{'' if mc.attention else ', MLP only (no attention)'}: "
        f"{mc.num_params():,} parameters{'' if mc.attention else f' ({mc.trained_params():,} trained)'}, "
        f"~{fmt_bytes(memory_estimate(mc, c, itemsize))} to train in {model.dtype.name}"
    )
    lines.append(
        f"training    {c.max_steps} steps of {c.batch_size} x {c.context or mc.block_size} tokens; "
        f"AdamW lr {c.learning_rate:g} -> {c.min_lr:g} (warmup {c.warmup_steps}, decay to step {c.decay_steps}), "
        f"weight decay {c.weight_decay:g}, "
        f"betas {c.beta1:g}/{c.beta2:g}, clip {c.grad_clip:g}; validation every {c.eval_interval} steps "
        f"({c.eval_batches} batches); seed {c.seed}"
    )
    shards = trainer.shards()
    if trainer.model.device != "cpu":
        from tinylm.kernels.backend import cuda_simulated

        where = "numba's CUDA simulator" if cuda_simulated() else "the GPU"
        lines.append(f"device      {trainer.model.device}: every step's kernels on {where}, each batch in one piece")
    elif shards is not None:
        rows = "/".join(str(r.stop - r.start) for r in shards.rows)
        lines.append(
            f"threads     {len(shards)}: each batch runs as {len(shards)} row shards ({rows} windows), "
            "one per thread, gradients added"
        )
    else:
        n = numba_threads()
        lines.append(f"threads     {n}: each batch in one piece" + (" (too small to split)" if n > 1 else ""))
    if resumed:
        lines.append(f"resuming    at step {trainer.step_count} of {c.max_steps}")
    lines.append(f"checkpoint  {out} (written at the end, and on Ctrl-C)")
    return lines


def sample_text(trainer, n_chars: int) -> str:
    """About n_chars of text from the trained model (temperature 0.8, seeded by the run's seed)."""
    from ..sampling import Sampling
    from .common import default_prompt_ids

    model = trainer.model
    pieces, length = [], 0
    for step in model.generate(
        default_prompt_ids(model), Sampling(temperature=0.8, seed=trainer.config.seed), max_new_tokens=4 * n_chars
    ):
        if step.end:  # the model ended its text: the token itself is not text
            break
        pieces.append(step.id)
        length += len(step.text)
        if length >= n_chars:
            break
    return model.tokenizer.decode(pieces)[:n_chars]
