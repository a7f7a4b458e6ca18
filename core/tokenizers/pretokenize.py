"""GPT-2's pre-tokenizer: the text cut into words, numbers, punctuation runs and whitespace runs.

GPT-2 writes it with Unicode properties (`\\p{L}` letters, `\\p{N}` numbers, `\\s` White_Space), which
Python's `re` lacks. `compile_pattern` turns such a pattern into plain `re` by spelling each property
out as the ranges of code points `unicodedata` puts in it; `split_gpt2_slow` is the same rule written
as an obvious character-by-character scanner, kept as the oracle of the fast one.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

from ..errors import TokenizerError

# GPT-2's pattern, as its tokenizer.json and OpenAI's encoder.py write it.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Unicode's White_Space property: what `\s` means in GPT-2's regex engines. Python's `\s` adds the
# separators U+001C..U+001F, which GPT-2 counts as punctuation.
WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")  # in the pattern's order


def _class_body(chars) -> str:
    """The inside of a `re` character class holding exactly these code points, as ranges."""
    cps = sorted(ord(c) for c in chars)
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = chr(cps[i]), chr(cps[j])
        parts.append(re.escape(lo) if i == j else f"{re.escape(lo)}-{re.escape(hi)}")
        i = j + 1
    return "".join(parts)


@functools.cache
def _property_body(name: str) -> str:
    """Class body of a general category (`L`, `N`, or a two-letter one such as `Nd`); built once (0.2 s)."""
    category = unicodedata.category
    n = len(name)
    return _class_body(c for c in map(chr, range(sys.maxunicode + 1)) if category(c)[:n] == name)


_TOKEN = re.compile(r"\\p\{(\w+)\}|\\x\{([0-9A-Fa-f]+)\}|\\[sS]|\\.|\[\^?|\]|.", re.S)


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern:
    """A pattern in tokenizer.json syntax (`\\p{..}`, `\\x{..}`, `\\s` = White_Space) compiled for Python's `re`."""
    out: list[str] = []
    in_class = False
    space = _class_body(WHITESPACE)
    for m in _TOKEN.finditer(pattern):
        tok = m.group(0)
        if m.group(1):
            body = _property_body(m.group(1))
            out.append(body if in_class else f"[{body}]")
        elif m.group(2):
            out.append(re.escape(chr(int(m.group(2), 16))))  # Oniguruma's \x{HHHH}
        elif tok == r"\s":
            out.append(space if in_class else f"[{space}]")
        elif tok == r"\S":
            if in_class:
                raise TokenizerError(r"pre-tokenizer pattern uses \S inside a character class; tinylm cannot read it")
            out.append(f"[^{space}]")
        else:
            if tok.startswith("[") and not in_class:
                in_class = True
            elif tok == "]" and in_class and not out[-1].endswith("["):
                in_class = False
            out.append(tok)
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise TokenizerError(f"pre-tokenizer pattern {pattern!r} does not compile: {exc}") from None


def split_gpt2(text: str) -> list[str]:
    """GPT-2's pre-tokenization of `text` (the chunks join back to it exactly)."""
    return compile_pattern(GPT2_PATTERN).findall(text)


# ----- the oracle: the same rule, one character at a time ----------------------------------------


def _kind(ch: str) -> str:
    """'s' whitespace, 'L' letter, 'N' number, 'P' anything else (punctuation, symbols, marks, controls)."""
    if ch in WHITESPACE:
        return "s"
    major = unicodedata.category(ch)[0]
    return major if major in "LN" else "P"


def split_gpt2_slow(text: str) -> list[str]:
    """GPT-2's pre-tokenization by hand: try the pattern's alternatives in order at each position."""
    chunks: list[str] = []
    i, n = 0, len(text)

    def run_end(start: int, kind: str) -> int:
        j = start
        while j < n and _kind(text[j]) == kind:
            j += 1
        return j

    while i < n:
        contraction = next((c for c in CONTRACTIONS if text.startswith(c, i)), None)
        if contraction:
            end = i + len(contraction)
        else:
            # ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one kind
            start = i + 1 if text[i] == " " and i + 1 < n and _kind(text[i + 1]) != "s" else i
            kind = _kind(text[start])
            if kind != "s":
                end = run_end(start, kind)
            else:
                # `\s+(?!\S)`: the whitespace run, less its last character when a non-space follows
                # (that one joins the next word as its leading space); `\s+` if only one is left.
                end = run_end(i, "s")
                if end < n and end - i > 1:
                    end -= 1
        chunks.append(text[i:end])
        i = end
    return chunks
