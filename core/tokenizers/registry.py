"""The tokenizer kinds: one table read by the command line, the TUI, training and the checkpoint loader.

A new kind is a module with a `Tokenizer` subclass (its `kind`, `train`, `to_dict`/`_from_fields`)
plus one line in `TOKENIZERS`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import TokenizerError
from ..files import NotReadable, read_json_text
from .base import FORMAT_VERSION, TOKENIZER_FILE, Tokenizer
from .bpe import DEFAULT_BPE_VOCAB, BPETokenizer
from .char import CharTokenizer
from .gpt2 import GPT2Tokenizer, load_hf_tokenizer
from .word import DEFAULT_WORD_VOCAB, WordTokenizer


@dataclass(frozen=True)
class TokenizerKind:
    """One kind of tokenizer: its name (the `--tokenizer` value), class and one-line description.

    `trains`: it learns its vocabulary from the corpus (else it is read from a model's files);
    `default_vocab`: the vocabulary size it trains to unless told (None: the corpus decides).
    """

    name: str
    cls: type[Tokenizer]
    description: str
    trains: bool = True
    default_vocab: int | None = None

    @property
    def takes_vocab_size(self) -> bool:
        return self.trains and self.default_vocab is not None


TOKENIZERS: tuple[TokenizerKind, ...] = (
    TokenizerKind("char", CharTokenizer, "one token per character of the corpus (nanoGPT's shakespeare_char)"),
    TokenizerKind("word", WordTokenizer, "words, punctuation marks and whitespace runs", True, DEFAULT_WORD_VOCAB),
    TokenizerKind(
        "bpe", BPETokenizer, "byte-level BPE as GPT-2's, merges learned from the corpus", True, DEFAULT_BPE_VOCAB
    ),
    TokenizerKind(
        "gpt2", GPT2Tokenizer, "GPT-2's own byte-level BPE, read from a model's vocab.json + merges.txt", False
    ),
)
KINDS_BY_NAME = {k.name: k for k in TOKENIZERS}
TRAINABLE = tuple(k.name for k in TOKENIZERS if k.trains)  # what `--tokenizer` and the Config screen offer


def tokenizer_kind(name: str) -> TokenizerKind:
    """The registry entry for `name`; TokenizerError naming the known ones otherwise."""
    try:
        return KINDS_BY_NAME[name]
    except (KeyError, TypeError):
        raise TokenizerError(f"unknown tokenizer kind {name!r}; choose one of {', '.join(KINDS_BY_NAME)}") from None


def train_tokenizer(kind: str, text: str, vocab_size: int | None = None) -> Tokenizer:
    """Train a tokenizer of `kind` on `text`; kinds without a vocabulary size (char) ignore `vocab_size`."""
    spec = tokenizer_kind(kind)
    if not spec.trains:
        raise TokenizerError(
            f"the {kind} tokenizer is not trained on a corpus: it comes with a model (open a directory that holds "
            f"its files); choose one of {', '.join(TRAINABLE)} to train one"
        )
    return spec.cls.train(text, vocab_size if spec.takes_vocab_size else None)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Rebuild a tokenizer from `to_dict` output; a damaged dict raises TokenizerError."""
    if not isinstance(d, dict):
        raise TokenizerError(f"tokenizer data must be a JSON object, got {type(d).__name__}")
    kind = d.get("kind")
    if not isinstance(kind, str) or kind not in KINDS_BY_NAME:
        known = ", ".join(KINDS_BY_NAME)
        raise TokenizerError(f"unknown tokenizer kind {kind!r} in tokenizer data; expected one of {known}")
    version = d.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise TokenizerError(
            f"tokenizer data has format version {version!r}, this tinylm reads version {FORMAT_VERSION}"
        )
    try:
        return KINDS_BY_NAME[kind].cls._from_fields(d)
    except TokenizerError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise TokenizerError(f"damaged {kind} tokenizer data ({type(exc).__name__}: {exc})") from None


def read_tokenizer_file(directory: str | os.PathLike) -> Tokenizer:
    """Read `tinylm_tokenizer.json` from `directory`."""
    path = Path(directory) / TOKENIZER_FILE
    try:
        text = read_json_text(path)
    except FileNotFoundError:
        raise TokenizerError(f"no {TOKENIZER_FILE} in {directory}; is this a tinylm checkpoint directory?") from None
    except NotReadable as exc:
        raise TokenizerError(f"{path} {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenizerError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return tokenizer_from_dict(data)


def load_tokenizer(directory: str | os.PathLike) -> Tokenizer | None:
    """The tokenizer of a model directory: tinylm_tokenizer.json, else Hugging Face's files
    (tokenizer.json, or vocab.json + merges.txt); None when it has none. TokenizerError if damaged."""
    if (Path(directory) / TOKENIZER_FILE).is_file():
        return read_tokenizer_file(directory)
    return load_hf_tokenizer(directory)
