"""tinylm's trained byte-level BPE: GPT-2's scheme with merges learned from your corpus."""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from ..errors import TokenizerError
from . import hf_files
from .base import require_text
from .bytelevel import ByteLevelBPE, Pair, chunk_bytes, merge_once, token_string
from .pretokenize import GPT2_PATTERN, compile_pattern

BPE_PATTERN = GPT2_PATTERN  # new tokenizers cut text into chunks exactly as GPT-2 does
# What tinylm used before: GPT-2's pattern approximated with Python `re` classes ([^\W\d_] for \p{L});
# tokenizers saved with it keep it, so their ids do not change.
LEGACY_BPE_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
DEFAULT_BPE_VOCAB = 512


def _compile(pattern: str):
    """The legacy pattern is Python `re`; any other is in tokenizer.json's syntax."""
    return re.compile(pattern) if pattern == LEGACY_BPE_PATTERN else compile_pattern(pattern)


def _onig_regex(pattern: str) -> str:
    """The chunking pattern in tokenizer.json's syntax (Oniguruma, which lacks Python's classes)."""
    if pattern != LEGACY_BPE_PATTERN:
        return pattern
    c = hf_files.onig_class
    punctuation = f"(?:{c('P')}|_)"
    return f"'s|'t|'re|'ve|'m|'ll|'d| ?{c('L')}+| ?{c('d')}+| ?{punctuation}+|{c('s')}+(?!{c('s', True)})|{c('s')}+"


def learn_merges(chunk_counts: dict[bytes, int], n_merges: int) -> list[Pair]:
    """Learn up to `n_merges` merges from chunk frequencies, updating pair counts incrementally.

    A pair whose bytes are already a token (`ab`+`c` after `a`+`bc`) is passed over: every token keeps
    distinct bytes, so Hugging Face's vocabulary (keyed by bytes) can hold this one.
    """
    words = [list(chunk) for chunk in chunk_counts]
    vocab = [bytes([b]) for b in range(256)]
    known = set(vocab)
    freqs = list(chunk_counts.values())
    pair_counts: Counter[Pair] = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)  # pair -> indices of words containing it
    for w, (ids, f) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            pair_counts[pair] += f
            where[pair].add(w)

    merges: list[Pair] = []
    passed: set[Pair] = set()
    while len(merges) < n_merges:
        # highest count, then lowest ids: deterministic whatever the dict order
        best = max(
            (p for p in pair_counts if p not in passed), key=lambda p: (pair_counts[p], -p[0], -p[1]), default=None
        )
        if best is None:
            break  # every chunk is a single token: nothing left to merge
        token = vocab[best[0]] + vocab[best[1]]
        if token in known:
            passed.add(best)
            continue
        new_id = 256 + len(merges)
        merges.append(best)
        vocab.append(token)
        known.add(token)
        for w in list(where[best]):
            old = words[w]
            new = merge_once(old, best, new_id)
            words[w] = new
            f = freqs[w]
            old_pairs = Counter(zip(old, old[1:]))
            new_pairs = Counter(zip(new, new[1:]))
            for pair, c in old_pairs.items():
                left = pair_counts[pair] - c * f
                if left:
                    pair_counts[pair] = left
                else:
                    del pair_counts[pair]
                if pair not in new_pairs:
                    where[pair].discard(w)
            for pair, c in new_pairs.items():
                pair_counts[pair] += c * f
                where[pair].add(w)
        del where[best]
    return merges


class BPETokenizer(ByteLevelBPE):
    """Byte-level BPE: ids 0..255 are the bytes, id 256 + k is merge k (`merges[k]`, a pair of ids).

    Text is cut into chunks by GPT-2's pattern; inside each chunk merges are applied lowest rank
    first. Every byte is a token, so any text round-trips; decode uses UTF-8 with errors="replace".
    """

    kind = "bpe"

    def __init__(self, merges: Iterable[Iterable[int]], pattern: str = BPE_PATTERN):
        self.merges: list[Pair] = []
        vocab: list[bytes] = [bytes([b]) for b in range(256)]
        for k, pair in enumerate(merges):
            a, b = (int(x) for x in pair)
            if not (0 <= a < 256 + k and 0 <= b < 256 + k):
                raise TokenizerError(f"BPE merge {k} refers to token ids {a}, {b} that do not exist yet")
            self.merges.append((a, b))
            vocab.append(vocab[a] + vocab[b])
        table = {pair: (k, 256 + k) for k, pair in enumerate(self.merges)}
        if len(table) != len(self.merges):
            raise TokenizerError("BPE merges contain the same pair twice")
        if not isinstance(pattern, str):
            raise TokenizerError("BPE pre-tokenization pattern must be a string")
        self.pattern = pattern
        self._setup(vocab, list(range(256)), table, _compile(pattern))

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> BPETokenizer:
        """Learn merges on `text` until `vocab_size` (stops early if no pairs are left)."""
        require_text(text)
        if not text:
            raise TokenizerError("cannot train a tokenizer on empty text; use a non-empty corpus")
        vocab_size = DEFAULT_BPE_VOCAB if vocab_size is None else int(vocab_size)
        if vocab_size < 256:
            raise TokenizerError(f"BPE vocabulary size must be at least 256 (one token per byte), got {vocab_size}")
        chunk_counts = Counter(chunk_bytes(c) for c in compile_pattern(BPE_PATTERN).findall(text))
        return cls(learn_merges(chunk_counts, vocab_size - 256))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "version": 1, "pattern": self.pattern, "merges": [list(p) for p in self.merges]}

    @classmethod
    def _from_fields(cls, d: dict) -> BPETokenizer:
        # a tokenizer saved before the pattern was stored used the legacy one
        merges, pattern = d["merges"], d.get("pattern", LEGACY_BPE_PATTERN)
        if not isinstance(merges, list) or not all(isinstance(p, list) and len(p) == 2 for p in merges):
            raise TokenizerError("damaged bpe tokenizer data: 'merges' must be a list of [id, id] pairs")
        if not all(isinstance(x, int) and not isinstance(x, bool) for p in merges for x in p):
            raise TokenizerError("damaged bpe tokenizer data: merge ids must be integers")
        if not isinstance(pattern, str):
            raise TokenizerError("damaged bpe tokenizer data: 'pattern' must be a string")
        return cls(merges, pattern)

    def save(self, directory: str | os.PathLike) -> Path:
        """tinylm_tokenizer.json, plus GPT-2's vocab.json + merges.txt and tokenizer.json for Hugging Face."""
        path = super().save(directory)
        spelled = [token_string(self.token_bytes(i)) for i in range(self.vocab_size)]
        vocab: dict[str, int] = {}
        for i, s in enumerate(spelled):
            vocab.setdefault(s, i)  # two ids with the same bytes (older tokenizers only): HF keeps the first
        merges = [(spelled[a], spelled[b]) for a, b in self.merges]
        hf_files.write_bytelevel_bpe(directory, vocab, merges, {}, _onig_regex(self.pattern))
        return path
