"""Tokenizers: char (nanoGPT's), word, and byte-level BPE (GPT-2's), saved as tinylm_tokenizer.json."""

from __future__ import annotations

from ..errors import TokenizerError
from .base import TOKENIZER_FILE, Tokenizer
from .bpe import BPETokenizer
from .char import CharTokenizer
from .word import WordTokenizer

TOKENIZER_KINDS = ("char", "word", "bpe")


def train_tokenizer(kind: str, text: str, vocab_size: int | None = None) -> Tokenizer:
    """Train a tokenizer of `kind` on `text`; `vocab_size` is ignored by "char" (its text decides)."""
    if kind == "char":
        return CharTokenizer.train(text)
    if kind == "word":
        return WordTokenizer.train(text, vocab_size)
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size)
    raise TokenizerError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(TOKENIZER_KINDS)}")


__all__ = [
    "TOKENIZER_FILE",
    "TOKENIZER_KINDS",
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "WordTokenizer",
    "train_tokenizer",
]
