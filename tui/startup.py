"""Work done off the UI thread when the app starts: load a corpus or checkpoint, build the model, warm kernels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The default run trains to recognisable text in about 10 s on 2 cores (600 steps, val loss 1.47: measured with
# `tinylm train` and these settings, 2026-11-25; the dashboard trains at 88-94% of that speed).
DEFAULT_TOKENIZER = "char"
DEFAULT_MODEL = dict(n_layer=2, n_head=4, n_embd=64, block_size=64, dropout=0.0, positional="learned")
DEFAULT_TRAIN = dict(batch_size=16, learning_rate=3e-3, max_steps=600, warmup_steps=30, weight_decay=0.1, seed=1337)
FINETUNE_CONTEXT = 128  # longest training window when fine-tuning a pretrained model
FINETUNE_BATCH = 8
EVAL_POINTS = 10  # validation runs per training run
EVAL_BATCHES = 8  # batches per validation run: ten runs of 8 cost about 5% of the training time


@dataclass
class Built:
    """A model ready to show: its trainer (None for a checkpoint without one), corpus and origin."""

    model: Any
    trainer: Any
    corpus: Any
    checkpoint: str | None = None
    history: Any = None  # the training history of a checkpoint opened without its trainer (else the trainer's)


def default_configs(**overrides: Any):
    """ModelConfig and TrainConfig of the default run, with some fields replaced."""
    from tinylm.core import ModelConfig, TrainConfig

    model_keys = {k: v for k, v in overrides.items() if k in DEFAULT_MODEL}
    train_keys = {k: v for k, v in overrides.items() if k in DEFAULT_TRAIN}
    mc = ModelConfig(**{**DEFAULT_MODEL, **model_keys})
    tc = TrainConfig(**{**DEFAULT_TRAIN, **train_keys})
    return mc, set_eval_schedule(tc)


def set_eval_schedule(tc):
    """Evaluate EVAL_POINTS times per run (and at the last step), whatever the number of steps."""
    if isinstance(tc.max_steps, int) and tc.max_steps > 0:
        tc.eval_interval = max(tc.max_steps // EVAL_POINTS, 1)
    tc.eval_batches = EVAL_BATCHES
    return tc


def build_trainer(
    corpus, tokenizer_kind: str = DEFAULT_TOKENIZER, vocab_size: int | None = None, model_config=None, train_config=None
):
    """A fresh trainer (and model) on this corpus; raises TinyLMError subclasses with one-line messages."""
    from tinylm.core import make_trainer

    mc, tc = default_configs()
    return make_trainer(corpus, tokenizer_kind, vocab_size, model_config or mc, train_config or tc)


def build(corpus_arg: str | None = None, checkpoint: str | None = None) -> Built:
    """The model the app opens with: a checkpoint when given, else a fresh default model on the corpus.
    A checkpoint with trainer state resumes; weights only (any GPT-2 directory) open to be looked at, and
    with a corpus given they are fine-tuned on it."""
    from tinylm.core import DEFAULT_CORPUS, CheckpointError, Trainer, finetune_trainer, load, load_corpus, load_history

    if checkpoint:
        corpus = load_corpus(corpus_arg) if corpus_arg else None
        try:  # with trainer state and its corpus, training can continue exactly
            trainer = Trainer.resume(checkpoint, corpus)
        except CheckpointError:  # weights only, or the corpus is gone: still shows and generates
            trainer = None
        if trainer is not None:
            check_viewable(trainer.model, checkpoint)
            return Built(trainer.model, trainer, getattr(trainer, "corpus", corpus), checkpoint)
        if corpus is not None and not _has_trainer_state(checkpoint):
            _, tc = default_configs()
            trainer = finetune_trainer(checkpoint, corpus, finetune_config(tc), max_context=FINETUNE_CONTEXT)
            return Built(trainer.model, trainer, corpus)  # no checkpoint: saving must not overwrite the original
        model = load(checkpoint)
        if model.tokenizer is None:
            raise CheckpointError(
                f"{checkpoint} has weights but no tokenizer (tokenizer.json, or vocab.json + merges.txt); "
                "the dashboard shows text, so copy the model's tokenizer files into it"
            )
        check_viewable(model, checkpoint)
        try:  # its training history can still be scrubbed (a damaged one is left out: the weights still open)
            history = load_history(checkpoint, model)
        except CheckpointError:
            history = None
        return Built(model, None, corpus, checkpoint, history)
    corpus = load_corpus(corpus_arg or DEFAULT_CORPUS)
    trainer = build_trainer(corpus)
    return Built(trainer.model, trainer, corpus)


def check_viewable(model, where: str) -> None:
    """Refuse a model whose forward pass overflows (every probability would be NaN): a CheckpointError
    naming the directory and the largest weight, so the app opens on the default model instead."""
    import numpy as np

    from tinylm.core import CheckpointError, TinyLMError

    ids = model.tokenizer.encode("The ")[: model.config.block_size] if model.tokenizer is not None else []
    if len(ids) == 0:
        ids = np.zeros(1, dtype=np.int64)
    try:
        with np.errstate(all="ignore"):
            finite = bool(np.all(np.isfinite(model.next_token_probs(np.asarray(ids, dtype=np.int64)))))
    except TinyLMError:
        finite = False
    if not finite:
        largest = max(float(np.abs(p).max()) for p in model.params.values() if p.size)
        raise CheckpointError(
            f"{where}: the forward pass overflows (largest weight magnitude {largest:.3g}), so every "
            "probability would be NaN; the weights are damaged"
        )


def _has_trainer_state(checkpoint) -> bool:
    from pathlib import Path

    return (Path(checkpoint) / "trainer_state.json").exists()


def finetune_config(tc):
    """Training settings for fine-tuning a pretrained model: a tenth of the from-scratch learning rate
    and batches of at most 8 (with windows of at most FINETUNE_CONTEXT tokens: a model's own context,
    such as GPT-2's 1,024, would need gigabytes of activations)."""
    tc.learning_rate, tc.min_lr = tc.learning_rate / 10, tc.min_lr / 10
    tc.batch_size = min(tc.batch_size, FINETUNE_BATCH)
    return tc


def warm_up_in_subprocess(timeout: float = 600) -> str:
    """Compile the kernels into Numba's on-disk cache in a child process; returns "" or an error message.

    Compiling holds the GIL inside LLVM for seconds at a time, which would freeze the screen if done in a
    thread of the app; a child process (plain subprocess: multiprocessing breaks under Textual) cannot.
    """
    import subprocess
    import sys

    code = "from tinylm.tui.startup import warm_up; warm_up()"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["warm-up failed"])[-1]


