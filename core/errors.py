"""User-facing errors: one line that names the problem and what to do."""


class TinyLMError(Exception):
    """A problem the user can fix; its message is shown as is, without a traceback."""


class ConfigError(TinyLMError, ValueError):
    """An invalid model or training setting."""


class CorpusError(TinyLMError):
    """A corpus that cannot be read or used."""


class TokenizerError(TinyLMError):
    """Text or a tokenizer file that the tokenizer cannot handle."""


class CheckpointError(TinyLMError):
    """A checkpoint directory that is missing, damaged or does not match."""


class CheckpointRecovered(UserWarning):
    """An interrupted save was finished or undone, and its leftovers removed, when a checkpoint was opened."""


class NonFiniteOutput(TinyLMError):
    """A forward pass gave NaN or infinite outputs: weights too large for the float type (damaged or diverged)."""
