"""The Config screen's fields: their labels and defaults, and turning typed values into validated configs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from ..safe_text import one_line
from ..startup import DEFAULT_MODEL, DEFAULT_TOKENIZER, DEFAULT_TRAIN, set_eval_schedule

DEFAULT_CHECKPOINT = "checkpoints/tinylm-tui"  # where a new model is saved unless the form says otherwise
FILE, TYPED = "(file)", "(typed)"  # corpus sources besides the built-in names


@dataclass(frozen=True)
class FieldSpec:
    """One typed setting: widget id, label, value type, default and the config attribute it sets."""

    id: str
    label: str
    type: type
    default: Any
    target: str  # "model" | "train" | "tokenizer"
    attr: str
    hint: str = ""


NUMBER_FIELDS = (
    FieldSpec("vocab", "vocab size", int, None, "tokenizer", "vocab_size", "word/bpe only; empty = auto"),
    FieldSpec("layers", "layers", int, DEFAULT_MODEL["n_layer"], "model", "n_layer", "transformer blocks"),
    FieldSpec("heads", "heads", int, DEFAULT_MODEL["n_head"], "model", "n_head", "attention heads per block"),
    FieldSpec("embd", "embedding", int, DEFAULT_MODEL["n_embd"], "model", "n_embd", "width C, divisible by heads"),
    FieldSpec("context", "context", int, DEFAULT_MODEL["block_size"], "model", "block_size", "tokens seen at once"),
    FieldSpec("dropout", "dropout", float, DEFAULT_MODEL["dropout"], "model", "dropout", "0 <= p < 1"),
    FieldSpec("batch", "batch size", int, DEFAULT_TRAIN["batch_size"], "train", "batch_size", "windows per step"),
    FieldSpec("lr", "learning rate", float, DEFAULT_TRAIN["learning_rate"], "train", "learning_rate", "peak"),
    FieldSpec("steps", "steps", int, DEFAULT_TRAIN["max_steps"], "train", "max_steps", "optimizer steps"),
    FieldSpec("warmup", "warmup", int, DEFAULT_TRAIN["warmup_steps"], "train", "warmup_steps", "linear lr ramp"),
    FieldSpec("decay", "weight decay", float, DEFAULT_TRAIN["weight_decay"], "train", "weight_decay", "AdamW"),
    FieldSpec("seed", "seed", int, DEFAULT_TRAIN["seed"], "train", "seed", "same seed, same run"),
)
FIELDS_BY_ID = {f.id: f for f in NUMBER_FIELDS}
MODEL_FIELDS = [f for f in NUMBER_FIELDS if f.target == "model"]
TRAIN_FIELDS = [f for f in NUMBER_FIELDS if f.target == "train"]
POSITIONAL_KINDS = ("learned", "sincos")
DEFAULTS = {"tokenizer": DEFAULT_TOKENIZER, "positional": DEFAULT_MODEL["positional"]}


class FieldError(ValueError):
    """A value that is not a number; carries the field id so the screen can mark it."""

    def __init__(self, field_id: str, message: str) -> None:
        super().__init__(message)
        self.field_id = field_id


def format_value(value: Any) -> str:
    """A default as the text its input starts with."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse(spec: FieldSpec, text: str) -> Any:
    """The typed text as the field's type; empty means the default; FieldError says what is wrong."""
    text = text.strip().replace("_", "")
    if not text:
        return spec.default
    try:
        return spec.type(text) if spec.type is float else int(text)
    except ValueError:
        kind = "a whole number" if spec.type is int else "a number"
        raise FieldError(spec.id, f"{spec.label}: {text!r} is not {kind}") from None


def in_form_words(message: str) -> str:
    """A config error in the words of the form: `n_embd 64` becomes `embedding 64`."""
    for spec in sorted(NUMBER_FIELDS, key=lambda f: -len(f.attr)):
        message = re.sub(rf"\b{spec.attr}\b", spec.label, message)
    return message


def which_field(message: str) -> str | None:
    """The field a ConfigError message is about (it names the config attribute first)."""
    hits = [(message.find(f.attr), f.id) for f in NUMBER_FIELDS if f.attr in message]
    return min(hits)[1] if hits else None


def attention_label(on: bool) -> str:
    """The attention switch's text: what the blocks hold, and the key that flips it."""
    return ("on" if on else "off: MLP only") + " · ctrl+n"


def build_configs(values: dict[str, str], positional: str, vocab_size: int | None = None, attention: bool = True):
    """(ModelConfig, TrainConfig, tokenizer vocab size) from the typed values; raises FieldError/ConfigError.
    attention False: MLP-only blocks (the switch for seeing what attention adds)."""
    from tinylm.core import ModelConfig, TrainConfig

    parsed = {f.id: parse(f, values.get(f.id, "")) for f in NUMBER_FIELDS}
    if parsed["seed"] < 0:
        raise FieldError("seed", f"seed: {parsed['seed']} is negative; use 0 or more")
    mc = ModelConfig(positional=positional, attention=attention, **{f.attr: parsed[f.id] for f in MODEL_FIELDS})
    if vocab_size is not None:
        mc.vocab_size = vocab_size
    tc = TrainConfig(**{f.attr: parsed[f.id] for f in TRAIN_FIELDS})
    set_eval_schedule(tc)
    if tc.learning_rate > 0:
        tc.min_lr = tc.learning_rate / 10  # the cosine floor follows the chosen peak
    if tc.warmup_steps >= tc.max_steps > 0 and tc.warmup_steps > 0:
        from tinylm.core import ConfigError

        raise ConfigError(f"warmup_steps {tc.warmup_steps} must be fewer than the {tc.max_steps} steps")
    tc.validate()
    mc.validate()
    return mc, tc, parsed["vocab"]


def human_count(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def human_bytes(n: float) -> str:
    for scale, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return f"{n:.0f} B"


OPEN_NAME_WIDTH = 22  # cells of the open model's directory name: the summary column is 33 cells wide at 80


def open_model_lines(session) -> Text:
    """The session's model, in two lines (the form describes the one ctrl+t would make, which for an opened
    GPT-2 differs: its tokenizer is not one the form trains); empty without a model."""
    lines, model = Text(), session.model
    if model is None:
        return lines
    where = session.checkpoint_path
    name = one_line(Path(where).name or where) if where else "not saved"
    name = name if len(name) <= OPEN_NAME_WIDTH else name[: OPEN_NAME_WIDTH - 1] + "…"
    kind = model.tokenizer.kind if model.tokenizer is not None else "no tokenizer"
    lines.append("open       ", style="bold")
    lines.append(f"{name}\n")
    lines.append(f"           {human_count(model.num_params)} params · {kind}\n")  # fits the side column's 33 cells
    return lines
