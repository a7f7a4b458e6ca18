"""`tinylm-tui`: parse options, cap threads before numpy/numba load, then run the dashboard."""

from __future__ import annotations

import argparse
import os
import sys

from .screens.registry import key_range

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def default_threads() -> int:
    """Training threads: every core. A model big enough to split trains as one row shard per core,
    with BLAS and Numba serial inside each (nothing busy-waits next to the UI: key latency measured
    the same as with one thread); a smaller one keeps a core free (training_worker.py)."""
    return max(1, os.cpu_count() or 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tinylm-tui",
        description="Configure, train, inspect and run a small GPT-2 in the terminal. "
        f"Keys {key_range()} switch screens, ? lists every key.",
    )
    parser.add_argument("--corpus", metavar="PATH|NAME", help="a built-in corpus name or a text file to train on")
    parser.add_argument("--checkpoint", metavar="DIR", help="open a saved checkpoint directory")
    parser.add_argument("--theme", metavar="NAME", help="a Textual theme, e.g. textual-dark, nord, gruvbox")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help=f"threads for training (default {default_threads()}, all cores)",
    )
    return parser.parse_args(argv)


def fail(message: str) -> int:
    print(f"tinylm-tui: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = args.threads if args.threads is not None else default_threads()
    if threads < 1:
        return fail(f"--threads must be 1 or more, got {threads}")
    for var in THREAD_VARS:  # before numpy or numba is imported, so their pools start small
        os.environ.setdefault(var, str(threads))

    if args.checkpoint and not os.path.isdir(args.checkpoint):
        return fail(f"checkpoint {args.checkpoint!r} is not a directory")
    if args.corpus:
        from tinylm.core import CorpusError, TinyLMError, load_corpus  # after the thread caps

        try:
            load_corpus(args.corpus)  # fail fast, in one line, before the screen takes over the terminal
        except (CorpusError, TinyLMError, OSError) as exc:
            return fail(str(exc))
    from textual.theme import BUILTIN_THEMES

    if args.theme and args.theme not in BUILTIN_THEMES:
        return fail(f"unknown theme {args.theme!r}; choose one of {', '.join(sorted(BUILTIN_THEMES))}")

    from .app import create_app

    app = create_app(theme=args.theme, corpus=args.corpus, checkpoint=args.checkpoint, threads=threads)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
