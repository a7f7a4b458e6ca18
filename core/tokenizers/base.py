"""The tokenizer interface shared by the char, word and BPE tokenizers, and its JSON file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import TokenizerError

TOKENIZER_FILE = "tinylm_tokenizer.json"  # exact for every kind; Hugging Face's tokenizer.json is written beside it
FORMAT_VERSION = 1
UNKNOWN_TEXT = "\ufffd"  # what an <unk> token decodes to (U+FFFD REPLACEMENT CHARACTER)
UNKNOWN_DISPLAY = "<unk>"  # how token_text shows an <unk> token


class Tokenizer:
    """Maps text to int64 token ids and back; subclasses set `kind` and get a line in registry.py."""

    kind: str = ""
    byte_level: bool = False  # tokens are byte strings; one may hold part of a UTF-8 character

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def token_text(self, id: int) -> str:
        raise NotImplementedError

    def token_label(self, id: int) -> str:
        """One token as people should read it: its text (byte-level kinds: bytes of a split character as \\xHH)."""
        return self.token_text(id)

    def text_label(self, ids: Iterable[int]) -> str:
        """Several tokens' text as people should read it (byte-level kinds: their bytes joined, so a
        character split over tokens shows whole, and only bytes of an unfinished one as \\xHH)."""
        return "".join(self.token_label(int(i)) for i in ids)

    def token_bytes(self, id: int) -> bytes:
        """The UTF-8 bytes of one token's display text (BPE overrides with its raw bytes)."""
        return self.token_text(id).encode("utf-8")

    def to_dict(self) -> dict:
        raise NotImplementedError

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> Tokenizer:
        """A tokenizer learned from `text` (kinds that are read from files do not train)."""
        raise NotImplementedError

    @classmethod
    def _from_fields(cls, d: dict) -> Tokenizer:
        """Rebuild from `to_dict` output (the registry has checked `kind` and `version`)."""
        raise NotImplementedError

    def save(self, directory: str | os.PathLike) -> Path:
        """Write `tinylm_tokenizer.json` into `directory` (atomically) and return its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / TOKENIZER_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)  # a crash mid-write never leaves a half-written tokenizer behind
        return path

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        """Ids as a plain list of ints, each checked to be inside the vocabulary."""
        if isinstance(ids, list) and len(ids) < 64 and all(type(i) is int and 0 <= i < self.vocab_size for i in ids):
            return list(ids)  # a few plain ints (generation decodes one token at a time): no round trip through numpy
        arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids))
        if arr.size == 0:
            return []
        if not np.issubdtype(arr.dtype, np.integer):
            raise TokenizerError(f"token ids must be integers, got {arr.dtype}")
        flat = arr.reshape(-1).astype(np.int64)
        bad = flat[(flat < 0) | (flat >= self.vocab_size)]
        if bad.size:
            raise TokenizerError(f"token id {int(bad[0])} is outside the vocabulary (0..{self.vocab_size - 1})")
        return flat.tolist()

    def _check_id(self, id: int) -> int:
        id = int(id)
        if not 0 <= id < self.vocab_size:
            raise TokenizerError(f"token id {id} is outside the vocabulary (0..{self.vocab_size - 1})")
        return id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def require_text(text: str, what: str = "text") -> str:
    """Reject non-str input with a TokenizerError instead of a confusing TypeError later."""
    if not isinstance(text, str):
        raise TokenizerError(f"{what} must be a str, got {type(text).__name__}")
    return text
