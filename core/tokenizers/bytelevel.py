"""Byte-level BPE, the part GPT-2's tokenizer and tinylm's trained one share: text -> chunks -> bytes ->
merges by rank -> ids, and back by joining the tokens' bytes.

Each tokenizer supplies the id of every single byte, its merges as (left id, right id) -> (rank,
merged id), and the bytes of every token. `merge_chunk_slow` is GPT-2's algorithm as published (merge
the lowest-ranked adjacent pair everywhere, repeat); `merge_chunk` gives the same ids with a heap, so a
long chunk (a page of Chinese has no spaces) costs n log n instead of n^2.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ..errors import TokenizerError
from .base import Tokenizer, require_text

Pair = tuple[int, int]
Merges = dict[Pair, tuple[int, int]]  # (left id, right id) -> (rank, merged id)
CACHE_LIMIT = 200_000  # chunks remembered by encode; cleared when full so memory stays bounded
SHORT_CHUNK = 32  # bytes; below this the plain loop is faster than the heap


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte, as its vocab.json and merges.txt write tokens.

    Printable Latin-1 bytes stand for themselves; the other 68 (controls, space, ...) are given the
    characters from U+0100 on, in byte order. So a space is `Ġ` and a newline `Ċ`.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


@functools.cache
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def token_string(raw: bytes) -> str:
    """A token's bytes as GPT-2's files spell it (`b" the"` -> `"Ġthe"`)."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in raw)


def token_raw(spelled: str) -> bytes:
    """The bytes of a token spelled as in GPT-2's files; TokenizerError for a character outside the table."""
    table = unicode_to_bytes()
    try:
        return bytes(table[c] for c in spelled)
    except KeyError as exc:
        raise TokenizerError(f"token {spelled!r} holds {exc.args[0]!r}, which is not a byte-level character") from None


def bytes_label(raw: bytes) -> str:
    """Bytes as text where they form whole UTF-8 characters, and each byte that does not (part of a
    split character) as \\xHH: b" \\xe2\\x80" is ' \\xe2\\x80', while whitespace and every other
    character stay themselves for the display to show."""
    return raw.decode("utf-8", errors="backslashreplace")


def merge_once(ids: list[int], pair: Pair, new_id: int) -> list[int]:
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


class MergeStep(NamedTuple):
    """One merge applied to a chunk: its rank, the pair merged, the merged id, the ids after it."""

    rank: int
    pair: Pair
    merged: int
    ids: list[int]


def merge_steps(ids: list[int], merges: Merges) -> list[MergeStep]:
    """GPT-2's algorithm step by step: merge the lowest-ranked adjacent pair everywhere, until none applies."""
    steps: list[MergeStep] = []
    while len(ids) > 1:
        ranked = [(merges[p][0], p) for p in zip(ids, ids[1:]) if p in merges]
        if not ranked:
            break
        rank, pair = min(ranked)
        merged = merges[pair][1]
        ids = merge_once(ids, pair, merged)
        steps.append(MergeStep(rank, pair, merged, ids))
    return steps


def merge_chunk_slow(ids: list[int], merges: Merges) -> list[int]:
    """The ids of one chunk after all merges (the obvious version: the oracle of `merge_chunk`)."""
    steps = merge_steps(ids, merges)
    return steps[-1].ids if steps else list(ids)


def _merge_short(ids: list[int], merges: Merges) -> list[int]:
    far = (1 << 62, 0)
    while len(ids) > 1:
        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, far)[0])
        found = merges.get(pair)
        if found is None:
            break
        ids = merge_once(ids, pair, found[1])
    return ids


def _merge_long(ids: list[int], merges: Merges) -> list[int]:
    """Same result as the loop: a heap of (rank, position) over a linked list of symbols.

    Equal ranks pop leftmost first, which is the loop's left-to-right sweep; a merged symbol only
    takes part in merges of higher rank, so merging one occurrence at a time changes nothing.
    """
    n = len(ids)
    sym = list(ids)
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    alive = [True] * n
    heap = [
        (merges[(sym[i], sym[i + 1])][0], i, sym[i], sym[i + 1]) for i in range(n - 1) if (sym[i], sym[i + 1]) in merges
    ]
    heapq.heapify(heap)

    def push(i: int) -> None:
        j = nxt[i]
        if i >= 0 and j < n:
            found = merges.get((sym[i], sym[j]))
            if found is not None:
                heapq.heappush(heap, (found[0], i, sym[i], sym[j]))

    while heap:
        rank, i, a, b = heapq.heappop(heap)
        j = nxt[i] if alive[i] else n
        if j >= n or sym[i] != a or sym[j] != b:
            continue  # stale: one side has been merged since this pair was pushed
        sym[i] = merges[(a, b)][1]
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[j] < n:
            prv[nxt[j]] = i
        push(prv[i])
        push(i)
    return [sym[i] for i in range(n) if alive[i]]


