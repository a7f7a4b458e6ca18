"""`tinylm inspect --export / --csv`: a prompt's tensors, headless, for notebooks.

Names in the safetensors file (documented in the README): the forward Trace's names as they are
(`x0`, `h.0.att`, `logits`, ...), `ids` (and with --backward `targets`, `losses`), the backward
trace's gradients under theirs (`d.logits`, `d.h.0.scores`, ...) and every weight's gradient as
`grad.` + its checkpoint name. The metadata holds the tokens, the prompt and the loss.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

from .common import UsageError, note, show_token

EXPORT_FORMAT = "tinylm-inspect-1"  # metadata["format"]: the naming scheme above


def add_export_arguments(p) -> None:
    p.add_argument("--export", metavar="OUT", help="write every stage's tensors to one safetensors file")
    p.add_argument(
        "--backward",
        action="store_true",
        help="with --export or --csv: also the gradients, the targets being the prompt shifted by one",
    )
    p.add_argument(
        "--csv",
        metavar="NAME",
        help="print one matrix as CSV, e.g. x0, h.0.att[1] (head 1), d.h.0.scores[0] (with --backward)",
    )
    p.add_argument("--overwrite", action="store_true", help="let --export replace an existing file")


def collect_tensors(model, prompt: str, backward: bool):
    """(tensors by export name, token labels, metadata) of the prompt's forward (and backward) pass."""
    from ..backtrace import backtrace, prompt_window

    if backward:
        ids, targets = prompt_window(model, prompt)
        bt = backtrace(model, ids, targets)
        tr = bt.forward
    else:
        tr, bt = model.trace(prompt), None
    tensors = {name: np.ascontiguousarray(a) for name, a in tr.arrays.items()}
    tensors["ids"] = np.ascontiguousarray(tr.ids, dtype=np.int64)
    meta = {"format": EXPORT_FORMAT, "prompt": prompt, "tokens": json.dumps(tr.tokens)}
    if bt is not None:
        tensors["targets"] = np.ascontiguousarray(bt.targets, dtype=np.int64)
        tensors["losses"] = np.ascontiguousarray(bt.losses, dtype=np.float32)
        tensors.update({name: np.ascontiguousarray(a) for name, a in bt.arrays.items()})
        tensors.update({"grad." + name: np.ascontiguousarray(g) for name, g in bt.grads.items()})
        meta["loss"] = repr(bt.loss)
    return tensors, tr.tokens, meta


def write_safetensors(path: str, tensors: dict, meta: dict, overwrite: bool) -> None:
    """Save to path, refusing to replace a file unless asked; written beside it and renamed into place."""
    from safetensors.numpy import save_file

    out = Path(path)
    if out.is_dir():
        raise UsageError(f"--export {path} is a directory: give a file name such as {out / 'trace.safetensors'}")
    if out.exists() and not overwrite:
        raise UsageError(f"--export {path} already exists: choose another name or add --overwrite")
    if not out.parent.is_dir():
        raise UsageError(f"--export {path}: the folder {out.parent} does not exist; create it or choose another")
    tmp = out.with_name(out.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(out)
    except Exception as exc:  # OSError, or safetensors' own error for the same causes
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot write --export {path} ({reason}); choose a writable place") from None


_NAME = re.compile(r"^(?P<name>[\w.]+?)(\[(?P<head>\d+)\])?$")


def pick_matrix(tensors: dict, spec: str) -> tuple[np.ndarray, str]:
    """The 2-D matrix `spec` names: a tensor name, with [i] for one slice of a 3-D one (a head)."""
    m = _NAME.match(spec.strip())
    if not m or m["name"] not in tensors:
        known = ", ".join(n for n in list(tensors)[:8])
        hint = " (gradients need --backward)" if spec.startswith(("d.", "grad.")) else ""
        raise UsageError(f"--csv {spec}: no such tensor{hint}; names look like {known}, ...")
    a, name = tensors[m["name"]], m["name"]
    if a.ndim == 3:
        if m["head"] is None:
            raise UsageError(f"--csv {spec}: {name} is {a.shape}; pick one slice, e.g. {name}[0]")
        head = int(m["head"])
        if head >= a.shape[0]:
            raise UsageError(f"--csv {spec}: {name} has {a.shape[0]} slices (0 to {a.shape[0] - 1})")
        return a[head], f"{name}[{head}]"
    if m["head"] is not None:
        raise UsageError(f"--csv {spec}: {name} is {a.shape}, not split by heads; drop the [..]")
    return (a[:, None] if a.ndim == 1 else a), name


def write_csv(matrix: np.ndarray, tokens: list[str], out=None) -> None:
    """Rows labelled by token when there is one row per token, columns by index; full float precision."""
    out = out or sys.stdout
    w = csv.writer(out, lineterminator="\n")
    rows, cols = matrix.shape
    by_token = rows == len(tokens)
    w.writerow(["token" if by_token else "row", *range(cols)])
    for i in range(rows):
        label = f"{i} {show_token(tokens[i], 20)}" if by_token else str(i)
        w.writerow([label, *(repr(float(x)) for x in matrix[i])])


def run_export(model, args) -> int:
    """--export and/or --csv; returns the exit status."""
    tensors, tokens, meta = collect_tensors(model, args.prompt, args.backward)
    meta["checkpoint"] = str(args.checkpoint)
    if args.export:
        write_safetensors(args.export, tensors, meta, args.overwrite)
        note(f"wrote {len(tensors)} tensors to {args.export}")
    if args.csv:
        matrix, _ = pick_matrix(tensors, args.csv)
        write_csv(matrix, tokens)
    return 0
