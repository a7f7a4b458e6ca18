"""The `tinylm` command: train, generate, inspect, info and bench.

Every user mistake surfaces as one line `tinylm: error: <message>` on stderr and exit status 2;
Ctrl-C exits with 130. Each subcommand module adds its parser with `add_<name>_parser(subparsers)`,
whose parser sets `func=<callable(args) -> int | None>` with `set_defaults`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

from ..bench.main import add_bench_parser
from ..errors import CheckpointRecovered, TinyLMError
from .common import EXIT_INTERRUPTED, EXIT_USAGE, Parser, note, printable
from .generate import add_generate_parser
from .info import add_info_parser
from .inspect import add_inspect_parser
from .train import add_train_parser

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
    add_train_parser(sub)
    add_generate_parser(sub)
    add_inspect_parser(sub)
    add_info_parser(sub)
    add_bench_parser(sub)
    return parser


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
        with warnings.catch_warnings():
            warnings.simplefilter("always", CheckpointRecovered)
            warnings.showwarning = _notice_or(warnings.showwarning)
            return int(args.func(args) or 0)
    except TinyLMError as exc:
        print(f"tinylm: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:  # an allocation the checks before it did not foresee
        print("tinylm: error: out of memory; choose a smaller model, context or batch", file=sys.stderr)
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


def _notice_or(shown):
    """A warnings.showwarning that prints a recovered checkpoint as one `tinylm:` line, others as before."""

    def show(message, category, *rest, **kw):
        if issubclass(category, CheckpointRecovered):
            note(str(message))
        else:
            shown(message, category, *rest, **kw)

    return show


def _one_line(exc: Exception) -> str:
    """The message on one line, with control characters (from a path or a value the user gave, such as
    an escape sequence) written as escapes so that none reaches the terminal."""
    return printable(" ".join(str(exc).split()) or type(exc).__name__)


if __name__ == "__main__":
    sys.exit(main())
