"""GPT-2's tokenizer, read from the files of a Hugging Face directory: vocab.json + merges.txt, or
tokenizer.json. Any byte-level BPE in those files works the same way (a GPT-2 fine-tune, distilgpt2)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TokenizerError
from . import hf_files
from .bytelevel import ByteLevelBPE, Merges, token_raw, token_string
from .pretokenize import GPT2_PATTERN, compile_pattern

END_OF_TEXT = "<|endoftext|>"


class GPT2Tokenizer(ByteLevelBPE):
    """Byte-level BPE with an explicit vocabulary: `vocab` maps each token as GPT-2's files spell it
    (`Ġthe`) to its id, `merges` lists (left, right) spellings by rank, `specials` maps special tokens
    such as `<|endoftext|>` to their ids. Encodes any text exactly as Hugging Face's GPT-2 tokenizer."""

    kind = "gpt2"

    def __init__(
        self,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        specials: dict[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
    ):
        if specials is None:
            specials = {END_OF_TEXT: vocab[END_OF_TEXT]} if END_OF_TEXT in vocab else {}
        by_id: dict[int, bytes] = {}
        for spelled, id in vocab.items():
            if not isinstance(id, int) or isinstance(id, bool) or id < 0:
                raise TokenizerError(f"token {spelled!r} has id {id!r}; ids must be whole numbers from 0")
            if id in by_id:
                raise TokenizerError(f"two tokens share id {id}")
            by_id[id] = spelled.encode("utf-8") if spelled in specials else token_raw(spelled)
        for content, id in specials.items():
            if by_id.setdefault(id, content.encode("utf-8")) != content.encode("utf-8"):
                raise TokenizerError(f"special token {content!r} has id {id}, which is already {by_id[id]!r}")
        n = len(by_id)
        if sorted(by_id) != list(range(n)):
            missing = min(set(range(n)) - set(by_id))
            raise TokenizerError(f"token ids must run from 0 without gaps; id {missing} has no token")
        table: Merges = {}
        for rank, (left, right) in enumerate(merges):
            try:
                a, b, merged = vocab[left], vocab[right], vocab[left + right]
            except KeyError as exc:
                raise TokenizerError(
                    f"merge {rank} ({left} {right}) uses {exc.args[0]!r}, not in the vocabulary"
                ) from None
            table[(a, b)] = (rank, merged)  # a repeated merge keeps its last rank, as in tokenizers
        byte_ids = []
        for b, spelled in enumerate(token_string(bytes(range(256)))):
            if spelled not in vocab:
                raise TokenizerError(f"the vocabulary has no token for byte 0x{b:02x}; it is not byte-level BPE")
            byte_ids.append(vocab[spelled])
        self.vocab = dict(vocab)
        self.merges = [tuple(m) for m in merges]
        self.pattern = pattern
        self._setup([by_id[i] for i in range(n)], byte_ids, table, compile_pattern(pattern), specials)

    # -- Hugging Face files ---------------------------------------------------------------------
    @classmethod
    def from_files(cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike) -> GPT2Tokenizer:
        """Read vocab.json + merges.txt, as GPT-2 ships them."""
        vocab = hf_files.read_json(Path(vocab_path))
        if not isinstance(vocab, dict):
            raise TokenizerError(f"{vocab_path} must hold a JSON object of token -> id")
        return cls(vocab, hf_files.read_merges(Path(merges_path)))

    @classmethod
    def from_tokenizer_json(cls, path: str | os.PathLike) -> GPT2Tokenizer:
        """Read a tokenizer.json holding a byte-level BPE (what `save_pretrained` writes for GPT-2)."""
        try:
            return cls(**hf_files.read_bytelevel_bpe(Path(path)))
        except TokenizerError as exc:
            message = str(exc)
            raise TokenizerError(message if str(path) in message else f"{path}: {message}") from None

    def save(self, directory: str | os.PathLike) -> Path:
        """Write vocab.json, merges.txt and tokenizer.json (tinylm reads them back; so does Hugging Face)."""
        return hf_files.write_bytelevel_bpe(directory, self.vocab, self.merges, self.specials, self.pattern)

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "version": 1, "pattern": self.pattern, "vocab": self.vocab, "merges": self.merges}
        return d | {"specials": self.specials}

    @classmethod
    def _from_fields(cls, d: dict) -> GPT2Tokenizer:
        return cls(d["vocab"], [tuple(m) for m in d["merges"]], d.get("specials"), d.get("pattern", GPT2_PATTERN))


def load_hf_tokenizer(directory: str | os.PathLike) -> GPT2Tokenizer | None:
    """GPT-2's tokenizer from a Hugging Face directory: tokenizer.json, else vocab.json + merges.txt.

    None when the directory has neither; TokenizerError (one line, naming the file) when they are
    damaged or hold a tokenizer that is not byte-level BPE.
    """
    directory = Path(directory)
    if (directory / hf_files.TOKENIZER_JSON).is_file():
        return GPT2Tokenizer.from_tokenizer_json(directory / hf_files.TOKENIZER_JSON)
    vocab, merges = directory / hf_files.VOCAB_JSON, directory / hf_files.MERGES_TXT
    if vocab.is_file() and merges.is_file():
        try:
            return GPT2Tokenizer.from_files(vocab, merges)
        except TokenizerError as exc:
            message = str(exc)  # name the files, unless the message already does
            raise TokenizerError(
                message if str(directory) in message else f"{vocab} + {merges.name}: {message}"
            ) from None
    if vocab.is_file() or merges.is_file():
        have, lack = (vocab, merges) if vocab.is_file() else (merges, vocab)
        raise TokenizerError(f"{directory} has {have.name} but no {lack.name}; GPT-2's tokenizer needs both")
    return None
