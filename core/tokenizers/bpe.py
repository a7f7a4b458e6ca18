"""Byte-level BPE like GPT-2's: 256 byte tokens, then learned merges applied by rank."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

from ..errors import TokenizerError
from .base import Tokenizer, require_text

# GPT-2's pre-tokenization with Python `re` classes ([^\W\d_] stands in for \p{L}). `_` is \w but
# neither letter nor digit, so it goes with punctuation; every character is matched by some branch,
# hence the chunks always concatenate back to the text.
BPE_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
DEFAULT_BPE_VOCAB = 512
_CACHE_LIMIT = 200_000  # chunks remembered by encode; cleared when full so memory stays bounded

Pair = tuple[int, int]


def _merge_pair(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair` (left to right) with `new_id`."""
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def learn_merges(chunk_counts: dict[bytes, int], n_merges: int) -> list[Pair]:
    """Learn up to `n_merges` merges from chunk frequencies, updating pair counts incrementally."""
    words = [list(chunk) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())
    pair_counts: Counter[Pair] = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)  # pair -> indices of words containing it
    for w, (ids, f) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            pair_counts[pair] += f
            where[pair].add(w)

    merges: list[Pair] = []
    for step in range(n_merges):
        if not pair_counts:
            break  # every chunk is a single token: nothing left to merge
        # highest count, then lowest ids: deterministic whatever the dict order
        best = max(pair_counts, key=lambda p: (pair_counts[p], -p[0], -p[1]))
        new_id = 256 + step
        merges.append(best)
        for w in list(where[best]):
            old = words[w]
            new = _merge_pair(old, best, new_id)
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


class BPETokenizer(Tokenizer):
    """Byte-level BPE: ids 0..255 are the bytes, id 256 + k is merge k (`merges[k]`, a pair of ids).

    Text is split into chunks by `BPE_PATTERN`; inside each chunk merges are applied lowest rank
    first. Every byte is a token, so any text round-trips; decode uses UTF-8 with errors="replace".
    """

    kind = "bpe"

    def __init__(self, merges: Iterable[Iterable[int]], pattern: str = BPE_PATTERN):
        self.merges: list[Pair] = []
        self._vocab: list[bytes] = [bytes([b]) for b in range(256)]
        for k, pair in enumerate(merges):
            a, b = (int(x) for x in pair)
            if not (0 <= a < 256 + k and 0 <= b < 256 + k):
                raise TokenizerError(f"BPE merge {k} refers to token ids {a}, {b} that do not exist yet")
            self.merges.append((a, b))
            self._vocab.append(self._vocab[a] + self._vocab[b])
        self._ranks: dict[Pair, int] = {pair: k for k, pair in enumerate(self.merges)}
        if len(self._ranks) != len(self.merges):
            raise TokenizerError("BPE merges contain the same pair twice")
        try:
            self._pattern = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise TokenizerError(f"BPE pre-tokenization pattern does not compile: {exc}") from None
        self.pattern = pattern
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> BPETokenizer:
        """Learn merges on `text` until `vocab_size` (stops early if no pairs are left)."""
        require_text(text)
        if not text:
            raise TokenizerError("cannot train a tokenizer on empty text; use a non-empty corpus")
        vocab_size = DEFAULT_BPE_VOCAB if vocab_size is None else int(vocab_size)
        if vocab_size < 256:
            raise TokenizerError(f"BPE vocabulary size must be at least 256 (one token per byte), got {vocab_size}")
        chunk_counts = Counter(_to_bytes(c) for c in re.findall(BPE_PATTERN, text))
        return cls(learn_merges(chunk_counts, vocab_size - 256))

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = list(_to_bytes(chunk))
        ranks = self._ranks
        while len(ids) > 1:
            # the adjacent pair merged earliest in training goes first, exactly as in GPT-2
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, 1 << 62))
            rank = ranks.get(pair)
            if rank is None:
                break
            ids = _merge_pair(ids, pair, 256 + rank)
        return ids

    def encode(self, text: str) -> np.ndarray:
        require_text(text)
        cache = self._cache
        out: list[int] = []
        for chunk in self._pattern.findall(text):
            ids = cache.get(chunk)
            if ids is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                ids = cache[chunk] = self._encode_chunk(chunk)
            out.extend(ids)
        return np.array(out, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        vocab = self._vocab
        return b"".join(vocab[i] for i in self._check_ids(ids)).decode("utf-8", errors="replace")

    def token_bytes(self, id: int) -> bytes:
        return self._vocab[self._check_id(id)]

    def token_text(self, id: int) -> str:
        return self.token_bytes(id).decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "version": 1, "pattern": self.pattern, "merges": [list(p) for p in self.merges]}

    @classmethod
    def _from_fields(cls, d: dict) -> BPETokenizer:
        merges, pattern = d["merges"], d.get("pattern", BPE_PATTERN)
        if not isinstance(merges, list) or not all(isinstance(p, list) and len(p) == 2 for p in merges):
            raise TokenizerError("damaged bpe tokenizer data: 'merges' must be a list of [id, id] pairs")
        if not all(isinstance(x, int) and not isinstance(x, bool) for p in merges for x in p):
            raise TokenizerError("damaged bpe tokenizer data: merge ids must be integers")
        if not isinstance(pattern, str):
            raise TokenizerError("damaged bpe tokenizer data: 'pattern' must be a string")
        return cls(merges, pattern)


def _to_bytes(chunk: str) -> bytes:
    try:
        return chunk.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TokenizerError(
            f"text contains a lone surrogate {chunk[exc.start]!r}, which is not valid Unicode; clean the text first"
        ) from None
