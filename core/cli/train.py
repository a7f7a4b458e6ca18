"""`tinylm train`: every ModelConfig/TrainConfig setting as a flag, a progress line, Ctrl-C saves."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np

from ..config import ModelConfig, TrainConfig
from ..corpus import DEFAULT_CORPUS, builtin_corpora
from ..errors import ConfigError, CorpusError
from ..files import NotReadable, read_json_text
from ..tokenizers import TOKENIZERS
from .common import EXIT_INTERRUPTED, UsageError, add_device_argument, kernels_for, note, positive_int, printable
from .saving import JsonLog, check_out, check_space, fingerprint, save_or_rescue

DEFAULT_TOKENIZER = "char"

M, TC = ModelConfig(), TrainConfig()

# flag -> (config, field): the flags that shape a run and cannot change when resuming it
MODEL_FLAGS = {
    "layers": "n_layer",
    "heads": "n_head",
    "embd": "n_embd",
    "context": "block_size",
    "positional": "positional",
    "dropout": "dropout",
    "attention": "attention",  # set by --no-attention
}
TRAIN_FLAGS = {
    "batch_size": "batch_size",
    "steps": "max_steps",
    "lr": "learning_rate",
    "min_lr": "min_lr",
    "warmup": "warmup_steps",
    "decay_steps": "lr_decay_steps",
    "weight_decay": "weight_decay",
    "beta1": "beta1",
    "beta2": "beta2",
    "grad_clip": "grad_clip",
    "eval_interval": "eval_interval",
    "eval_batches": "eval_batches",
    "val_fraction": "val_fraction",
    "seed": "seed",
}


def flag_name(dest: str) -> str:
    """The command-line spelling of an argument's destination (attention is set by --no-attention)."""
    return "--no-attention" if dest == "attention" else "--" + dest.replace("_", "-")


FIELD_FLAG = {field: flag_name(flag) for flag, field in {**MODEL_FLAGS, **TRAIN_FLAGS}.items()}
SAMPLE_CHARS = 200
FINETUNE_LR = 1e-4  # a pretrained model is nudged, not rebuilt: the from-scratch 1e-3 would wreck GPT-2

