"""Tokenizers: char (nanoGPT's), word, byte-level BPE trained here, and GPT-2's own read from its files.

The kinds are listed once, in registry.py.
"""

from __future__ import annotations

from .base import TOKENIZER_FILE, Tokenizer
from .bpe import BPETokenizer
from .char import CharTokenizer
from .gpt2 import GPT2Tokenizer, load_hf_tokenizer
from .registry import (
    TOKENIZERS,
    TRAINABLE,
    TokenizerKind,
    load_tokenizer,
    read_tokenizer_file,
    tokenizer_from_dict,
    tokenizer_kind,
    train_tokenizer,
)
from .word import WordTokenizer

TOKENIZER_KINDS = TRAINABLE  # the kinds one can train, as the command line and the Config screen offer them

__all__ = [
    "TOKENIZER_FILE",
    "TOKENIZER_KINDS",
    "TOKENIZERS",
    "TRAINABLE",
    "BPETokenizer",
    "CharTokenizer",
    "GPT2Tokenizer",
    "Tokenizer",
    "TokenizerKind",
    "WordTokenizer",
    "load_hf_tokenizer",
    "load_tokenizer",
    "read_tokenizer_file",
    "tokenizer_from_dict",
    "tokenizer_kind",
    "train_tokenizer",
]