def warm_up(every_path: bool = True) -> None:
    """Compile (or load from Numba's cache) every kernel the app can call: with and without dropout,
    in one piece and in row shards, the serial compilations and (when this process may use them) the
    parallel ones; one trace and one generated token. The settings it turns to reach every path with
    a tiny model are put back before it returns.

    In the app's own process (every_path=False) only the one-piece serial path runs, to load the
    common kernels from the cache the child process wrote: running row shards there from the startup
    thread left the dashboard's training at half speed (measured in tmux, cause not found), and the
    rest loads from the cache in milliseconds on first use."""
    from tinylm.core import Corpus, ModelConfig, Sampling, TrainConfig, kernel_settings, make_trainer, parallel_allowed

    corpus = Corpus.from_text("the quick brown fox jumps over the lazy dog. " * 20)
    serial = dict(parallel=False)
    phases = [(1, serial)]  # (threads, kernel settings): one piece, serial kernels
    if every_path:
        phases.append((2, serial))  # row shards
        if parallel_allowed():
            phases.append((1, dict(parallel=True, min_parallel_work=0)))  # the parallel compilations
    for dropout in (0.1, 0.0):
        trainer = make_trainer(
            corpus,
            "char",
            model_config=ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=8, dropout=dropout),
            train_config=TrainConfig(batch_size=2, max_steps=4, warmup_steps=0, eval_interval=1, eval_batches=1),
        )
        trainer.min_shard_flops = 0  # split even this tiny batch when there are threads to split it
        for threads, settings in phases:
            trainer.threads = threads
            with kernel_settings(**settings):
                trainer.step()
                trainer.model.trace("the fox")
                next(iter(trainer.model.generate("the", Sampling(seed=0), max_new_tokens=1)))