def merge_chunk(ids: list[int], merges: Merges) -> list[int]:
    """The ids of one chunk after all merges."""
    return _merge_short(ids, merges) if len(ids) < SHORT_CHUNK else _merge_long(ids, merges)


def chunk_bytes(chunk: str) -> bytes:
    """UTF-8 bytes of a chunk; a lone surrogate is a TokenizerError, not a UnicodeEncodeError."""
    try:
        return chunk.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TokenizerError(
            f"text contains a lone surrogate {chunk[exc.start]!r}, which is not valid Unicode; clean the text first"
        ) from None


class ByteLevelBPE(Tokenizer):
    """What every byte-level BPE tokenizer shares: encode, decode, token bytes and the merge steps.

    Subclasses call `_setup` with the bytes of every token (by id), the id of each single byte, the
    merges and the pre-tokenizer; special tokens (such as `<|endoftext|>`) are cut out of the text
    before pre-tokenization and encode to their own id, as in Hugging Face's tokenizers.
    """

    byte_level = True

    def _setup(
        self,
        vocab: list[bytes],
        byte_ids: list[int],
        merges: Merges,
        pattern: re.Pattern,
        specials: dict[str, int] | None = None,
    ) -> None:
        self._vocab = vocab
        self._byte_ids = byte_ids
        self._merges = merges
        self._pattern = pattern
        self.specials = dict(specials or {})
        alternatives = "|".join(re.escape(s) for s in sorted(self.specials, key=len, reverse=True))
        self._special_split = re.compile(f"({alternatives})") if self.specials else None
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def chunks(self, text: str) -> list[str]:
        """The pre-tokenizer's chunks of `text` (special tokens are chunks of their own)."""
        require_text(text)
        if self._special_split is None:
            return self._pattern.findall(text)
        out: list[str] = []
        for k, part in enumerate(self._special_split.split(text)):
            out.extend([part] if k % 2 else self._pattern.findall(part))
        return out

    def chunk_ids(self, chunk: str) -> list[int]:
        """The ids of one chunk before any merge: one per UTF-8 byte."""
        byte_ids = self._byte_ids
        return [byte_ids[b] for b in chunk_bytes(chunk)]

    def encode(self, text: str) -> np.ndarray:
        require_text(text)
        cache, merges, specials = self._cache, self._merges, self.specials
        out: list[int] = []
        for chunk in self.chunks(text):
            ids = cache.get(chunk)
            if ids is None:
                if chunk in specials:
                    ids = [specials[chunk]]
                else:
                    ids = merge_chunk(self.chunk_ids(chunk), merges)
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = ids
            out.extend(ids)
        return np.array(out, dtype=np.int64)

    def encode_slow(self, text: str) -> list[int]:
        """The ids by the obvious route (oracle of `encode`): chunks, bytes, GPT-2's merge loop."""
        out: list[int] = []
        for chunk in self.chunks(text):
            if chunk in self.specials:
                out.append(self.specials[chunk])
            else:
                out.extend(merge_chunk_slow(self.chunk_ids(chunk), self._merges))
        return out

    def merge_steps(self, chunk: str) -> list[MergeStep]:
        """How one chunk (a word with its leading space, say) becomes tokens: every merge, in order."""
        return merge_steps(self.chunk_ids(chunk), self._merges)

    def decode(self, ids: Iterable[int]) -> str:
        vocab = self._vocab
        return b"".join(vocab[i] for i in self._check_ids(ids)).decode("utf-8", errors="replace")

    def token_bytes(self, id: int) -> bytes:
        return self._vocab[self._check_id(id)]

    def token_text(self, id: int) -> str:
        return self.token_bytes(id).decode("utf-8", errors="replace")

    def token_label(self, id: int) -> str:
        return bytes_label(self.token_bytes(id))

    def text_label(self, ids: Iterable[int]) -> str:
        return bytes_label(b"".join(self._vocab[i] for i in self._check_ids(ids)))
