"""The CLI under hostile input, property-based: any arguments, any corpus bytes, any damage to a
checkpoint. The only outcomes allowed are success, or exit status 2 with one line `tinylm: error: ...`;
a traceback, a hang or a changed checkpoint fails. Tiny models and few examples keep the fast lane
fast; the `slow` variants run ten times as many. The examples are the same on every run; set
TINYLM_HOSTILE_RANDOM=1 to draw new ones."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinylm.core.corpus as corpus_module
from tinylm.core import Trainer, load
from tinylm.core.cli.main import main

TINY = ["--layers", "1", "--heads", "2", "--embd", "8", "--context", "8", "--batch-size", "2", "--eval-batches", "1"]
HANG_S = 60  # far beyond what any example here takes: reaching it means something waits forever

FAST, SLOW = 25, 250
EXAMPLES = [pytest.param(FAST, id="fast"), pytest.param(SLOW, id="many", marks=pytest.mark.slow)]


class Hang(Exception):
    """An example ran past HANG_S seconds."""


@contextlib.contextmanager
def no_hang():
    def alarm(signum, frame):
        raise Hang(f"no answer within {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with no_hang(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def assert_allowed(status: int, err: str, argv) -> None:
    """Success, or exit 2 with exactly one line saying what is wrong."""
    assert "Traceback" not in err, (argv, err)
    if status == 0:
        return
    lines = err.strip().splitlines()
    assert status == 2, (argv, status, err)
    assert len(lines) == 1 and lines[0].startswith("tinylm: error: "), (argv, err)


def state_of(path: Path) -> dict:
    """What a directory holds, without opening anything but regular files (a FIFO would block)."""
    found = {}
    for entry in sorted(path.rglob("*")) if path.is_dir() else []:
        info = entry.lstat()
        kind = stat.S_IFMT(info.st_mode)
        found[str(entry.relative_to(path))] = entry.read_bytes() if stat.S_ISREG(kind) else (kind, str(entry))
    return found


def settings_for(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=not os.environ.get("TINYLM_HOSTILE_RANDOM"),  # set it to explore beyond the fixed examples
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny trained checkpoint; tests copy it before doing anything to it."""
    path = tmp_path_factory.mktemp("hostile") / "run"
    status, _, err = run(["train", *TINY, "--steps", 4, "--quiet", "--out", path])
    assert status == 0, err
    return path


# ----- any arguments --------------------------------------------------------------------------------

INTS = ["-1", "0", "1", "2", "3", "8", "2147483648", "1e3", "x", "", " 2"]
FLOATS = ["-1", "0", "1e-300", "0.001", "0.5", "1", "1.5", "nan", "inf", "-inf", "1e309", "x", ""]
TRAIN_FLAGS = {
    # kept small where a large value only makes a run long: steps, evaluation batches
    "--steps": st.sampled_from(["-1", "0", "1", "2", "x", "1.5"]),
    "--eval-batches": st.sampled_from(["-1", "0", "1", "2", "x"]),
    "--eval-interval": st.sampled_from(INTS),
    "--layers": st.sampled_from(["-1", "0", "1", "2", "100000000", "x"]),
    "--heads": st.sampled_from(["-1", "0", "1", "2", "3", "4", "x"]),
    "--embd": st.sampled_from(["-1", "0", "1", "2", "7", "8", "16", "100000000", "x"]),
    "--context": st.sampled_from(["-1", "0", "1", "2", "4", "8", "1000000000", "x"]),
    "--batch-size": st.sampled_from(["-1", "0", "1", "2", "3", "2147483648", "x"]),
    "--positional": st.sampled_from(["learned", "sincos", "rotary"]),
    "--dropout": st.sampled_from(FLOATS),
    "--dtype": st.sampled_from(["float32", "float64", "float16"]),
    "--tokenizer": st.sampled_from(["char", "word", "bpe", "sentencepiece"]),
    "--vocab-size": st.sampled_from(["-1", "0", "1", "2", "256", "260", "2147483648", "x"]),
    "--lr": st.sampled_from(FLOATS),
    "--min-lr": st.sampled_from(FLOATS),
    "--warmup": st.sampled_from(INTS),
    "--decay-steps": st.sampled_from(INTS),
    "--weight-decay": st.sampled_from(FLOATS),
    "--beta1": st.sampled_from(FLOATS),
    "--beta2": st.sampled_from(FLOATS),
    "--grad-clip": st.sampled_from(FLOATS),
    "--val-fraction": st.sampled_from(FLOATS),
    "--seed": st.sampled_from(["-1", "0", "1", "18446744073709551616", "x", "1.5"]),
}
TEXTS = st.one_of(
    st.text(max_size=400),
    st.sampled_from(["the cat sat on the mat. " * 10, "ab" * 200, "\x00\x01 binary-ish \ud7ff", "\n" * 50]),
)


@pytest.mark.parametrize("n", EXAMPLES)
def test_any_train_arguments(ckpt, n):
    @settings_for(n)
    @given(flags=st.dictionaries(st.sampled_from(sorted(TRAIN_FLAGS)), st.just(None), max_size=6), data=st.data())
    def check(flags, data):
        with tempfile.TemporaryDirectory() as tmp:
            existing = Path(tmp) / "existing"
            shutil.copytree(ckpt, existing)
            before = state_of(existing)
            out = data.draw(st.sampled_from([Path(tmp) / "new", existing, Path(tmp) / "a" / "b"]), label="out")
            argv = ["train", *TINY, "--steps", "2", "--quiet", "--out", out]
            argv += ["--text", data.draw(TEXTS, label="text")]
            for flag in flags:
                argv += [flag, data.draw(TRAIN_FLAGS[flag], label=flag)]
            status, _, err = run(argv)
            assert_allowed(status, err, argv)
            assert state_of(existing) == before, argv  # never saved over without --overwrite
            if status == 0:
                assert out != existing
                load(out)

    check()


