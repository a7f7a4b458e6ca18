"""GPT-2's tokenizer: the same ids as Hugging Face's on hard cases, exact round trips, the slow oracle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm.core.errors import TokenizerError
from tinylm.core.tokenizers import GPT2Tokenizer, load_hf_tokenizer, load_tokenizer, tokenizer_from_dict
from tinylm.core.tokenizers.bytelevel import bytes_to_unicode, merge_chunk, merge_chunk_slow, token_string
from tinylm.core.tokenizers.pretokenize import GPT2_PATTERN, split_gpt2, split_gpt2_slow

GPT2_FILES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gpt2-tokenizer"
if not GPT2_FILES.is_dir():  # a worktree sits one level deeper than the main checkout
    GPT2_FILES = Path("/work/shared/data/gpt2-tokenizer")
HARD_CASES = json.loads((Path(__file__).parent / "data" / "gpt2_hard_cases.json").read_text(encoding="utf-8"))
needs_files = pytest.mark.skipif(not (GPT2_FILES / "vocab.json").is_file(), reason="GPT-2's tokenizer files absent")


@pytest.fixture(scope="module")
def gpt2() -> GPT2Tokenizer:
    return load_hf_tokenizer(GPT2_FILES)


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    """Hugging Face's own GPT-2 tokenizer on the same files (transformers' AutoTokenizer, else tokenizers)."""
    directory = tmp_path_factory.mktemp("gpt2")
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(GPT2_FILES / name, directory / name)
    try:
        from transformers import AutoTokenizer

        (directory / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
        tok = AutoTokenizer.from_pretrained(str(directory))
        return lambda text: tok(text)["input_ids"], tok.decode
    except ImportError:
        tokenizers = pytest.importorskip("tokenizers")
        tok = tokenizers.Tokenizer(
            tokenizers.models.BPE.from_file(str(directory / "vocab.json"), str(directory / "merges.txt"))
        )
        tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tokenizers.decoders.ByteLevel()
        tok.add_special_tokens(["<|endoftext|>"])
        return lambda text: tok.encode(text).ids, tok.decode


@needs_files
class TestAgainstHuggingFace:
    def test_readme_examples(self, gpt2):
        assert gpt2.encode("Hello world").tolist() == [15496, 995]
        assert gpt2.encode(" the").tolist() == [262]
        assert gpt2.vocab_size == 50257

    @pytest.mark.parametrize("text", HARD_CASES, ids=[repr(t[:24]) for t in HARD_CASES])
    def test_hard_cases_same_ids_and_round_trip(self, gpt2, hf_gpt2, text):
        hf_encode, hf_decode = hf_gpt2
        ids = gpt2.encode(text)
        assert ids.tolist() == hf_encode(text)
        assert gpt2.decode(ids) == text == hf_decode(ids.tolist())

    def test_all_hard_cases_as_one_text(self, gpt2, hf_gpt2):
        text = "\n".join(HARD_CASES)
        assert gpt2.encode(text).tolist() == hf_gpt2[0](text)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=60))
    def test_any_text(self, gpt2, hf_gpt2, text):
        ids = gpt2.encode(text)
        assert ids.tolist() == hf_gpt2[0](text)
        assert gpt2.decode(ids) == text


@needs_files
class TestGPT2Tokenizer:
    def test_end_of_text_is_one_special_token(self, gpt2):
        assert gpt2.specials == {"<|endoftext|>": 50256}
        assert gpt2.encode("a<|endoftext|>b").tolist() == [64, 50256, 65]
        assert gpt2.token_text(50256) == "<|endoftext|>"

    def test_no_unknowns_every_byte_is_a_token(self, gpt2):
        text = bytes(range(128)).decode("ascii") + "\udbff\udfff".encode("utf-16", "surrogatepass").decode("utf-16")
        assert gpt2.decode(gpt2.encode(text)) == text

    def test_tokens_of_a_split_character_are_its_bytes(self, gpt2):
        ids = gpt2.encode("🦊")
        assert len(ids) > 1
        assert b"".join(gpt2.token_bytes(i) for i in ids) == "🦊".encode()

    def test_token_labels_are_readable(self, gpt2):
        ids = gpt2.encode(" the 🦊").tolist()
        labels = [gpt2.token_label(i) for i in ids]
        assert labels[0] == " the"  # the leading space is part of the token
        assert all(label.startswith("\\x") or label.startswith(" ") for label in labels[1:])
        assert "".join(labels[1:]).replace(" ", "") == repr("🦊".encode())[2:-1]  # the fox's bytes, as bytes

    def test_every_tokens_label_is_its_text_with_only_stray_bytes_as_hex(self, gpt2):
        import re

        stray = 0
        for i in range(gpt2.vocab_size):
            raw, label = gpt2.token_bytes(i), gpt2.token_label(i)
            try:
                assert label == raw.decode("utf-8")  # whole characters: the text itself, whitespace included
            except UnicodeDecodeError:
                stray += 1
                assert "\ufffd" not in label and "\\n" not in label  # no replacement glyph, no escaped newline
                # read back: \xHH is a byte, anything else its UTF-8: the exact bytes of the token
                back = b"".join(
                    bytes([int(part[2:], 16)]) if part.startswith("\\x") else part.encode()
                    for part in re.split(r"(\\x[0-9a-f]{2})", label)
                )
                assert back == raw, (i, raw, label)
        assert stray > 100  # GPT-2 has hundreds of tokens that are part of a character
        assert gpt2.token_label(gpt2.encode("é")[0]) == "é"
        assert gpt2.token_label(25443) == "о\\xd0"  # b"\\xd0\\xbe\\xd0": a whole Cyrillic о, then a stray byte
        assert gpt2.token_label(gpt2.encode("🦊")[0]) == "\\xf0\\x9f"  # its first two bytes, as bytes
        assert gpt2.text_label(gpt2.encode(" 🦊!").tolist()) == " 🦊!"  # joined, the character is whole again
        assert gpt2.text_label(gpt2.encode(" 🦊").tolist()[:-1]) == " \\xf0\\x9f\\xa6"  # unfinished: its bytes

    def test_merge_steps_explain_a_word(self, gpt2):
        steps = gpt2.merge_steps(" lower")
        assert steps[-1].ids == gpt2.encode(" lower").tolist()
        ranks = [s.rank for s in steps]
        assert ranks == sorted(ranks)  # lowest rank first, as GPT-2 merges
        first = steps[0]
        assert gpt2.merges[first.rank] == tuple(token_string(gpt2.token_bytes(i)) for i in first.pair)

    def test_fast_encode_equals_the_slow_oracle(self, gpt2):
        for text in HARD_CASES:
            assert gpt2.encode(text).tolist() == gpt2.encode_slow(text), repr(text)

    def test_heap_merge_equals_the_loop_on_long_chunks(self, gpt2):
        for chunk in ("中文" * 200, "a" * 1000, "Supercalifragilistic" * 20, "🦊" * 50):
            ids = gpt2.chunk_ids(chunk)
            assert merge_chunk(ids, gpt2._merges) == merge_chunk_slow(ids, gpt2._merges)

    def test_save_writes_files_that_load_back(self, gpt2, tmp_path):
        gpt2.save(tmp_path)
        assert {"vocab.json", "merges.txt", "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}
        for again in (
            load_hf_tokenizer(tmp_path),
            GPT2Tokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt"),
        ):
            assert again.vocab == gpt2.vocab and again.merges == gpt2.merges and again.specials == gpt2.specials
        assert load_tokenizer(tmp_path).encode("Hello world").tolist() == [15496, 995]
        again = tokenizer_from_dict(json.loads(json.dumps(gpt2.to_dict())))
        assert again.specials == gpt2.specials and again.encode("a<|endoftext|>b").tolist() == [64, 50256, 65]


class TestPreTokenizer:
    @pytest.mark.parametrize("text", HARD_CASES, ids=[repr(t[:24]) for t in HARD_CASES])
    def test_fast_split_equals_the_scanner(self, text):
        assert split_gpt2(text) == split_gpt2_slow(text)
        assert "".join(split_gpt2(text)) == text

    @settings(max_examples=500, deadline=None)
    @given(st.text())
    def test_fast_split_equals_the_scanner_on_any_text(self, text):
        assert split_gpt2(text) == split_gpt2_slow(text)

    def test_against_the_regex_module_when_installed(self):
        regex = pytest.importorskip("regex")
        for text in HARD_CASES:
            assert split_gpt2(text) == regex.findall(GPT2_PATTERN, text), repr(text)

    def test_known_chunks(self):
        assert split_gpt2("I'm  here\n\n it's 42!") == ["I", "'m", " ", " here", "\n\n", " it", "'s", " 42", "!"]


def test_byte_table_is_gpt2s():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"


class TestBadFiles:
    def test_no_files_is_none(self, tmp_path):
        assert load_hf_tokenizer(tmp_path) is None
        assert load_tokenizer(tmp_path) is None

    def test_half_a_pair_is_an_error(self, tmp_path):
        (tmp_path / "vocab.json").write_text("{}")
        with pytest.raises(TokenizerError, match="no merges.txt"):
            load_hf_tokenizer(tmp_path)

    @pytest.mark.parametrize(
        "content, words",
        [
            ("{not json", "not valid JSON"),
            ('{"model": {"type": "WordPiece", "vocab": {}}}', "not BPE"),
            (
                '{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}',
                "byte-level",
            ),
            (
                '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}',
                "byte 0x00",
            ),
            (
                '{"model": {"type": "BPE", "vocab": [], "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}',
                "must be an object",
            ),
        ],
    )
    def test_damaged_tokenizer_json(self, tmp_path, content, words):
        (tmp_path / "tokenizer.json").write_text(content)
        with pytest.raises(TokenizerError, match=words) as info:
            load_hf_tokenizer(tmp_path)
        assert "\n" not in str(info.value) and "tokenizer.json" in str(info.value)

    def test_merge_of_unknown_tokens(self):
        vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
        with pytest.raises(TokenizerError, match="not in the vocabulary"):
            GPT2Tokenizer(vocab, [("a", "b")])

    def test_gap_in_ids(self):
        vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())} | {"ab": 300}
        with pytest.raises(TokenizerError, match="without gaps"):
            GPT2Tokenizer(vocab, [])


def test_encode_returns_int64(tmp_path):
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    tok = GPT2Tokenizer(vocab | {"ab": 256}, [("a", "b")])
    ids = tok.encode("abab")
    assert ids.dtype == np.int64 and ids.tolist() == [256, 256]
