"""Character tokenizer, set up exactly like nanoGPT's shakespeare_char."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import TokenizerError
from . import hf_files
from .base import UNKNOWN_DISPLAY, UNKNOWN_TEXT, Tokenizer, require_text


class CharTokenizer(Tokenizer):
    """One token per character.

    The vocabulary is the sorted distinct characters of the training text (ids 0..n-1, as in
    nanoGPT), followed by ONE extra token `<unk>` at id n. Characters not seen in training encode
    to `<unk>`; `<unk>` decodes to U+FFFD and `token_text` shows it as "<unk>".
    """

    kind = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars: list[str] = list(chars)
        for c in self.chars:
            if not isinstance(c, str) or len(c) != 1:
                raise TokenizerError(f"char tokenizer vocabulary entries must be single characters, got {c!r}")
        if len(set(self.chars)) != len(self.chars):
            raise TokenizerError("char tokenizer vocabulary has duplicate characters")
        self.unk_id = len(self.chars)
        self._stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> CharTokenizer:
        """Vocabulary = the sorted distinct characters of `text`, plus `<unk>` (`vocab_size` is ignored)."""
        require_text(text)
        if not text:
            raise TokenizerError("cannot train a tokenizer on empty text; use a non-empty corpus")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        require_text(text)
        get, unk = self._stoi.get, self.unk_id
        return np.fromiter((get(c, unk) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Iterable[int]) -> str:
        chars = self.chars + [UNKNOWN_TEXT]
        return "".join(chars[i] for i in self._check_ids(ids))

    def token_text(self, id: int) -> str:
        id = self._check_id(id)
        return UNKNOWN_DISPLAY if id == self.unk_id else self.chars[id]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "version": 1, "chars": "".join(self.chars)}

    @classmethod
    def _from_fields(cls, d: dict) -> CharTokenizer:
        chars = d["chars"]
        if not isinstance(chars, str):
            raise TokenizerError("damaged char tokenizer data: 'chars' must be a string")
        return cls(chars)

    def save(self, directory: str | os.PathLike) -> Path:
        """tinylm_tokenizer.json, plus tokenizer.json: one character per piece, looked up, joined back."""
        path = super().save(directory)
        vocab = {c: i for i, c in enumerate(self.chars)} | {UNKNOWN_DISPLAY: self.unk_id}
        hf_files.write_tokenizer_json(directory, hf_files.wordlevel_json(vocab, UNKNOWN_DISPLAY, r"[\s\S]"))
        return path