GENERATE_FLAGS = {
    "--prompt": TEXTS,
    "--tokens": st.sampled_from(["-1", "0", "1", "5", "x"]),
    "--temperature": st.sampled_from(FLOATS + ["1e-30", "1e30"]),
    "--top-k": st.sampled_from(["-1", "0", "1", "3", "100000", "x"]),
    "--top-p": st.sampled_from(FLOATS + ["1e-30"]),
    "--seed": st.sampled_from(["-1", "0", "7", "18446744073709551616", "x"]),
    "--greedy": st.just(None),
}
INSPECT_FLAGS = {
    "--prompt": TEXTS,
    "--layer": st.sampled_from(["-1", "0", "1", "5", "x"]),
    "--all-layers": st.just(None),
    "--precision": st.sampled_from(["-1", "0", "3", "40", "x"]),
}


@pytest.mark.parametrize("n", EXAMPLES)
def test_any_generate_inspect_info_arguments(ckpt, n):
    before = state_of(ckpt)

    @settings_for(n)
    @given(command=st.sampled_from(["generate", "inspect", "info"]), data=st.data())
    def check(command, data):
        table = {"generate": GENERATE_FLAGS, "inspect": INSPECT_FLAGS, "info": {}}[command]
        argv = [command, ckpt]
        flags = (
            data.draw(st.lists(st.sampled_from(sorted(table)), max_size=5, unique=True), label="flags") if table else []
        )
        for flag in flags:
            argv.append(flag)
            if flag not in ("--greedy", "--all-layers"):
                argv.append(data.draw(table[flag], label=flag))
        status, _, err = run(argv)
        assert_allowed(status, err, argv)

    check()
    assert state_of(ckpt) == before


# ----- any corpus -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", EXAMPLES)
def test_any_corpus_bytes(n, monkeypatch):
    monkeypatch.setattr(corpus_module, "MAX_CORPUS_BYTES", 3000)  # sizes on both sides of the limit

    @settings_for(n)
    @given(
        content=st.one_of(
            st.binary(max_size=4000),
            st.text(max_size=1500).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.sampled_from([b"", b"\xef\xbb\xbf", b"a" * 3000, b"a" * 3001, "é".encode() * 1500]),
        ),
        tokenizer=st.sampled_from(["char", "word", "bpe"]),
    )
    def check(content, tokenizer):
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus.txt"
            corpus.write_bytes(content)
            argv = ["train", *TINY, "--steps", "1", "--quiet", "--tokenizer", tokenizer, "--corpus", corpus]
            argv += ["--vocab-size", "260", "--out", Path(tmp) / "out"]
            status, _, err = run(argv)
            assert_allowed(status, err, argv)

    check()


# ----- any damage to a checkpoint -------------------------------------------------------------------


def damage(path: Path, data) -> str:
    """Harm one file of the checkpoint in one of several ways; returns what was done."""
    names = sorted(p.name for p in path.iterdir())
    name = data.draw(st.sampled_from(names), label="file")
    f = path / name
    raw = f.read_bytes()
    how = data.draw(
        st.sampled_from(["truncate", "flip", "garbage", "empty", "delete", "dir", "fifo", "zero", "json"]),
        label="how",
    )
    if how == "truncate":
        f.write_bytes(raw[: data.draw(st.integers(0, max(0, len(raw) - 1)), label="at")])
    elif how == "flip":
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            i = data.draw(st.integers(0, len(buf) - 1), label="byte")
            buf[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        f.write_bytes(bytes(buf))
    elif how == "garbage":
        f.write_bytes(data.draw(st.binary(max_size=300), label="garbage"))
    elif how == "empty":
        f.write_bytes(b"")
    elif how == "delete":
        f.unlink()
    elif how == "dir":
        f.unlink()
        f.mkdir()
    elif how == "fifo" and hasattr(os, "mkfifo"):
        f.unlink()
        os.mkfifo(f)
    elif how == "zero" and os.path.exists("/dev/zero"):
        f.unlink()
        f.symlink_to("/dev/zero")
    elif how == "json" and name.endswith(".json"):
        doc = json.loads(raw)
        value = data.draw(
            st.recursive(
                st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
                lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                max_leaves=5,
            ),
            label="value",
        )
        node, keys = doc, []
        while isinstance(node, dict) and node and data.draw(st.booleans(), label="deeper"):
            key = data.draw(st.sampled_from(sorted(node)), label="key")
            keys.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if isinstance(node, dict) and node:
            node[data.draw(st.sampled_from(sorted(node)), label="key")] = value
        else:
            doc = value
        f.write_text(json.dumps(doc, allow_nan=True))
    return f"{how} {name}"


@pytest.mark.parametrize("n", EXAMPLES)
def test_any_damaged_checkpoint(ckpt, n):
    @settings_for(n)
    @given(data=st.data())
    def check(data):
        with tempfile.TemporaryDirectory() as tmp:
            bad = Path(tmp) / "bad"
            shutil.copytree(ckpt, bad)
            what = damage(bad, data)
            before = state_of(bad)
            for argv in (
                ["info", bad],
                ["generate", bad, "--tokens", "3", "--seed", "1"],
                ["inspect", bad, "--prompt", "The"],
                ["train", "--resume", bad, "--steps", "6", "--quiet", "--out", Path(tmp) / "next"],
            ):
                status, _, err = run(argv)
                assert_allowed(status, err, [what, *argv])
                assert state_of(bad) == before, (what, argv)
            if (Path(tmp) / "next").exists():
                assert Trainer.resume(Path(tmp) / "next").step_count == 6

    check()
