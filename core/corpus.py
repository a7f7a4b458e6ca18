"""Training text: the built-in corpora, user files and typed text, checked with clear errors."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import CorpusError
from .files import MIB, NotReadable, read_limited, size_words

DEFAULT_CORPUS = "fables"
# Training text is held as a str and as int64 token ids (8 bytes a character for `char`): 64 MiB of text
# already takes over half a GiB of ids, and tiny shakespeare is 1 MiB.
MAX_CORPUS_BYTES = 64 * MIB
_BUILTIN_PACKAGE = "tinylm.corpus"


@dataclass(frozen=True)
class Corpus:
    """A training text and where it came from."""

    name: str  # built-in name, file name, or "typed"
    text: str
    source: str  # "builtin" | "file" | "text"
    description: str  # one line, for lists and checkpoint metadata
    path: str | None = None  # absolute path of a file corpus, so a checkpoint can find it again

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @staticmethod
    def from_text(text: str, name: str = "typed") -> Corpus:
        """A corpus from text typed or pasted by the user."""
        if not isinstance(text, str):
            raise CorpusError(f"corpus text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise CorpusError("the typed text is empty; type or paste some text to train on")
        if len(text) > MAX_CORPUS_BYTES:
            raise CorpusError(
                f"the typed text has {len(text):,} characters, more than the limit of {size_words(MAX_CORPUS_BYTES)}; "
                "use a shorter text"
            )
        return Corpus(name=name, text=text, source="text", description=f"typed text, {len(text):,} characters")


def _builtin_files() -> dict[str, resources.abc.Traversable]:
    root = resources.files(_BUILTIN_PACKAGE)
    return {p.name[: -len(".txt")]: p for p in root.iterdir() if p.name.endswith(".txt") and p.is_file()}


def _split_description(raw: str) -> tuple[str, str]:
    """A built-in file's first line is `# description`; the body after it is the training text."""
    first, sep, body = raw.partition("\n")
    if first.startswith("# "):
        return first[2:].strip(), body
    return "", raw


def builtin_corpora() -> list[tuple[str, str]]:
    """(name, description) of every built-in corpus, the default first, then by name."""
    out = []
    for name, path in _builtin_files().items():
        first_line = path.read_text(encoding="utf-8").partition("\n")[0]
        out.append((name, first_line[2:].strip() if first_line.startswith("# ") else ""))
    return sorted(out, key=lambda item: (item[0] != DEFAULT_CORPUS, item[0]))


def load_corpus(name_or_path: str | os.PathLike) -> Corpus:
    """Load a built-in corpus by name, or a UTF-8 text file by path.

    A bare string that is a built-in name means the built-in; write `./fables` for a file of that name.
    """
    builtins = _builtin_files()
    if isinstance(name_or_path, str) and name_or_path in builtins:
        description, text = _split_description(builtins[name_or_path].read_text(encoding="utf-8"))
        return Corpus(name=name_or_path, text=text, source="builtin", description=description)
    path = Path(name_or_path)
    looks_like_name = isinstance(name_or_path, str) and os.sep not in name_or_path and "/" not in name_or_path
    if looks_like_name and not path.suffix and not path.exists():
        known = ", ".join(sorted(builtins))
        raise CorpusError(
            f"unknown built-in corpus {name_or_path!r}; known corpora: {known} (or give the path to a UTF-8 text file)"
        )
    return _load_file(path)


def _load_file(path: Path) -> Corpus:
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}; check the path or use a built-in corpus name")
    if path.is_dir():
        raise CorpusError(f"{path} is a directory, not a file; give the path to a UTF-8 text file")
    try:
        data = read_limited(path, MAX_CORPUS_BYTES)
    except FileNotFoundError:
        raise CorpusError(f"corpus file not found: {path}; check the path or use a built-in corpus name") from None
    except NotReadable as exc:
        raise CorpusError(f"corpus {path} {exc}; give the path to a UTF-8 text file") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise CorpusError(f"{path} looks like a binary file (NUL byte at offset {nul}); use a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{path} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8 text"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is an editor artefact, not training text
    if not text.strip():
        raise CorpusError(f"corpus file {path} is empty (or only whitespace); use a file that contains text")
    description = f"file {path.name}, {len(text):,} characters"
    return Corpus(name=path.name, text=text, source="file", description=description, path=str(path.resolve()))


def check_corpus_length(n_tokens: int, block_size: int) -> None:
    """Refuse a corpus shorter than one training example (block_size inputs plus the next target)."""
    if n_tokens < block_size + 1:
        raise CorpusError(
            f"corpus has {n_tokens} tokens, fewer than one context window of {block_size + 1} tokens; "
            "use a longer text or a smaller context length"
        )


def split_sizes(n_tokens: int, val_fraction: float) -> tuple[int, int]:
    """Tokens in the training and validation parts of a corpus of n_tokens (as split_ids splits it)."""
    n_train = int(n_tokens * (1.0 - val_fraction))
    return n_train, n_tokens - n_train


def check_split_lengths(n_tokens: int, window: int, val_fraction: float) -> None:
    """Refuse a corpus whose training or validation part is shorter than one window plus its target,
    saying how many tokens the whole corpus needs."""
    for part, size in zip(("training", "validation"), split_sizes(n_tokens, val_fraction)):
        if size < window + 1:
            # below these neither part can hold a window (the validation part is at most n * val_fraction + 1)
            need = max(window + 1, int((window - 1) / val_fraction) - 1, int((window + 1) / (1 - val_fraction)) - 1)
            while min(split_sizes(need, val_fraction)) < window + 1:
                need += 1
            share = val_fraction if part == "validation" else 1 - val_fraction
            raise CorpusError(
                f"the {part} part of the corpus ({100 * share:.0f}%) has {size} tokens, fewer than one context "
                f"window of {window + 1}; the corpus needs at least {need:,} tokens for context {window}: "
                "use a longer text or a smaller context length"
            )


def split_ids(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """First (1 - val_fraction) of the ids for training, the rest for validation (nanoGPT's split)."""
    if not 0.0 <= val_fraction < 1.0:
        raise CorpusError(f"validation fraction must be in [0, 1), got {val_fraction}; try 0.1")
    ids = np.asarray(ids)
    n_train, _ = split_sizes(len(ids), val_fraction)
    return ids[:n_train], ids[n_train:]
