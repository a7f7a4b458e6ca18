"""Tokens as the screens show them: the tokenizer's label (a split character's bytes as \\xNN), whitespace visible."""

from __future__ import annotations

from .safe_text import one_line

_ESCAPES = {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}


def visible(text: str) -> str:
    """A token's text with whitespace and control characters made visible (one glyph each)."""
    shown = "".join(_ESCAPES.get(ch, ch) for ch in text)
    return one_line(shown) or "∅"  # other controls as their control pictures (␀, ␛, ␡), the rarest as ·


def token_label(tokenizer, id: int) -> str:
    """One token for display: ' the' is '␣the', the first byte of a split 'é' is '\\xc3'."""
    return visible(tokenizer.token_label(int(id)))


def token_labels(tokenizer, ids) -> list[str]:
    """`token_label` of each id."""
    return [token_label(tokenizer, i) for i in ids]


def vocabulary_labels(tokenizer, vocab_size: int) -> list[str]:
    """`token_label` of every id of the vocabulary."""
    return token_labels(tokenizer, range(vocab_size))
