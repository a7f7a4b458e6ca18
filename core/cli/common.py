"""What every `tinylm` subcommand shares: exit codes, the one-line parser, argument types, token display."""

from __future__ import annotations

import argparse
import sys

from ..errors import TinyLMError

EXIT_USAGE = 2  # bad input, as argparse uses
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class UsageError(TinyLMError):
    """A command-line value the CLI itself rejects (out of range, conflicting flags)."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message instead of the usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"tinylm: error: {message} (see '{self.prog} --help')\n")


# ----- small helpers shared by the subcommands ----------------------------------------------------


def printable(text: str) -> str:
    """Text with control characters (a user's path may hold an escape sequence) written as escapes."""
    return "".join(ch if ch.isprintable() or ch == "\n" else ch.encode("unicode_escape").decode("ascii") for ch in text)


def note(message: str) -> None:
    """A one-line remark on stderr, so stdout stays clean for text and logs."""
    try:
        print(f"tinylm: {printable(message)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # no stderr any more (a closed terminal): the work goes on
        pass


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def show_token(text: str, width: int = 10, quoted: bool = False) -> str:
    """A token's text made visible on one line: space as ␣ (kept in a quoted label, whose quotes show
    it), newline as \\n, long ones cut with …."""
    out = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    out = out if quoted else out.replace(" ", "␣")
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in out)
    return out if len(out) <= width else out[: width - 1] + "…"


def token_label(tokenizer, id: int, quoted: bool = False) -> str:
    """A token's text (quoted: as a Python literal); a byte-level token holding part of a UTF-8
    character shows its bytes: r\\xc3, or b'r\\xc3' quoted."""
    if quoted and tokenizer.byte_level:
        raw = tokenizer.token_bytes(id)
        try:
            return repr(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return repr(raw)
    text = tokenizer.token_label(id)
    return repr(text) if quoted else text


def check_prompt(model, prompt: str) -> None:
    """Tell the user (once, on stderr) when a prompt is cropped or holds characters the tokenizer lacks."""
    tok = model.tokenizer
    if tok is None or not prompt:
        return
    ids = tok.encode(prompt)
    unk_id = getattr(tok, "unk_id", None)
    if unk_id is not None and (ids == unk_id).any():
        count = int((ids == unk_id).sum())
        if tok.kind == "char":
            unseen = sorted({ch for ch in prompt if tok.encode(ch)[0] == unk_id})
            what = "character" + ("s" if len(unseen) > 1 else "") + " " + " ".join(repr(c) for c in unseen)
            note(f"the prompt has {what} not seen in training; read as <unk> ({count} token{'s' * (count > 1)})")
        else:
            note(
                f"{count} piece{'s' * (count > 1)} of the prompt {'were' if count > 1 else 'was'} "
                "not seen in training; read as <unk>"
            )
    T = model.config.block_size
    if len(ids) > T:
        note(f"the prompt is {len(ids)} tokens, longer than the context of {T}: keeping its last {T} tokens")


def default_prompt_ids(model) -> list[int]:
    """Where generation starts without a prompt: a newline if the tokenizer knows it, as nanoGPT does."""
    tok = model.tokenizer
    ids = tok.encode("\n")
    unk_id = getattr(tok, "unk_id", None)
    if len(ids) == 1 and ids[0] != unk_id:
        return [int(ids[0])]
    return [1 if unk_id == 0 else 0]


DEVICE_HELP = (
    "where the model runs: cpu (default) or cuda (an NVIDIA GPU through numba.cuda; "
    "pip install 'tinylm-tui[cuda]'; with NUMBA_ENABLE_CUDASIM=1, numba's simulator: correct and very slow)"
)


def add_checkpoint_argument(parser) -> None:
    """The CHECKPOINT positional every reading command takes."""
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a checkpoint directory written by tinylm, or any Hugging Face GPT-2 directory (model.safetensors)",
    )


def add_device_argument(parser) -> None:
    """The --device flag every command that runs the model takes."""
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help=DEVICE_HELP)


def kernels_for(device: str):
    """The kernel namespace for --device; for cuda, a UsageError naming what is missing and how to get
    it when no GPU can be used (and a note when numba's simulator stands in for one)."""
    from tinylm.kernels.backend import cuda_missing, cuda_simulated, get_kernels

    if device == "cuda":
        problem = cuda_missing()
        if problem is not None:
            raise UsageError(f"--device cuda: {problem}")
        if cuda_simulated():
            note("--device cuda runs in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): correct, and very slow")
    return get_kernels(device)


def load_checkpoint(path, *, need_tokenizer: bool = True, device: str = "cpu"):
    """load(path) onto --device; unless told otherwise, refusing a directory without a tokenizer (the CLI
    speaks text)."""
    from ..checkpoint import load

    kernels = kernels_for(device)  # before reading the weights: a missing GPU is said at once
    model = load(path, kernels=kernels)
    if need_tokenizer and model.tokenizer is None:
        raise UsageError(
            f"{path} has weights but no tokenizer (tokenizer.json, or vocab.json + merges.txt); copy the model's "
            f"tokenizer files into it to turn text into tokens (`tinylm info {path}` works without them)"
        )
    return model


# ----- generate -----------------------------------------------------------------------------------


# ----- parser and entry point ---------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    """1:05, or 1:02:03 past an hour."""
    s = int(round(max(seconds, 0.0)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_count(n: float) -> str:
    """18.3k, 1.2M."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"


def plural(n: int, word: str) -> str:
    """'1 layer', '4 layers'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def fmt_bytes(n: float) -> str:
    for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.1f} {suffix}"
    return f"{int(n)} B"