TRAIN_EXAMPLES = """
examples:
  tinylm train                                   # default corpus, 4 layers x 4 heads x 128 wide, 2000 steps
  tinylm train --corpus verses --steps 500       # a built-in corpus by name
  tinylm train --corpus ../shared/data/tinyshakespeare.txt --out runs/shakespeare
  tinylm train --text "the cat sat on the mat. " --context 8 --steps 200
  tinylm train --tokenizer bpe --vocab-size 512 --layers 2 --embd 64
  tinylm train --resume runs/fables-char         # continue exactly where Ctrl-C stopped
  tinylm train --init gpt2/ --corpus my.txt --context 128 --batch-size 4 --steps 200   # fine-tune GPT-2
  tinylm train --resume runs/fables-char --steps 4000   # train an old run longer (at min-lr)
  tinylm train --steps 100 --json-log steps.jsonl --quiet

Progress goes to stdout: one updating line on a terminal, plain lines otherwise. Ctrl-C stops after
the current step and saves a checkpoint that --resume continues.
"""


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a corpus and save a checkpoint",
        description="Train a GPT-2 from scratch. Defaults are nanoGPT's 'baby' Shakespeare settings.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    src = data.add_mutually_exclusive_group()
    names = ", ".join(name for name, _ in builtin_corpora())
    src.add_argument(
        "--corpus",
        metavar="NAME|PATH",
        help=f"built-in corpus ({names}; default {DEFAULT_CORPUS}) or the path of a UTF-8 text file",
    )
    src.add_argument("--text", metavar="TEXT", help="train on this text instead of a corpus")
    kinds = [k for k in TOKENIZERS if k.trains]
    data.add_argument(
        "--tokenizer",
        choices=[k.name for k in kinds],
        help="; ".join(f"{k.name}: {k.description}" for k in kinds) + f" (default {DEFAULT_TOKENIZER})",
    )
    sized = [k for k in kinds if k.takes_vocab_size]
    data.add_argument(
        "--vocab-size",
        type=positive_int,
        metavar="N",
        help=f"vocabulary size for {' and '.join(k.name for k in sized)} "
        f"(default {', '.join(f'{k.default_vocab} {k.name}' for k in sized)}); the others ignore it",
    )
    data.add_argument(
        "--val-fraction", type=float, metavar="F", help=f"share held out for validation (default {TC.val_fraction})"
    )

    model = p.add_argument_group("model")
    model.add_argument("--layers", type=int, metavar="L", help=f"transformer blocks (default {M.n_layer})")
    model.add_argument(
        "--heads", type=int, metavar="NH", help=f"attention heads, must divide --embd (default {M.n_head})"
    )
    model.add_argument("--embd", type=int, metavar="C", help=f"embedding width (default {M.n_embd})")
    model.add_argument("--context", type=int, metavar="T", help=f"context length in tokens (default {M.block_size})")
    model.add_argument("--positional", choices=("learned", "sincos"), help="position embeddings (default learned)")
    model.add_argument("--dropout", type=float, metavar="P", help=f"dropout while training (default {M.dropout})")
    model.add_argument(
        "--no-attention",
        dest="attention",
        action="store_const",
        const=False,
        help="MLP-only blocks, no attention at all: each token's prediction sees that token alone "
        "(saved as a GPT-2 whose attention weights are zeros)",
    )
    model.add_argument(
        "--dtype", choices=("float32", "float64"), help="training precision (default float32; checkpoints are float32)"
    )

    train = p.add_argument_group("training")
    train.add_argument("--batch-size", type=int, metavar="B", help=f"windows per step (default {TC.batch_size})")
    train.add_argument(
        "--steps", type=int, metavar="N", help=f"optimizer steps (default {TC.max_steps}); with --resume, the new total"
    )
    train.add_argument("--lr", type=float, help=f"peak learning rate (default {TC.learning_rate:g})")
    train.add_argument("--min-lr", type=float, help=f"floor of the cosine decay (default --lr / 10 = {TC.min_lr:g})")
    train.add_argument(
        "--warmup",
        type=int,
        metavar="N",
        help=f"linear warmup steps (default {TC.warmup_steps}, or --steps / 10 when smaller)",
    )
    train.add_argument(
        "--decay-steps", type=int, metavar="N", help="step where the cosine decay ends (default --steps)"
    )
    train.add_argument(
        "--weight-decay", type=float, metavar="WD", help=f"AdamW decay of 2-D weights (default {TC.weight_decay})"
    )
    train.add_argument("--beta1", type=float, help=f"AdamW beta1 (default {TC.beta1})")
    train.add_argument("--beta2", type=float, help=f"AdamW beta2 (default {TC.beta2})")
    train.add_argument(
        "--grad-clip", type=float, metavar="G", help=f"clip the gradient norm, 0 = off (default {TC.grad_clip})"
    )
    train.add_argument(
        "--eval-interval",
        type=int,
        metavar="N",
        help=f"steps between validations (default {TC.eval_interval}, or --steps / 8 when smaller)",
    )
    train.add_argument(
        "--eval-batches", type=int, metavar="N", help=f"batches per validation (default {TC.eval_batches})"
    )
    train.add_argument("--seed", type=int, help=f"seed for weights, batches and the sample (default {TC.seed})")

    run = p.add_argument_group("run")
    run.add_argument(
        "--out",
        metavar="DIR",
        help="checkpoint directory (default runs/<corpus>-<tokenizer>, "
        "a fresh one if taken; with --resume, the resumed directory); one that holds another run is refused",
    )
    run.add_argument("--overwrite", action="store_true", help="let --out replace a checkpoint of another run")
    run.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR exactly")
    run.add_argument(
        "--init",
        metavar="DIR",
        help="fine-tune: start from the model in DIR (a tinylm checkpoint or any Hugging Face GPT-2 directory) "
        "with its tokenizer and shape; --context may be shorter than its own; default --lr "
        f"{FINETUNE_LR:g}",
    )
    run.add_argument(
        "--threads", type=positive_int, metavar="N", help="cap BLAS and Numba threads (default: the libraries' own)"
    )
    add_device_argument(run)
    run.add_argument("--quiet", action="store_true", help="print only where the checkpoint went")
    run.add_argument(
        "--json-log", metavar="FILE", help="write one JSON line of metrics per step (appended to with --resume)"
    )
    p.set_defaults(func=run_train)


# ----- building the run ---------------------------------------------------------------------------


def _given(args, names) -> list[str]:
    return [n for n in names if getattr(args, n) is not None]


