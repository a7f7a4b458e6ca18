"""Hugging Face's tokenizer files: reading a byte-level BPE from them, writing any tinylm tokenizer into them.

tokenizer.json is the `tokenizers` library's whole pipeline (pre-tokenizer, model, decoder), so
`AutoTokenizer.from_pretrained(dir)` encodes as tinylm does; byte-level BPE also gets GPT-2's
vocab.json + merges.txt. Regular expressions in tokenizer.json are Oniguruma's, whose `\\w`, `\\d` and
`\\s` differ from Python's: the classes tinylm's own patterns use are spelled out code point by code point.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import TokenizerError
from ..files import NotReadable, read_json_text
from .pretokenize import GPT2_PATTERN

TOKENIZER_JSON = "tokenizer.json"
VOCAB_JSON = "vocab.json"
MERGES_TXT = "merges.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
MERGES_HEADER = "#version: 0.2"


# ----- reading -----------------------------------------------------------------------------------


def read_json(path: Path):
    try:
        return json.loads(read_json_text(path))
    except FileNotFoundError:
        raise TokenizerError(f"{path} does not exist") from None
    except NotReadable as exc:
        raise TokenizerError(f"{path} {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TokenizerError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _parse_merges(lines, where: Path) -> list[tuple[str, str]]:
    merges = []
    for k, line in enumerate(lines):
        if isinstance(line, list) and len(line) == 2 and all(isinstance(x, str) for x in line):
            merges.append((line[0], line[1]))
            continue
        parts = line.split(" ") if isinstance(line, str) else []
        if len(parts) != 2 or not all(parts):
            raise TokenizerError(f"{where}: merge {k + 1} is {line!r}, not two tokens separated by one space")
        merges.append((parts[0], parts[1]))
    return merges


def read_merges(path: Path) -> list[tuple[str, str]]:
    """merges.txt: an optional `#version` line, then one `left right` pair per line, by rank."""
    try:
        text = read_json_text(path)  # a text file, under the same size limit
    except NotReadable as exc:
        raise TokenizerError(f"{path} {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"cannot read {path}: {exc}") from None
    lines = [line for line in text.split("\n") if line and not line.startswith("#version")]
    return _parse_merges(lines, path)


def read_bytelevel_bpe(path: Path) -> dict:
    """GPT2Tokenizer's arguments from a tokenizer.json, refusing what it cannot reproduce exactly."""
    data = read_json(path)

    def refuse(what: str):
        return TokenizerError(f"{path}: {what}; tinylm reads byte-level BPE tokenizers such as GPT-2's")

    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise refuse("no 'model' object")
    model = data["model"]
    if model.get("type", "BPE") != "BPE" or "merges" not in model:
        raise refuse(f"the model is {model.get('type')!r}, not BPE")
    if model.get("dropout") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise refuse("the BPE model uses dropout or subword prefixes/suffixes")
    if model.get("ignore_merges") or model.get("byte_fallback"):
        raise refuse("the BPE model ignores merges or falls back to bytes")
    if data.get("normalizer"):
        raise refuse(f"it has a {data['normalizer'].get('type')!r} normalizer")
    pattern = _pre_tokenizer_pattern(data.get("pre_tokenizer"))
    if pattern is None:
        raise refuse("its pre-tokenizer is not byte-level (ByteLevel, without a prefix space)")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not isinstance(model["merges"], list):
        raise refuse("'vocab' must be an object and 'merges' a list")
    specials = {}
    for t in data.get("added_tokens") or []:
        if not isinstance(t, dict) or not isinstance(t.get("content"), str) or not isinstance(t.get("id"), int):
            raise TokenizerError(f"{path}: damaged entry in added_tokens: {t!r}")
        specials[t["content"]] = t["id"]
    # none listed: <|endoftext|> is still special when the vocabulary has it, as transformers makes it
    return dict(vocab=vocab, merges=_parse_merges(model["merges"], path), specials=specials or None, pattern=pattern)


