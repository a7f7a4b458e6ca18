"""Text made safe for the terminal: no control character from a corpus, a model or a file name reaches it.

A raw line break inside a one-line widget, a tab, a carriage return or an escape sequence would move the
terminal's cursor behind Textual's back and garble the screen, so every such character is shown as a
visible stand-in instead, at the place where outside text enters a widget."""

from __future__ import annotations

import unicodedata

NEWLINE = "⏎"  # a line break in one-line text
_STANDINS = {"\n": NEWLINE, "\t": "⇥", "\r": "␍", "\x1b": "␛", "\x7f": "␡"}
_UNSAFE = ("Cc", "Cs", "Zl", "Zp")  # control characters, lone surrogates, line and paragraph separators


def _standin(ch: str) -> str:
    if ch in _STANDINS:
        return _STANDINS[ch]
    if ord(ch) < 32:
        return chr(0x2400 + ord(ch))  # the Unicode "control picture" of C0 characters: ␀ ␁ ...
    return "·"


def one_line(text: str) -> str:
    """`text` with every control character, line breaks included, as a visible one-cell stand-in."""
    if text.isprintable():
        return text
    return "".join(_standin(ch) if unicodedata.category(ch) in _UNSAFE else ch for ch in text)


def printable(text: str) -> str:
    """`text` for a widget that wraps lines: line breaks kept, every other control character made visible."""
    return "\n".join(one_line(line) for line in text.split("\n"))


def shown_piece(tokenizer, token_id: int, text: str) -> str:
    """A generated token's text, except that a token decoding to U+FFFD (the unknown token, or bytes
    that are not whole characters) is shown by its label, e.g. <unk> or \\xe2\\x80, not as a replacement glyph."""
    if tokenizer is None or "\ufffd" not in text:
        return text
    return tokenizer.token_label(token_id)


def shown_text(tokenizer, pieces: list[tuple[int, str]]) -> str:
    """Generated tokens (id, text) as shown: a byte-level tokenizer's bytes joined, so a character
    split over tokens shows whole (an unfinished one as \\xHH); other kinds token by token (shown_piece)."""
    if tokenizer is not None and tokenizer.byte_level:
        return tokenizer.text_label([i for i, _ in pieces])
    return "".join(shown_piece(tokenizer, i, t) for i, t in pieces)
