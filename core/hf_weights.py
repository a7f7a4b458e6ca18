"""A GPT-2 directory's weights: which files hold them, which names they use, and filling a model from them.

Hugging Face saves GPT-2 under two naming schemes (`transformer.h.0.ln_1.weight` from GPT2LMHeadModel,
`h.0.ln_1.weight` from GPT2Model and many Hub uploads), sometimes with the attention mask buffers
(`h.N.attn.bias`, `h.N.attn.masked_bias`) and an explicit `lm_head.weight` equal to the token embedding.
Every name and shape is checked against the config before the model's buffer is allocated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .files import NotReadable, read_json_text
from .params import param_shapes
from .tensorfile import TensorFile

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"  # a model split over several files
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
OTHER_FORMATS = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")
LM_HEAD = "lm_head.weight"
WTE = "transformer.wte.weight"
WPE = "transformer.wpe.weight"
_BUFFER = re.compile(r"transformer\.h\.\d+\.attn\.(bias|masked_bias)")  # causal-mask buffers, not weights
_FINITE_CHUNK = 1 << 20  # values checked for NaN/inf at a time (a bool per value)


@dataclass(frozen=True)
class Tensor:
    """One tensor of a weight file: the file, its name there, its shape."""

    file: TensorFile
    name: str
    shape: tuple[int, ...]

    @property
    def path(self) -> Path:
        return self.file.path


def convert_command(directory: Path) -> str:
    d = str(directory).replace("'", "\\'")
    return (
        'python -c "from transformers import GPT2LMHeadModel as M; '
        f"M.from_pretrained('{d}').save_pretrained('{d}', safe_serialization=True)\""
    )


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files holding the weights; CheckpointError saying what to do when there are none."""
    single, index = directory / WEIGHTS_FILE, directory / INDEX_FILE
    if single.is_file():
        return [single]
    if index.is_file():
        try:
            weight_map = json.loads(read_json_text(index))["weight_map"]
            names = sorted(set(weight_map.values()))
            if not all(isinstance(n, str) and n for n in names):
                raise ValueError("a file name that is not a string")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, NotReadable):
            raise CheckpointError(f"{index} is damaged (no weight_map naming the weight files)") from None
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise CheckpointError(f"{index} names {missing[0]}, which is not in {directory}")
        return [directory / n for n in names]
    if any((directory / name).is_file() for name in PICKLE_FILES):
        raise CheckpointError(
            f"{directory} holds only pytorch_model.bin, a pickle (loading one can run any code, so tinylm does not); "
            f"convert it once to model.safetensors with: {convert_command(directory)}"
        )
    others = [name for name in OTHER_FORMATS if (directory / name).is_file()]
    if others:
        raise CheckpointError(
            f"{directory} holds {others[0]}, which tinylm does not read; save the model as model.safetensors"
        )
    raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}; is it a checkpoint directory?")


def canonical_name(name: str) -> str:
    """GPT2LMHeadModel's name for a tensor saved under either naming scheme."""
    if name.startswith("transformer.") or name == LM_HEAD:
        return name
    return "transformer." + name


def index_tensors(files: list[Path]) -> dict[str, Tensor]:
    """Every tensor of the files by its canonical name (mask buffers dropped); two tensors under one
    name, or a tensor GPT-2's language model does not have, are refused."""
    out: dict[str, Tensor] = {}
    for path in files:
        f = TensorFile(path)
        for name in sorted(f.names()):
            key = canonical_name(name)
            if _BUFFER.fullmatch(key):
                continue
            if key in out:
                raise CheckpointError(f"{path} holds tensor {key} twice (with and without 'transformer.')")
            try:
                shape = f.shape(name)
                if not all(isinstance(d, int) and d >= 0 for d in shape):
                    raise TypeError
            except (TypeError, AttributeError):
                raise CheckpointError(f"{path} is damaged (bad header entry for tensor {name}); re-save it") from None
            out[key] = Tensor(f, name, shape)
    return out


def check_tensors(tensors: dict[str, Tensor], cfg, tied: bool, where: Path) -> None:
    """Refuse missing, extra or misshapen tensors, naming the file and the first problem."""
    expected = param_shapes(cfg)
    if cfg.positional == "sincos":  # tinylm saves its fixed table too, so other implementations can run it
        expected[WPE] = (cfg.block_size, cfg.n_embd)
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise CheckpointError(
            f"{where} is missing tensor {missing[0]} ({len(missing)} missing); it does not match its config.json"
        )
    for name, info in tensors.items():
        if name == LM_HEAD:
            shape = expected[WTE]
        elif name in expected:
            shape = expected[name]
        else:
            raise CheckpointError(
                f"{info.path}: tensor {name} is not part of a GPT-2 language model "
                f"(tinylm reads GPT2LMHeadModel and GPT2Model weights)"
            )
        if info.shape != shape:
            what = "config.json" if name != LM_HEAD else "the token embedding"
            raise CheckpointError(f"{info.path}: tensor {name} has shape {info.shape}, expected {shape} from {what}")
    if not tied and LM_HEAD not in tensors:
        raise CheckpointError(f"{where}/config.json sets tie_word_embeddings false but the weights have no {LM_HEAD}")


def _read(tensor: Tensor, out: np.ndarray, name: str) -> None:
    """Read a tensor into out and refuse NaN or inf (checked in chunks: no tensor-sized temporary)."""
    tensor.file.read_into(tensor.name, out)
    flat = out.reshape(-1)
    for lo in range(0, flat.size, _FINITE_CHUNK):
        if not np.isfinite(flat[lo : lo + _FINITE_CHUNK]).all():
            raise CheckpointError(f"{tensor.path}: tensor {name} holds NaN or inf values")


def fill_model(model, tensors: dict[str, Tensor]) -> None:
    """Read every weight into the model's flat buffer, then check that an lm_head equals wte."""
    for name, view in model.params.items():
        _read(tensors[name], view, name)
    if model.config.positional == "sincos":
        _read(tensors[WPE], model.wpe, WPE)
    head = tensors.get(LM_HEAD)
    if head is not None and not head.file.equals(head.name, model.params[WTE]):
        raise CheckpointError(
            f"{head.path}: {LM_HEAD} differs from {WTE} (an untied output layer); tinylm's output layer is "
            "the token embedding, so this model cannot run here"
        )
