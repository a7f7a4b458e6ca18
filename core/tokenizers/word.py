"""Word tokenizer: words, single punctuation marks and whitespace runs."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import TokenizerError
from . import hf_files
from .base import UNKNOWN_DISPLAY, UNKNOWN_TEXT, Tokenizer, require_text

# Every character is \w, \s or neither, so the pieces always join back to the exact text.
WORD_PATTERN = re.compile(r"\w+|\s+|[^\w\s]")
DEFAULT_WORD_VOCAB = 8192


def split_words(text: str) -> list[str]:
    """Split text into pieces that concatenate back to it exactly."""
    return WORD_PATTERN.findall(text)


class WordTokenizer(Tokenizer):
    """One token per word, punctuation mark or whitespace run.

    Id 0 is `<unk>`; then the pieces of the training text by frequency (most frequent first, ties
    by text), at most `vocab_size - 1` of them (default cap 8192 in all). Pieces outside the
    vocabulary encode to `<unk>`, which decodes to U+FFFD and shows as "<unk>" in `token_text`.
    """

    kind = "word"
    unk_id = 0

    def __init__(self, pieces: Iterable[str]):
        self.pieces: list[str] = list(pieces)
        for p in self.pieces:
            if not isinstance(p, str) or not p:
                raise TokenizerError(f"word tokenizer vocabulary entries must be non-empty strings, got {p!r}")
        self._stoi = {p: i + 1 for i, p in enumerate(self.pieces)}
        if len(self._stoi) != len(self.pieces):
            raise TokenizerError("word tokenizer vocabulary has duplicate pieces")

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> WordTokenizer:
        """Keep the `vocab_size - 1` most frequent pieces of `text` (plus `<unk>`)."""
        require_text(text)
        if not text:
            raise TokenizerError("cannot train a tokenizer on empty text; use a non-empty corpus")
        vocab_size = DEFAULT_WORD_VOCAB if vocab_size is None else int(vocab_size)
        if vocab_size < 2:
            raise TokenizerError(f"word vocabulary size must be at least 2 (<unk> and one word), got {vocab_size}")
        counts = Counter(split_words(text))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls(piece for piece, _ in ranked[: vocab_size - 1])

    @property
    def vocab_size(self) -> int:
        return len(self.pieces) + 1

    def encode(self, text: str) -> np.ndarray:
        require_text(text)
        get = self._stoi.get
        pieces = split_words(text)
        return np.fromiter((get(p, 0) for p in pieces), dtype=np.int64, count=len(pieces))

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [UNKNOWN_TEXT] + self.pieces
        return "".join(pieces[i] for i in self._check_ids(ids))

    def token_text(self, id: int) -> str:
        id = self._check_id(id)
        return UNKNOWN_DISPLAY if id == 0 else self.pieces[id - 1]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "version": 1, "pieces": list(self.pieces)}

    @classmethod
    def _from_fields(cls, d: dict) -> WordTokenizer:
        pieces = d["pieces"]
        if not isinstance(pieces, list):
            raise TokenizerError("damaged word tokenizer data: 'pieces' must be a list of strings")
        return cls(pieces)

    def save(self, directory: str | os.PathLike) -> Path:
        """tinylm_tokenizer.json, plus tokenizer.json: the same pieces (Python's classes spelled out), looked up."""
        path = super().save(directory)
        c = hf_files.onig_class
        regex = f"{c('w')}+|{c('s')}+|{c('P')}"
        vocab = {UNKNOWN_DISPLAY: 0} | {p: i + 1 for i, p in enumerate(self.pieces)}
        hf_files.write_tokenizer_json(directory, hf_files.wordlevel_json(vocab, UNKNOWN_DISPLAY, regex))
        return path
