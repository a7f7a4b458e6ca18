"""Tokenizers: round-trips, unknown characters, serialisation, and BPE merge order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm.core.corpus import builtin_corpora, load_corpus
from tinylm.core.errors import TinyLMError, TokenizerError
from tinylm.core.tokenizers import (
    TOKENIZER_FILE,
    TOKENIZER_KINDS,
    TOKENIZERS,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    read_tokenizer_file,
    tokenizer_from_dict,
    tokenizer_kind,
    train_tokenizer,
)
from tinylm.core.tokenizers.bpe import BPE_PATTERN, LEGACY_BPE_PATTERN

SHAKESPEARE = Path("/work/shared/data/tinyshakespeare.txt")
TRICKY = [
    "",
    "a",
    "\n\n\n",
    "line one\n\n\nline two\n",
    "\ttabs\tand  spaces   \t\n",
    "don't you'll we've I'm she'd it's",
    "snake_case __dunder__ 3.14159 1,000,000",
    "Ünïcödé façade naïve café",
    "emoji 🦊🔥 and flags 🇫🇷, zwj 👩‍👩‍👧",
    "中文和日本語のテキスト",
    "trailing spaces   ",
    "\r\nwindows\r\nlines\r\n",
]


@pytest.fixture(scope="module")
def corpora() -> dict[str, str]:
    return {name: load_corpus(name).text for name, _ in builtin_corpora()}


@pytest.fixture(scope="module")
def fables_tokenizers(corpora) -> dict[str, Tokenizer]:
    return {kind: train_tokenizer(kind, corpora["fables"]) for kind in ("char", "word", "bpe")}


class TestRoundTrip:
    @pytest.mark.parametrize("kind", ["char", "word", "bpe"])
    def test_shipped_corpora_round_trip(self, corpora, kind):
        for name, text in corpora.items():
            tok = train_tokenizer(kind, text)
            ids = tok.encode(text)
            assert ids.dtype == np.int64 and ids.ndim == 1
            assert ids.min() >= 0 and ids.max() < tok.vocab_size
            assert tok.decode(ids) == text, f"{kind} on {name}"

    @pytest.mark.parametrize("kind", ["char", "word", "bpe"])
    def test_empty_text_encodes_to_empty_array(self, fables_tokenizers, kind):
        ids = fables_tokenizers[kind].encode("")
        assert ids.shape == (0,) and ids.dtype == np.int64
        assert fables_tokenizers[kind].decode(ids) == ""
        assert fables_tokenizers[kind].decode([]) == ""

    def test_bpe_round_trips_tricky_strings(self, fables_tokenizers):
        bpe = fables_tokenizers["bpe"]
        for text in TRICKY:
            assert bpe.decode(bpe.encode(text)) == text

    def test_char_and_word_round_trip_tricky_strings_they_were_trained_on(self):
        text = "|".join(TRICKY)  # a lone punctuation mark keeps neighbouring whitespace runs apart
        for kind in ("char", "word"):
            tok = train_tokenizer(kind, text)
            for piece in TRICKY:
                assert tok.decode(tok.encode(piece)) == piece

    def test_decode_accepts_lists_arrays_and_generators(self, fables_tokenizers):
        tok = fables_tokenizers["bpe"]
        ids = tok.encode("The Fox and the Kettle")
        assert tok.decode(ids.tolist()) == tok.decode(ids) == tok.decode(int(i) for i in ids)

    @pytest.mark.parametrize("kind", ["char", "word", "bpe"])
    def test_decode_rejects_out_of_range_ids(self, fables_tokenizers, kind):
        tok = fables_tokenizers[kind]
        with pytest.raises(TokenizerError, match="outside the vocabulary"):
            tok.decode([0, tok.vocab_size])
        with pytest.raises(TokenizerError, match="outside the vocabulary"):
            tok.token_text(-1)


class TestUnknown:
    def test_char_vocabulary_is_sorted_chars_then_unk(self):
        tok = CharTokenizer.train("hello world")
        assert tok.chars == sorted(set("hello world"))
        assert tok.vocab_size == len(set("hello world")) + 1
        assert tok.unk_id == tok.vocab_size - 1
        assert tok.encode("hello").tolist() == [tok.chars.index(c) for c in "hello"]

    def test_char_unseen_characters_become_unk(self):
        tok = CharTokenizer.train("abc")
        ids = tok.encode("abzc")
        assert ids.tolist() == [0, 1, 3, 2]
        assert tok.decode(ids) == "ab\ufffdc"
        assert tok.token_text(3) == "<unk>"

    def test_word_vocabulary_order_and_unk(self):
        tok = WordTokenizer.train("b a b c b a")
        assert tok.pieces == [" ", "b", "a", "c"]  # by count, ties by text
        assert tok.token_text(0) == "<unk>"
        ids = tok.encode("a zebra b")
        assert ids.tolist() == [3, 1, 0, 1, 2]
        assert tok.decode(ids) == "a \ufffd b"

    def test_word_vocab_size_caps_rare_pieces(self):
        tok = WordTokenizer.train("the the the cat cat dog", vocab_size=4)
        assert tok.vocab_size == 4
        assert tok.pieces == [" ", "the", "cat"]  # 5 spaces, 3 "the", 2 "cat"; "dog" is cut
        assert tok.decode(tok.encode("the dog")) == "the \ufffd"

    def test_word_default_cap_is_8192(self):
        text = " ".join(f"w{i}" for i in range(9000))
        assert WordTokenizer.train(text).vocab_size == 8192

    def test_word_vocab_size_too_small(self):
        with pytest.raises(TokenizerError, match="at least 2"):
            WordTokenizer.train("a b", vocab_size=1)

    def test_word_pieces_join_back_to_text(self):
        from tinylm.core.tokenizers.word import split_words

        text = "Hello,  world!\n\tIt's 3:00 — ok?"
        assert "".join(split_words(text)) == text
        assert split_words("a, b") == ["a", ",", " ", "b"]

    def test_bpe_never_needs_unk(self, fables_tokenizers):
        bpe = fables_tokenizers["bpe"]
        text = "never seen: ∮ E⋅da = Q,  n → ∞, 🦊"
        assert bpe.decode(bpe.encode(text)) == text


class TestBPE:
    def test_first_merges_hand_computed(self):
        # "aaabdaaabac" is one chunk. Counts: aa 4 (overlapping), ab 2, ... -> aa first (Z);
        # then ZaabdZabac: (a,b) and (Z,a) both 2, tie goes to the lower ids (a,b) (Y); then ZY.
        tok = BPETokenizer.train("aaabdaaabac", vocab_size=259)
        a, b = ord("a"), ord("b")
        assert tok.merges == [(a, a), (a, b), (256, 257)]
        assert tok.vocab_size == 259
        assert tok.encode("aaabdaaabac").tolist() == [258, ord("d"), 258, a, ord("c")]
        assert tok.token_bytes(258) == b"aaab"

    def test_merges_apply_by_rank_not_left_to_right(self):
        # rank 0 is (b,c), rank 1 is (a,b): "abc" must become a + bc, not ab + c.
        a, b, c = ord("a"), ord("b"), ord("c")
        tok = BPETokenizer([(b, c), (a, b)])
        assert tok.encode("abc").tolist() == [a, 256]
        tok = BPETokenizer([(a, b), (b, c)])
        assert tok.encode("abc").tolist() == [256, c]

    def test_merges_do_not_cross_chunks(self):
        tok = BPETokenizer.train("ab ab ab ab", vocab_size=300)
        for i in range(256, tok.vocab_size):
            assert tok.token_bytes(i).count(b" ") <= 1
            assert not tok.token_bytes(i).endswith(b" ")

    def test_stops_early_when_pairs_run_out(self):
        tok = BPETokenizer.train("abab", vocab_size=1000)
        assert tok.vocab_size == 258  # ab, then abab
        assert tok.encode("abab").tolist() == [257]

    def test_vocab_size_below_256_is_refused(self):
        with pytest.raises(TokenizerError, match="at least 256"):
            train_tokenizer("bpe", "hello", vocab_size=100)

    def test_training_is_deterministic(self, corpora):
        assert BPETokenizer.train(corpora["verses"], 300).merges == BPETokenizer.train(corpora["verses"], 300).merges

    @pytest.mark.parametrize("vocab_size", [256, 300, 512])
    def test_vocab_size_reached_on_shipped_corpora(self, corpora, vocab_size):
        for text in corpora.values():
            tok = train_tokenizer("bpe", text, vocab_size)
            assert tok.vocab_size == vocab_size
            assert len(tok.merges) == vocab_size - 256
            assert len(tok.encode(text)) <= len(text.encode("utf-8")) - (vocab_size - 256)

    def test_token_text_replaces_partial_utf8(self):
        tok = BPETokenizer([])
        assert tok.token_bytes(0xC3) == b"\xc3"
        assert tok.token_text(0xC3) == "\ufffd"
        assert tok.decode(tok.encode("é")) == "é"

    def test_lone_surrogate_is_a_tokenizer_error(self, fables_tokenizers):
        with pytest.raises(TokenizerError, match="surrogate"):
            fables_tokenizers["bpe"].encode("bad \ud800 text")

    @pytest.mark.parametrize("pattern", [BPE_PATTERN, LEGACY_BPE_PATTERN])
    def test_pattern_chunks_cover_everything(self, pattern):
        text = "_a_ 12ab'll  \n\n  x__y !? ² \x1c"
        assert "".join(BPETokenizer([], pattern).chunks(text)) == text

    def test_a_tokenizer_saved_with_the_legacy_pattern_keeps_its_ids(self):
        old = tokenizer_from_dict({"kind": "bpe", "version": 1, "merges": [[97, 98]]})  # before "pattern" was stored
        assert old.pattern == LEGACY_BPE_PATTERN
        assert old.chunks("x² ab") == ["x²", " ab"]  # Python's \w took ² for a letter
        assert BPETokenizer([[97, 98]]).chunks("x² ab") == ["x", "²", " ab"]  # GPT-2: ² is a number

    @pytest.mark.skipif(not SHAKESPEARE.exists(), reason="tiny shakespeare is not on this machine")
    def test_tiny_shakespeare_to_512(self):
        text = SHAKESPEARE.read_text(encoding="utf-8")
        tok = train_tokenizer("bpe", text, 512)
        assert tok.vocab_size == 512
        piece = text[:20_000]
        ids = tok.encode(piece)
        assert tok.decode(ids) == piece
        assert len(ids) < 0.6 * len(piece)  # 512 merges roughly halve the token count on English


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_bpe_round_trips_any_text(text):
    assert _BPE.decode(_BPE.encode(text)) == text


_WORD_TEXT = "The Fox and the Kettle.\n\nMoral: Pride goes before a fall!  \t"
_WORD = WordTokenizer.train(_WORD_TEXT)
_BPE = BPETokenizer.train("The Fox and the Kettle 🦊. Ünïcödé façade, 3.14 don't_stop", 320)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_WORD.pieces)))
def test_word_round_trips_text_made_of_its_pieces(pieces):
    # two words (or two whitespace runs) side by side would fuse into one unseen piece, so skip those
    kept: list[str] = []
    for piece in pieces:
        if kept and _piece_class(kept[-1]) == _piece_class(piece) != "punct":
            continue
        kept.append(piece)
    text = "".join(kept)
    assert _WORD.encode(text).tolist() == [_WORD.pieces.index(p) + 1 for p in kept]
    assert _WORD.decode(_WORD.encode(text)) == text


def _piece_class(piece: str) -> str:
    return "space" if piece.isspace() else "word" if (piece[0].isalnum() or piece[0] == "_") else "punct"


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abcde \n", max_size=200))
def test_char_round_trips_known_characters(text):
    tok = CharTokenizer.train("abcde \n")
    assert tok.decode(tok.encode(text)) == text


class TestSerialisation:
    @pytest.mark.parametrize("kind", ["char", "word", "bpe"])
    def test_dict_round_trip_gives_same_ids(self, fables_tokenizers, corpora, kind):
        tok = fables_tokenizers[kind]
        data = json.loads(json.dumps(tok.to_dict()))  # must be JSON-ready
        assert data["kind"] == kind
        again = tokenizer_from_dict(data)
        assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
        text = corpora["recipes"][:5000] + "unseen ∮ 🦊"
        assert np.array_equal(again.encode(text), tok.encode(text))
        assert again.to_dict() == tok.to_dict()

    @pytest.mark.parametrize("kind", ["char", "word", "bpe"])
    def test_save_and_load(self, fables_tokenizers, tmp_path, kind):
        tok = fables_tokenizers[kind]
        path = tok.save(tmp_path / "ckpt")
        assert path.name == TOKENIZER_FILE == "tinylm_tokenizer.json"
        loaded = read_tokenizer_file(tmp_path / "ckpt")
        assert loaded.to_dict() == tok.to_dict()
        assert (tmp_path / "ckpt" / "tokenizer.json").exists()  # for Hugging Face

    def test_load_missing_or_damaged_file(self, tmp_path):
        with pytest.raises(TokenizerError, match="no tinylm_tokenizer.json"):
            read_tokenizer_file(tmp_path)
        (tmp_path / TOKENIZER_FILE).write_text("{not json", encoding="utf-8")
        with pytest.raises(TokenizerError, match="not valid JSON"):
            read_tokenizer_file(tmp_path)

    @pytest.mark.parametrize(
        "data, words",
        [
            ([], "JSON object"),
            ({}, "unknown tokenizer kind"),
            ({"kind": "sentencepiece"}, "unknown tokenizer kind"),
            ({"kind": "char", "version": 99, "chars": "ab"}, "version"),
            ({"kind": "char"}, "damaged char"),
            ({"kind": "char", "chars": ["ab"]}, "damaged char"),
            ({"kind": "char", "chars": "aa"}, "duplicate"),
            ({"kind": "word", "pieces": "abc"}, "damaged word"),
            ({"kind": "word", "pieces": ["a", ""]}, "non-empty"),
            ({"kind": "bpe"}, "damaged bpe"),
            ({"kind": "bpe", "merges": [[97]]}, "damaged bpe"),
            ({"kind": "bpe", "merges": [["a", "b"]]}, "integers"),
            ({"kind": "bpe", "merges": [[97, 300]]}, "do not exist"),
            ({"kind": "bpe", "merges": [[97, 98], [97, 98]]}, "same pair twice"),
            ({"kind": "bpe", "merges": [], "pattern": "("}, "does not compile"),
        ],
    )
    def test_damaged_dicts_raise_one_line_errors(self, data, words):
        with pytest.raises(TokenizerError, match=words) as info:
            tokenizer_from_dict(data)
        assert "\n" not in str(info.value)
        assert isinstance(info.value, TinyLMError)


class TestTrainTokenizer:
    def test_unknown_kind(self):
        with pytest.raises(TokenizerError, match="unknown tokenizer kind 'wordpiece'.*char, word, bpe"):
            train_tokenizer("wordpiece", "text")

    @pytest.mark.parametrize("kind", ["char", "word", "bpe"])
    def test_empty_training_text(self, kind):
        with pytest.raises(TokenizerError, match="empty"):
            train_tokenizer(kind, "")

    @pytest.mark.parametrize("kind", ["char", "word", "bpe"])
    def test_kind_attribute(self, kind):
        assert train_tokenizer(kind, "some text").kind == kind

    def test_encode_rejects_non_text(self, fables_tokenizers):
        with pytest.raises(TokenizerError, match="must be a str"):
            fables_tokenizers["char"].encode(b"bytes")


class TestRegistry:
    def test_each_kind_names_its_class(self):
        assert [k.name for k in TOKENIZERS] == ["char", "word", "bpe", "gpt2"]
        for k in TOKENIZERS:
            assert k.cls.kind == k.name and k.description and tokenizer_kind(k.name) is k

    @pytest.mark.parametrize("kind", [k.name for k in TOKENIZERS if k.trains])
    def test_trainable_kinds_train_and_load_back_through_the_table(self, kind, tmp_path):
        spec = tokenizer_kind(kind)
        tok = train_tokenizer(kind, "the fox and the crow, the end " * 40, 260 if spec.takes_vocab_size else 5)
        assert isinstance(tok, spec.cls)
        if spec.takes_vocab_size:
            assert tok.vocab_size <= 260
        tok.save(tmp_path)
        assert load_tokenizer(tmp_path).to_dict() == tok.to_dict()

    def test_gpt2_is_read_not_trained(self):
        assert not tokenizer_kind("gpt2").trains and "gpt2" not in TOKENIZER_KINDS
        with pytest.raises(TokenizerError, match="not trained on a corpus") as info:
            train_tokenizer("gpt2", "some text")
        assert "\n" not in str(info.value)

    def test_command_line_choices_are_the_trainable_kinds(self):
        from tinylm.core.cli.main import build_parser

        train = build_parser()._subparsers._group_actions[0].choices["train"]
        choices = next(a.choices for a in train._actions if a.dest == "tokenizer")
        assert list(choices) == list(TOKENIZER_KINDS) == [k.name for k in TOKENIZERS if k.trains]
