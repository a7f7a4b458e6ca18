"""Corpus loading: built-ins, user files, typed text, and one-line errors for bad input."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from tinylm.core.corpus import (
    DEFAULT_CORPUS,
    Corpus,
    builtin_corpora,
    check_corpus_length,
    check_split_lengths,
    load_corpus,
    split_ids,
)
from tinylm.core.errors import CorpusError, TinyLMError

BUILTINS = ["fables", "recipes", "verses"]


def _one_line_error(fn, *args, match: str) -> str:
    with pytest.raises(CorpusError, match=match) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, TinyLMError)
    return message


class TestBuiltins:
    def test_list_has_the_three_corpora_default_first(self):
        corpora = builtin_corpora()
        assert [name for name, _ in corpora] == BUILTINS
        assert corpora[0][0] == DEFAULT_CORPUS == "fables"
        for name, description in corpora:
            assert description and "\n" not in description and not description.startswith("#")
            assert description.startswith(name + ":")

    @pytest.mark.parametrize("name", BUILTINS)
    def test_builtin_loads_without_description_line(self, name):
        corpus = load_corpus(name)
        assert corpus.source == "builtin" and corpus.name == name
        assert not corpus.text.startswith("#")
        assert corpus.description == dict(builtin_corpora())[name]
        assert corpus.description not in corpus.text
        assert 40_000 <= len(corpus.text.encode("utf-8")) <= 80_000
        assert corpus.text.isascii()

    @pytest.mark.parametrize("name", BUILTINS)
    def test_builtins_are_varied_not_one_line_repeated(self, name):
        lines = [line for line in load_corpus(name).text.splitlines() if line.strip()]
        assert len(set(lines)) > 0.25 * len(lines)  # recipes repeat "Ingredients:", "- 2 eggs" by nature
        most_common = max(lines.count(line) for line in set(lines))
        assert most_common < 0.1 * len(lines)

    def test_fables_have_titles_and_morals(self):
        text = load_corpus("fables").text
        assert text.startswith("The ")
        assert text.count("\nMoral: ") >= 80

    def test_recipes_have_ingredients_and_numbered_steps(self):
        text = load_corpus("recipes").text
        assert text.count("Ingredients:\n- ") == text.count("Steps:\n1. ") >= 60

    def test_sha256_is_of_utf8_text(self):
        corpus = load_corpus("verses")
        assert corpus.sha256 == hashlib.sha256(corpus.text.encode("utf-8")).hexdigest()

    def test_unknown_builtin_lists_known_names(self):
        message = _one_line_error(load_corpus, "poems", match="unknown built-in corpus 'poems'")
        for name in BUILTINS:
            assert name in message


class TestFiles:
    def test_loads_utf8_file_as_is(self, tmp_path):
        path = tmp_path / "mine.txt"
        path.write_text("# not a description here\nHéllo wörld 🦊\n", encoding="utf-8")
        for arg in (path, str(path)):
            corpus = load_corpus(arg)
            assert corpus.text == "# not a description here\nHéllo wörld 🦊\n"
            assert corpus.source == "file" and corpus.name == "mine.txt"
            assert "\n" not in corpus.description

    def test_byte_order_mark_is_dropped(self, tmp_path):
        path = tmp_path / "bom.txt"
        path.write_bytes(b"\xef\xbb\xbfhello")
        assert load_corpus(path).text == "hello"

    def test_file_named_like_a_builtin_via_explicit_path(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "fables").write_text("my own fables", encoding="utf-8")
        assert load_corpus("fables").source == "builtin"
        assert load_corpus("./fables").text == "my own fables"
        assert load_corpus(tmp_path / "fables").text == "my own fables"

    def test_missing_file(self, tmp_path):
        _one_line_error(load_corpus, tmp_path / "nope.txt", match="not found.*nope.txt")
        _one_line_error(load_corpus, str(tmp_path / "nope"), match="not found")

    def test_directory(self, tmp_path):
        _one_line_error(load_corpus, tmp_path, match="is a directory, not a file")

    @pytest.mark.parametrize("content", [b"", b"   \n\t\n  "])
    def test_empty_or_whitespace_file(self, tmp_path, content):
        path = tmp_path / "empty.txt"
        path.write_bytes(content)
        _one_line_error(load_corpus, path, match="empty")

    def test_binary_file_names_nul_offset(self, tmp_path):
        path = tmp_path / "data.bin"
        path.write_bytes(b"abc\x00\x01\x02")
        _one_line_error(load_corpus, path, match="binary.*offset 3")

    def test_invalid_utf8_names_byte_offset(self, tmp_path):
        path = tmp_path / "latin1.txt"
        path.write_bytes("café au lait".encode("latin-1"))
        _one_line_error(load_corpus, path, match=r"not valid UTF-8 \(byte 0xe9 at offset 3\)")

    @pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
    def test_unreadable_file(self, tmp_path):
        path = tmp_path / "secret.txt"
        path.write_text("x", encoding="utf-8")
        path.chmod(0)
        _one_line_error(load_corpus, path, match="cannot (be )?read")

    @pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
    def test_fifo_is_refused_without_waiting_for_a_writer(self, tmp_path):
        fifo = tmp_path / "pipe.txt"
        os.mkfifo(fifo)
        _one_line_error(load_corpus, fifo, match="pipe.txt is a FIFO .*not a regular file")

    @pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
    def test_endless_device_is_refused_without_reading_it(self, tmp_path):
        _one_line_error(load_corpus, "/dev/zero", match="character device, not a regular file")
        (tmp_path / "zeros.txt").symlink_to("/dev/zero")  # the kind of what is opened, not of the link
        _one_line_error(load_corpus, tmp_path / "zeros.txt", match="character device")

    def test_socket_is_refused(self, tmp_path):
        socket = pytest.importorskip("socket")
        if not hasattr(socket, "AF_UNIX"):
            pytest.skip("no Unix sockets here")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(tmp_path / "s"))
            _one_line_error(load_corpus, tmp_path / "s", match="cannot be read|socket")

    def test_size_limit_is_stated(self, tmp_path, monkeypatch):
        import tinylm.core.corpus as corpus_module

        monkeypatch.setattr(corpus_module, "MAX_CORPUS_BYTES", 1000)
        path = tmp_path / "big.txt"
        path.write_text("a" * 1000)
        assert load_corpus(path).text == "a" * 1000
        path.write_text("a" * 1001)
        _one_line_error(load_corpus, path, match=r"big.txt is 1001 bytes, more than the limit of 1000 bytes")
        _one_line_error(Corpus.from_text, "a" * 1001, match="limit of 1000 bytes")


class TestTypedText:
    def test_from_text(self):
        corpus = Corpus.from_text("hello there")
        assert (corpus.name, corpus.source, corpus.text) == ("typed", "text", "hello there")
        assert Corpus.from_text("x", name="pasted").name == "pasted"

    @pytest.mark.parametrize("text", ["", "  \n "])
    def test_empty_typed_text(self, text):
        _one_line_error(Corpus.from_text, text, match="empty")

    def test_corpus_is_frozen(self):
        with pytest.raises(AttributeError):
            Corpus.from_text("abc").text = "changed"


class TestLengthAndSplit:
    def test_check_corpus_length(self):
        check_corpus_length(65, 64)  # exactly one window of inputs plus its next-token target
        message = _one_line_error(check_corpus_length, 64, 64, match="corpus has 64 tokens")
        assert "65 tokens" in message and "smaller context length" in message

    @pytest.mark.parametrize("window, val_fraction", [(8, 0.1), (64, 0.1), (16, 0.25), (5, 0.4)])
    def test_split_lengths_match_the_split_and_name_the_least_corpus(self, window, val_fraction):
        def fits(n: int) -> bool:  # the split itself, as the trainer gets it
            train, val = split_ids(np.arange(n), val_fraction)
            return len(train) >= window + 1 and len(val) >= window + 1

        least = next(n for n in range(1, 100_000) if fits(n))
        for n in range(1, least + 50):
            if fits(n):
                check_split_lengths(n, window, val_fraction)
                continue
            message = _one_line_error(check_split_lengths, n, window, val_fraction, match="part of the corpus")
            assert f"needs at least {least:,} tokens for context {window}" in message

    def test_split_is_nanogpt_style(self):
        ids = np.arange(1000)
        train, val = split_ids(ids, 0.1)
        assert np.array_equal(train, np.arange(900)) and np.array_equal(val, np.arange(900, 1000))
        train, val = split_ids(ids, 0.0)
        assert len(train) == 1000 and len(val) == 0
        train, val = split_ids(list(range(7)), 0.5)
        assert train.tolist() == [0, 1, 2] and val.tolist() == [3, 4, 5, 6]

    @pytest.mark.parametrize("fraction", [-0.1, 1.0, 2])
    def test_split_rejects_bad_fraction(self, fraction):
        _one_line_error(split_ids, np.arange(10), fraction, match="validation fraction")