def configs_from_args(args) -> tuple[ModelConfig, TrainConfig]:
    """ModelConfig and TrainConfig from the flags; unset flags keep the dataclass defaults."""
    mc = ModelConfig(**{MODEL_FLAGS[flag]: getattr(args, flag) for flag in _given(args, MODEL_FLAGS)})
    tc = TrainConfig(**{TRAIN_FLAGS[flag]: getattr(args, flag) for flag in _given(args, TRAIN_FLAGS)})
    if args.lr is not None and args.min_lr is None:
        tc.min_lr = args.lr / 10  # nanoGPT's convention, and the defaults' ratio
    if args.steps is not None:  # short runs still warm up and get evaluated along the way
        if args.warmup is None:
            tc.warmup_steps = min(TC.warmup_steps, max(args.steps, 0) // 10)
        if args.eval_interval is None:
            tc.eval_interval = min(TC.eval_interval, max(1, args.steps // 8))
    for cfg in (mc, tc):
        try:
            cfg.validate()
        except ConfigError as exc:
            raise ConfigError(_with_flags(str(exc))) from None
    return mc, tc


def _with_flags(message: str) -> str:
    """Name the command-line flag beside each config field a message mentions."""
    words = re.findall(r"[a-z_0-9]+", message)
    flags = ", ".join(dict.fromkeys(FIELD_FLAG[w] for w in words if w in FIELD_FLAG))
    return f"{message} (flag {flags})" if flags else message


def _corpus_from_args(args):
    from ..corpus import DEFAULT_CORPUS, Corpus, load_corpus

    if args.text is not None:
        return Corpus.from_text(args.text)
    return load_corpus(args.corpus if args.corpus is not None else DEFAULT_CORPUS)


def _default_out(corpus, kind: str) -> Path:
    stem = Path(corpus.name).stem if corpus.source == "file" else corpus.name
    base = Path("runs") / f"{stem}-{kind}"
    out, n = base, 1
    while out.exists() and not (out.is_dir() and not any(out.iterdir())):
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _resume(args):
    """A trainer continuing the run in --resume, with only --steps allowed to change."""
    from ..trainer import Trainer

    fixed = _given(args, [*MODEL_FLAGS, *[f for f in TRAIN_FLAGS if f != "steps"], "tokenizer", "vocab_size", "dtype"])
    if fixed:
        flags = ", ".join(flag_name(f) for f in fixed)
        raise UsageError(
            f"{flags} cannot change when resuming: the run continues with its saved settings "
            "(only --steps may grow); start a new run to change them"
        )
    corpus = None if args.corpus is None and args.text is None else _corpus_from_args(args)
    if corpus is None and _saved_corpus(args.resume).get("source") == "text":
        raise UsageError(f"{args.resume} was trained on typed text; pass the same --text to resume it")
    try:
        trainer = Trainer.resume(args.resume, corpus, kernels=args.kernels)
    except CorpusError as exc:
        raise CorpusError(
            f"cannot open the corpus {args.resume} was trained on ({exc}); pass it with --corpus PATH"
        ) from None
    if args.steps is not None:
        c = trainer.config
        if args.steps < trainer.step_count:
            raise UsageError(f"--steps {args.steps} is fewer than the {trainer.step_count} steps already done")
        if args.steps != c.max_steps:
            if c.lr_decay_steps is None:
                c.lr_decay_steps = c.max_steps  # keep the schedule of the steps done; later steps run at min_lr
            # said on stdout with the run's description, so that stderr holds only an error, if any
            args.extended = (
                f"longer      training to step {args.steps} (was {c.max_steps}); the learning rate stays at "
                f"{c.min_lr:g} after step {c.decay_steps}"
            )
            c.max_steps = args.steps
    return trainer


def _init(args):
    """A trainer fine-tuning the model in --init: its tokenizer and shape are fixed, training flags apply."""
    from ..run import finetune_trainer

    fixed = _given(args, [f for f in MODEL_FLAGS if f not in ("context", "dropout")] + ["tokenizer", "vocab_size"])
    if fixed:
        flags = ", ".join(flag_name(f) for f in fixed)
        raise UsageError(
            f"{flags} cannot be set with --init: the model in {args.init} keeps its own tokenizer and shape"
        )
    if args.lr is None:
        args.lr = FINETUNE_LR
    _, tc = configs_from_args(args)
    tc.context = args.context
    corpus = _corpus_from_args(args)
    dtype = np.float64 if args.dtype == "float64" else np.float32
    return finetune_trainer(args.init, corpus, tc, dropout=args.dropout, dtype=dtype, kernels=args.kernels), corpus


def _saved_corpus(path) -> dict:
    """The corpus record in a checkpoint's config.json, or {} (a damaged file is reported by resume)."""
    try:
        record = json.loads(read_json_text(Path(path) / "config.json"))["tinylm"]["corpus"]
    except (OSError, ValueError, KeyError, TypeError, NotReadable):
        return {}
    return record if isinstance(record, dict) else {}


def _resume_command(out: Path, corpus, corpus_arg: str | None) -> str:
    cmd = f"tinylm train --resume {shlex.quote(str(out))}"
    if corpus.source == "file":
        cmd += f" --corpus {shlex.quote(corpus_arg or corpus.name)}"
    elif corpus.source == "text":
        cmd += ' --text "<the same text>"'
    return cmd


# ----- running it ---------------------------------------------------------------------------------


def run_train(args) -> int:
    from .progress import Progress, StopOnCtrlC, describe_run, sample_text

    if args.threads is not None:
        from ..threads import limit_threads

        limit_threads(args.threads)
    if args.resume is not None and args.init is not None:
        raise UsageError("--init and --resume cannot be combined: --resume continues a run, --init starts one")
    args.kernels = kernels_for(args.device)  # a GPU that cannot be used is said before anything else is done
    if args.resume is not None:
        out = Path(args.out) if args.out is not None else Path(args.resume)
        check_out(out, overwrite=args.overwrite, resumed=Path(args.resume))
        trainer = _resume(args)
    elif args.init is not None:
        trainer, corpus = _init(args)
        out = Path(args.out) if args.out is not None else _default_out(corpus, Path(args.init).resolve().name)
        check_out(out, overwrite=args.overwrite)
    else:
        from ..run import make_trainer

        mc, tc = configs_from_args(args)
        corpus = _corpus_from_args(args)
        if args.out is not None:
            out = Path(args.out)
        else:
            out = _default_out(corpus, args.tokenizer or DEFAULT_TOKENIZER)
        check_out(out, overwrite=args.overwrite)
        dtype = np.float64 if args.dtype == "float64" else np.float32
        trainer = make_trainer(
            corpus, args.tokenizer or DEFAULT_TOKENIZER, args.vocab_size, mc, tc, dtype=dtype, kernels=args.kernels
        )
    if trainer.done:
        note(
            f"{args.resume} has already trained {trainer.step_count} of {trainer.config.max_steps} steps; "
            "give --steps with a larger total to train longer"
        )
        return 0
    check_space(out, trainer)
    before = fingerprint(out)
    if not args.quiet:
        for line in describe_run(trainer, out, resumed=args.resume is not None, init=args.init):
            print(line)
        if getattr(args, "extended", None):
            print(args.extended)
    log = JsonLog(args.json_log, append=args.resume is not None)
    log.logged = trainer.step_count
    progress = Progress(sys.stdout, quiet=args.quiet)
    start_step = trainer.step_count
    interrupted = False
    try:
        with StopOnCtrlC() as stop:
            try:
                while not trainer.done:
                    if stop.requested:
                        raise KeyboardInterrupt
                    metrics = trainer.step()
                    log.write([metrics])
                    progress.update(metrics)
            except KeyboardInterrupt:
                # A second Ctrl-C inside a step arrives at a step boundary (see Trainer.step); a step
                # whose evaluation it cut short is in the history but was not returned: log it too.
                interrupted = True
                log.write(trainer.history)
            progress.close()
            stop.saving = True  # from here a Ctrl-C only says that the save is under way
            if interrupted and trainer.step_count == start_step:
                note("interrupted before the first step finished; nothing saved")
                return EXIT_INTERRUPTED
            out = save_or_rescue(trainer, out, before, args.overwrite)
    finally:
        progress.close()
        log.close()
    if interrupted:
        note(
            f"interrupted at step {trainer.step_count}/{trainer.config.max_steps}; saved to {out}; "
            f"resume with: {_resume_command(out, trainer.corpus, args.corpus)}"
        )
        return EXIT_INTERRUPTED
    print(f"saved checkpoint to {printable(str(out))}")
    trainer.release_buffers()  # the sample below needs none of them: keep the process's peak the training's
    if not args.quiet:
        print(f"--- sample ({SAMPLE_CHARS} characters, temperature 0.8, seed {trainer.config.seed}) ---")
        print(sample_text(trainer, SAMPLE_CHARS))
    return 0
