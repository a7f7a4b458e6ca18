"""The `tinylm` command: train, generate, inspect, info (and bench, when core/bench.py exists).

Every user mistake surfaces as one line `tinylm: error: <message>` on stderr and exit status 2;
Ctrl-C exits with 130. A `bench` module joins by defining `add_bench_parser(subparsers)`, whose
parser sets `func=<callable(args) -> int | None>` with `set_defaults`.
"""

from __future__ import annotations

import argparse
import codecs
import os
import sys

from .errors import TinyLMError

EXIT_USAGE = 2  # bad input, as argparse uses
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class UsageError(TinyLMError):
    """A command-line value the CLI itself rejects (out of range, conflicting flags)."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message instead of the usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"tinylm: error: {message} (see '{self.prog} --help')\n")


# ----- small helpers shared by the subcommands ----------------------------------------------------


def note(message: str) -> None:
    """A one-line remark on stderr, so stdout stays clean for text and logs."""
    print(f"tinylm: {message}", file=sys.stderr, flush=True)


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


def show_token(text: str, width: int = 10) -> str:
    """A token's text made visible on one line: space as ␣, newline as \\n, long ones cut with …."""
    out = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r").replace(" ", "␣")
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in out)
    return out if len(out) <= width else out[: width - 1] + "…"


def token_label(tokenizer, id: int, quoted: bool = False) -> str:
    """A token's text (quoted: as a Python literal); a BPE token holding part of a UTF-8 character
    shows its bytes: r\\xc3, or b'r\\xc3' quoted."""
    if tokenizer.kind == "bpe":
        raw = tokenizer.token_bytes(id)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return repr(raw) if quoted else repr(raw)[2:-1]
    else:
        text = tokenizer.token_text(id)
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


def load_checkpoint(path):
    """load(path), refusing a weights-only directory without a tokenizer (the CLI speaks text)."""
    from .checkpoint import load

    model = load(path)
    if model.tokenizer is None:
        raise UsageError(f"{path} has no tokenizer file; tinylm's CLI needs one to turn text into tokens")
    return model


# ----- generate -----------------------------------------------------------------------------------

GENERATE_EXAMPLES = """
examples:
  tinylm generate runs/fables-char --prompt "The Fox" --tokens 300
  tinylm generate runs/fables-char --temperature 0.8 --top-k 20 --seed 1
  tinylm generate runs/fables-char --prompt "Once" --greedy
"""


def add_generate_parser(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="write text with a trained model, token by token",
        description="Stream text from a checkpoint, token by token, after an optional prompt.",
        epilog=GENERATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint directory written by `tinylm train`")
    p.add_argument("--prompt", help="text to continue (default: a newline); longer than the context keeps its end")
    p.add_argument("--tokens", type=non_negative_int, default=200, metavar="N", help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, help="below 1 sharper, above 1 flatter (default 1.0)")
    p.add_argument(
        "--top-k", type=non_negative_int, default=0, metavar="K", help="sample among the K likeliest (default 0: all)"
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        metavar="P",
        help="sample among the smallest set whose probability reaches P (default 1: all)",
    )
    p.add_argument("--greedy", action="store_true", help="always take the likeliest token")
    p.add_argument("--seed", type=int, help="seed the sampler for reproducible text (default: fresh)")
    p.set_defaults(func=run_generate)


def run_generate(args) -> int:
    from .sampling import Sampling

    sampling = Sampling(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, greedy=args.greedy, seed=args.seed
    )
    if not args.greedy:
        sampling.validate()
    model = load_checkpoint(args.checkpoint)
    if args.prompt is not None:
        check_prompt(model, args.prompt)
        prompt, shown = args.prompt, args.prompt
    else:
        prompt = default_prompt_ids(model)
        shown = model.tokenizer.decode(prompt)
    out = sys.stdout
    out.write(shown)
    out.flush()
    # BPE tokens are bytes that may split a character: decode them incrementally.
    utf8 = codecs.getincrementaldecoder("utf-8")("replace") if model.tokenizer.kind == "bpe" else None
    for step in model.generate(prompt, sampling, max_new_tokens=args.tokens):
        text = utf8.decode(model.tokenizer.token_bytes(step.id)) if utf8 else step.text
        out.write(text)
        out.flush()
    if utf8:
        out.write(utf8.decode(b"", final=True))
    out.write("\n")
    out.flush()
    return 0


# ----- parser and entry point ---------------------------------------------------------------------

MAIN_EXAMPLES = """
examples:
  tinylm train                                  # the default corpus, nanoGPT's "baby" settings
  tinylm train --corpus verses --steps 500 --out runs/verses
  tinylm train --corpus my.txt --tokenizer bpe --vocab-size 512
  tinylm train --resume runs/verses             # continue a run stopped with Ctrl-C
  tinylm generate runs/verses --prompt "The moon" --tokens 300
  tinylm inspect runs/verses --prompt "The moon"
  tinylm info runs/verses

Run `tinylm COMMAND --help` for every option of a command.
"""


def build_parser() -> Parser:
    from importlib.metadata import PackageNotFoundError, version

    from . import cli_inspect, cli_train

    try:
        ver = version("tinylm-tui")
    except PackageNotFoundError:
        ver = "unknown"
    parser = Parser(
        prog="tinylm",
        description="Train, run and look inside a small GPT-2, in numpy and Numba.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tinylm {ver}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    cli_train.add_train_parser(sub)
    add_generate_parser(sub)
    cli_inspect.add_inspect_parser(sub)
    cli_inspect.add_info_parser(sub)
    _add_bench_parser(sub)
    return parser


def _add_bench_parser(sub) -> None:
    """`tinylm bench` comes from core/bench.py when it exists; the CLI works without it."""
    try:
        from .bench import add_bench_parser
    except ModuleNotFoundError as exc:
        if exc.name in ("tinylm.core.bench", __package__ + ".bench"):
            return  # not written yet
        error = f"tinylm bench is unavailable: {exc}"
    except ImportError as exc:
        error = f"tinylm bench is unavailable: {exc}"
    else:
        add_bench_parser(sub)
        return

    def unavailable(args):
        raise UsageError(error)

    sub.add_parser("bench", help="benchmarks (unavailable here)").set_defaults(func=unavailable)


def main(argv: list[str] | None = None) -> int:
    """Run the `tinylm` command line; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):
        try:  # a terminal without UTF-8 gets escapes instead of a UnicodeEncodeError mid-run
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except TinyLMError as exc:
        print(f"tinylm: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ntinylm: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `tinylm generate ... | head`: the reader left; stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except OSError as exc:  # a path the user gave that cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        print(f"tinylm: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