def _pre_tokenizer_pattern(pre) -> str | None:
    """The chunking pattern of a byte-level pre-tokenizer, or None when it is something else."""
    if not isinstance(pre, dict):
        return None
    if pre.get("type") == "ByteLevel" and not pre.get("add_prefix_space") and pre.get("use_regex", True):
        return GPT2_PATTERN
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if isinstance(steps, list) and len(steps) == 2:
        split, byte_level = steps
        if (
            isinstance(split, dict)
            and split.get("type") == "Split"
            and split.get("behavior") == "Isolated"
            and not split.get("invert")
            and isinstance(split.get("pattern"), dict)
            and isinstance(split["pattern"].get("Regex"), str)
            and isinstance(byte_level, dict)
            and byte_level.get("type") == "ByteLevel"
            and not byte_level.get("add_prefix_space")
            and not byte_level.get("use_regex", True)
        ):
            return split["pattern"]["Regex"]
    return None


# ----- writing -----------------------------------------------------------------------------------


@functools.cache
def onig_class(name: str, negate: bool = False) -> str:
    """A class of Python's `re` for Oniguruma: `w` \\w, `d` \\d, `s` \\s, `L` [^\\W\\d_], `P` [^\\w\\s]."""
    preds: dict[str, Callable[[str], bool]] = {
        "w": lambda c: c.isalnum() or c == "_",
        "d": str.isdecimal,
        "s": str.isspace,
        "L": lambda c: (c.isalpha() or c.isdigit() or c.isnumeric()) and not c.isdecimal(),
        "P": lambda c: not (c.isalnum() or c == "_" or c.isspace()),
    }
    cps = [cp for cp in range(sys.maxunicode + 1) if preds[name](chr(cp))]
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return f"[{'^' if negate else ''}{''.join(parts)}]"


def _split(regex: str) -> dict:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def _document(model: dict, pre_tokenizer: dict, decoder: dict, added: list[dict], post=None) -> dict:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post,
        "decoder": decoder,
        "model": model,
    }


def bytelevel_bpe_json(vocab: dict[str, int], merges, specials: dict[str, int], regex: str = GPT2_PATTERN) -> dict:
    """tokenizer.json of a byte-level BPE, laid out as GPT-2's own; `regex` (Oniguruma) cuts the chunks."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    if regex == GPT2_PATTERN:
        pre = byte_level
    else:
        pre = {"type": "Sequence", "pretokenizers": [_split(regex), {**byte_level, "use_regex": False}]}
    added = [
        {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False}
        | {"special": True}
        for s, i in sorted(specials.items(), key=lambda kv: kv[1])
    ]
    model = {
        "type": "BPE",
        "dropout": None,
        "unk_token": None,
        "continuing_subword_prefix": "",
        "end_of_word_suffix": "",
        "fuse_unk": False,
        "byte_fallback": False,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": [f"{a} {b}" for a, b in merges],
    }
    post = {**byte_level, "trim_offsets": False}
    return _document(model, pre, {**byte_level, "add_prefix_space": True}, added, post)


def wordlevel_json(vocab: dict[str, int], unk: str, regex: str) -> dict:
    """tokenizer.json of a tokenizer that looks pieces up in a table: cut by `regex`, joined back as is."""
    model = {"type": "WordLevel", "vocab": vocab, "unk_token": unk}
    return _document(model, _split(regex), {"type": "Fuse"}, [])


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # never a half-written file under the real name


def write_tokenizer_json(directory: str | os.PathLike, document: dict, config: dict | None = None) -> Path:
    """tokenizer.json, and tokenizer_config.json telling transformers to take the pipeline as written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / TOKENIZER_JSON, json.dumps(document, ensure_ascii=False))
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False, **(config or {})}
    _write(directory / TOKENIZER_CONFIG, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    return directory / TOKENIZER_JSON


def write_bytelevel_bpe(directory, vocab: dict[str, int], merges, specials: dict[str, int], regex: str) -> Path:
    """vocab.json + merges.txt (GPT-2's files) and tokenizer.json; returns the tokenizer.json path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / VOCAB_JSON, json.dumps(vocab, ensure_ascii=False))
    _write(directory / MERGES_TXT, "\n".join([MERGES_HEADER, *(f"{a} {b}" for a, b in merges)]) + "\n")
    config = {}
    if "<|endoftext|>" in specials:
        config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    return write_tokenizer_json(directory, bytelevel_bpe_json(vocab, merges, specials, regex), config)
