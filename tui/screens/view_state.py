"""A view's consistent snapshot of the session: the prompt's trace and the weights it was computed with."""

from __future__ import annotations

import numpy as np

from .registry import key_of

CONFIG_KEY = key_of("config")  # where a model is made, named in the messages of the other screens
NO_MODEL = f"No model yet: press {CONFIG_KEY} to configure and train one"
LOADING = "Reading the model's weights…"  # shown until the first snapshot (a training step may hold them)


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
        """A new snapshot; None when `blocking` is False and a training step holds the weights right now.

        The UI thread calls this without blocking: waiting for a training step there would freeze the keys,
        so the screens retry in a worker thread instead.
        """
        from tinylm.core import TinyLMError

        state, model = cls(), session.model
        state.key = snapshot_key(session)
        if model is None:
            return state
        if not model.lock.acquire(blocking=blocking):
            return None
        try:  # the trace and the weights come from the same step (model.trace re-enters the RLock)
            ids = session.prompt_ids()
            state.trace = model.trace(ids) if ids is not None else None
            state.params = {name: np.array(value, copy=True) for name, value in model.params.items()}
            state.wpe = np.array(model.wpe, copy=True)
        except TinyLMError as exc:
            state.error = str(exc)
        finally:
            model.lock.release()
        tok = model.tokenizer
        state.vocab = [tok.token_text(i) for i in range(model.config.vocab_size)]
        if state.trace is not None:
            state.cropped = len(tok.encode(session.prompt)) > len(state.trace.ids)
        return state
