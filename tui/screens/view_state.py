"""A view's consistent snapshot of the session: the prompt's trace and the weights it was computed with."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..tokens import token_labels, vocabulary_labels
from .registry import key_of

CONFIG_KEY = key_of("config")  # where a model is made, named in the messages of the other screens
NO_MODEL = f"No model yet: press {CONFIG_KEY} to configure and train one"
LOADING = "Tracing the prompt through the model…"  # shown until the first snapshot arrives
QUICK_WORK = 20_000_000  # weights x tokens a forward pass may touch on the UI thread (tens of ms); more: a worker


def snapshot_key(session) -> tuple:
    """What a snapshot depends on: the model, its weights' version and the prompt."""
    return (id(session.model), session.version, session.prompt)


class ViewState:
    """Trace, weights and vocabulary as of one (model, version, prompt)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.trace = None  # the shared prompt's Trace, or None (no model, empty prompt, or an error)
        self.params: dict[str, np.ndarray] = {}  # copies, so a training step cannot change them under the view
        self.vocab: list[str] = []  # token_text of every id
        self.cropped = False  # the prompt was longer than the context and lost its first tokens
        self.wpe = np.zeros((0, 0))  # the position table (learned or fixed sine/cosine)
        self.error = ""

    @classmethod
    def take(cls, session, *, blocking: bool = True) -> ViewState | None:
        """A snapshot of the session as it is now (the one another screen took, when nothing changed since);
        None when `blocking` is False and a training step holds the weights right now.

        The UI thread calls this without blocking: waiting for a training step there would freeze the keys,
        so the screens retry in a worker thread instead.
        """
        from tinylm.core import TinyLMError

        shared = session.snapshot
        if shared is not None and shared.key == snapshot_key(session):
            return shared  # another screen took it: the same model, weights and prompt
        state, model = cls(), session.model
        copy = session.trainer is not None  # only weights a trainer can change need a copy (0.5 GB at GPT-2 size)
        state.key = snapshot_key(session)
        if model is None:
            return state
        if not model.lock.acquire(blocking=blocking):
            return None
        try:  # the trace and the weights come from the same step (model.trace re-enters the RLock)
            ids = session.prompt_ids()
            state.trace = model.trace(ids) if ids is not None else None
            state.params = {name: np.array(value, copy=copy) for name, value in model.params.items()}
            state.wpe = np.array(model.wpe, copy=copy)
        except TinyLMError as exc:
            state.error = str(exc)
        finally:
            model.lock.release()
        tok = model.tokenizer
        state.vocab = labels_of(tok, model.config.vocab_size)
        if state.trace is not None:
            state.trace = dataclasses.replace(state.trace, tokens=token_labels(tok, state.trace.ids))
            state.cropped = len(tok.encode(session.prompt)) > len(state.trace.ids)
        session.snapshot = state
        return state


def is_quick(model, tokens: int = 1) -> bool:
    """Whether a forward pass of this model over `tokens` tokens is quick enough for the UI thread."""
    return model is None or sum(p.size for p in model.params.values()) * max(tokens, 1) <= QUICK_WORK


_labels: tuple = (None, 0, [])  # (tokenizer, vocabulary size, labels): the last vocabulary made visible


def labels_of(tokenizer, vocab_size: int) -> list[str]:
    """Every token's display label, remembered for the last tokenizer (50,257 labels take a while)."""
    global _labels
    if _labels[0] is not tokenizer or _labels[1] != vocab_size:
        _labels = (tokenizer, vocab_size, vocabulary_labels(tokenizer, vocab_size))
    return _labels[2]
