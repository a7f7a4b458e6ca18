"""Tokens as the screens show them: from their bytes, whitespace made visible, broken UTF-8 shown as \\xNN."""

from __future__ import annotations

_ESCAPES = {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}


def visible(text: str) -> str:
    """A token's text with whitespace and control characters made visible (one glyph each)."""
    return "".join(_ESCAPES.get(ch, "·" if ord(ch) < 32 or ord(ch) == 127 else ch) for ch in text) or "∅"


def bytes_text(data: bytes) -> str:
    """Bytes as text: valid UTF-8 as its characters, each byte of a split character as \\xNN."""
    return data.decode("utf-8", errors="backslashreplace")


def token_label(tokenizer, id: int) -> str:
    """One token for display: ' the' is '␣the', the first byte of a split 'é' is '\\xc3'."""
    return visible(bytes_text(tokenizer.token_bytes(int(id))))


def token_labels(tokenizer, ids) -> list[str]:
    """`token_label` of each id."""
    return [token_label(tokenizer, i) for i in ids]


def vocabulary_labels(tokenizer, vocab_size: int) -> list[str]:
    """`token_label` of every id of the vocabulary."""
    return token_labels(tokenizer, range(vocab_size))
