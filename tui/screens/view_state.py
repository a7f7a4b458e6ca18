"""A view's consistent snapshot of the session: the prompt's trace and the weights it was computed with."""

from __future__ import annotations

import numpy as np

NO_MODEL = "No model yet: press 1 to configure and train one"


class ViewState:
    """Trace, weights and vocabulary as of one (model, version, prompt); refreshed only when those change."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.trace = None  # the shared prompt's Trace, or None (no model, empty prompt, or an error)
        self.params: dict[str, np.ndarray] = {}  # copies, so a training step cannot change them under the view
        self.vocab: list[str] = []  # token_text of every id
        self.cropped = False  # the prompt was longer than the context and lost its first tokens
        self.error = ""
        self._vocab_of: int | None = None

    def update(self, session) -> bool:
        """Take a new snapshot if the model, its weights or the prompt changed; True when it did."""
        model = session.model
        key = (id(model), session.version, session.prompt)
        if key == self.key:
            return False
        self.key, self.trace, self.params, self.error, self.cropped = key, None, {}, "", False
        if model is None:
            return True
        from tinylm.core import TinyLMError

        with model.lock:  # reentrant: the trace and the weights come from the same step
            try:
                self.trace = session.trace()
            except TinyLMError as exc:
                self.error = str(exc)
            self.params = {name: np.array(value, copy=True) for name, value in model.params.items()}
        if self._vocab_of != id(model):
            tok = model.tokenizer
            self.vocab = [tok.token_text(i) for i in range(model.config.vocab_size)]
            self._vocab_of = id(model)
        if self.trace is not None:
            self.cropped = len(model.tokenizer.encode(session.prompt)) > len(self.trace.ids)
        return True
