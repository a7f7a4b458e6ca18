"""`tinylm info`: a checkpoint's card (config, size, tokenizer, corpus, training history)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..config import LN_EPS, TrainConfig, config_from_dict
from ..errors import ConfigError
from ..files import NotReadable, read_json_text
from .common import add_checkpoint_argument, fmt_bytes, load_checkpoint, plural

SPARK = "▁▂▃▄▅▆▇█"


INFO_EXAMPLES = """
examples:
  tinylm info runs/fables-char
"""


def add_info_parser(sub) -> None:
    p = sub.add_parser(
        "info",
        help="describe a checkpoint: model, tokenizer, corpus, training history",
        description="Describe a checkpoint: its model, tokenizer, corpus and training history.",
        epilog=INFO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_checkpoint_argument(p)
    p.set_defaults(func=run_info)


def sparkline(values: list[float], width: int = 40) -> str:
    """Values as ▁..█, averaged into at most `width` buckets, low to high between their min and max."""
    if not values:
        return ""
    v = np.asarray(values, dtype=np.float64)
    if v.size > width:
        v = np.array([chunk.mean() for chunk in np.array_split(v, width)])
    lo, hi = v.min(), v.max()
    scale = (len(SPARK) - 1) / (hi - lo) if hi > lo else 0.0
    return "".join(SPARK[int(round((x - lo) * scale))] for x in v)


def run_info(args) -> int:
    from ..checkpoint import CONFIG_FILE, STATE_FILE

    path = Path(args.checkpoint)
    model = load_checkpoint(path, need_tokenizer=False)  # validates every file: a damaged one is an error
    cfg, tok = model.config, model.tokenizer
    extra = json.loads(read_json_text(path / CONFIG_FILE)).get("tinylm")
    extra = extra if isinstance(extra, dict) else {}
    files = [f for f in path.rglob("*") if f.is_file()]
    sizes = ", ".join(f"{f.name} {fmt_bytes(f.stat().st_size)}" for f in sorted(files))
    rows = [
        ("checkpoint", f"{path}  ({fmt_bytes(sum(f.stat().st_size for f in files))} on disk: {sizes})"),
        (
            "model",
            f"GPT-2, {plural(cfg.n_layer, 'layer')}, {plural(cfg.n_head, 'head')} (head size {cfg.head_size}), "
            f"{cfg.n_embd} wide, context {cfg.block_size}, {cfg.positional} positions"
            + ("" if cfg.attention else ", MLP only (no attention)")
            + (f", dropout {cfg.dropout:g}" if cfg.dropout else "")
            + (f", LayerNorm epsilon {cfg.layer_norm_epsilon:g}" if cfg.layer_norm_epsilon != LN_EPS else ""),
        ),
        ("parameters", f"{cfg.num_params():,}"),
        ("tokenizer", _tokenizer_row(tok, cfg)),
    ]
    corpus = extra.get("corpus")
    if isinstance(corpus, dict) and corpus:
        chars = corpus.get("chars")
        rows.append(
            (
                "corpus",
                f"{corpus.get('name')} ({corpus.get('source')}), "
                f"{f'{chars:,}' if isinstance(chars, int) else '?'} characters, "
                f"sha256 {str(corpus.get('sha256', ''))[:16]}…",
            )
        )
    train = extra.get("train")
    try:
        t = config_from_dict(TrainConfig, train).validate() if isinstance(train, dict) else None
    except ConfigError as exc:
        t = None
        rows.append(("training", f"settings unreadable ({exc}); the run cannot resume"))
    if t is not None:
        rows.append(
            (
                "training",
                f"batch {t.batch_size}, lr {t.learning_rate:g} -> {t.min_lr:g} (warmup "
                f"{t.warmup_steps}, decay to step {t.decay_steps}), weight decay {t.weight_decay:g}, "
                f"betas {t.beta1:g}/{t.beta2:g}, clip {t.grad_clip:g}, seed {t.seed}"
                + (f", windows of {t.context} tokens" if t.context else ""),
            )
        )
        rows.append(("step", f"{extra.get('step', '?')} of {t.max_steps}"))
    history = _history(path / STATE_FILE)
    if history:
        last = history[-1]
        evals = [h for h in history if h.get("val_loss") is not None and h.get("accuracy") is not None]
        text = f"train loss {last['train_loss']:.4f} (step {last['step']})"
        if evals:
            e = evals[-1]
            text += f"; val loss {e['val_loss']:.4f}, accuracy {100 * e['accuracy']:.1f}% (step {e['step']})"
        rows.append(("last", text))
        losses = [h["train_loss"] for h in history]  # a long run's history is thinned: say which steps it spans
        span = f"steps {history[0]['step']}-{last['step']}"
        rows.append(
            (
                "train loss",
                f"{sparkline(losses)}  {losses[0]:.3f} -> {losses[-1]:.3f} over {span}",
            )
        )
        if len(evals) > 1:
            vals = [h["val_loss"] for h in evals]
            rows.append(
                (
                    "val loss",
                    f"{sparkline(vals)}  {vals[0]:.3f} -> {vals[-1]:.3f} over steps {evals[0]['step']}-{e['step']}",
                )
            )
        snapshots = _snapshot_steps(path)
        if snapshots:
            rows.append(("snapshots", f"{len(snapshots)} at steps {_steps_text(snapshots)} (history.json)"))
    elif not train:
        rows.append(
            ("training", f"none recorded (weights only; `tinylm train --init {path} --corpus FILE` fine-tunes it)")
        )
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _tokenizer_row(tok, cfg) -> str:
    if tok is None:
        return (
            f"none (vocabulary {cfg.vocab_size:,}; add tokenizer.json or vocab.json + merges.txt "
            "for generate and inspect)"
        )
    ends = f", end of text id {cfg.eos_token_id}" if cfg.eos_token_id is not None else ""
    return f"{tok.kind}, vocabulary {tok.vocab_size:,}{ends}"


def _snapshot_steps(path: Path) -> list[int]:
    """The steps of the training history's snapshots (history.json), or [] when absent (checked on opening)."""
    from ..history_file import HISTORY_JSON

    try:
        steps = json.loads(read_json_text(path / HISTORY_JSON)).get("steps")
    except (OSError, ValueError, AttributeError, NotReadable):
        return []
    return steps if isinstance(steps, list) and all(isinstance(s, int) for s in steps) else []


def _steps_text(steps: list[int], shown: int = 12) -> str:
    """'0, 1, 2, 4, ..., 600': the first steps and the last when there are many."""
    if len(steps) <= shown:
        return ", ".join(map(str, steps))
    return ", ".join(map(str, steps[: shown - 1])) + f", ..., {steps[-1]}"


def _history(state_file: Path) -> list[dict]:
    """The per-step metrics the trainer saved, or [] when absent or unreadable (info stays useful)."""
    try:
        history = json.loads(read_json_text(state_file)).get("history") or []
        return [h for h in history if isinstance(h, dict) and _numbers(h)]
    except (OSError, ValueError, AttributeError, TypeError, NotReadable):
        return []


def _numbers(h: dict) -> bool:
    """A history entry whose step and losses are numbers (a damaged one is left out of the summary)."""

    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)

    return (
        number(h.get("step"))
        and number(h.get("train_loss"))
        and all(h.get(k) is None or number(h.get(k)) for k in ("val_loss", "accuracy"))
    )
