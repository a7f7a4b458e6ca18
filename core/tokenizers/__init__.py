"""Tokenizers: char (nanoGPT's), word, byte-level BPE trained here, and GPT-2's own read from its files."""

from __future__ import annotations

from pathlib import Path

from ..errors import TokenizerError
from .base import TOKENIZER_FILE, Tokenizer
from .bpe import BPETokenizer
from .char import CharTokenizer
from .gpt2 import GPT2Tokenizer, load_hf_tokenizer
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


def load_tokenizer(directory) -> Tokenizer | None:
    """The tokenizer of a checkpoint directory: tinylm_tokenizer.json, else Hugging Face's files
    (tokenizer.json, or vocab.json + merges.txt); None when it has none. TokenizerError if damaged."""
    if (Path(directory) / TOKENIZER_FILE).is_file():
        return Tokenizer.load(directory)
    return load_hf_tokenizer(directory)


__all__ = [
    "TOKENIZER_FILE",
    "TOKENIZER_KINDS",
    "BPETokenizer",
    "CharTokenizer",
    "GPT2Tokenizer",
    "Tokenizer",
    "WordTokenizer",
    "load_hf_tokenizer",
    "load_tokenizer",
    "train_tokenizer",
]
