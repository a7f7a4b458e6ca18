"""`tinylm inspect`: one forward pass, printed like a textbook."""

from __future__ import annotations

import argparse
import shutil

import numpy as np

from .ablate import add_ablate_arguments, run_ablation, wants_ablation
from .common import (
    UsageError,
    add_checkpoint_argument,
    add_device_argument,
    check_prompt,
    load_checkpoint,
    non_negative_int,
    plural,
    show_token,
    token_label,
)
from .export import add_export_arguments, run_export

TOP_K = 10  # next tokens listed
BAR_WIDTH = 30  # characters for probability 1.0

INSPECT_EXAMPLES = """
examples:
  tinylm inspect runs/fables-char --prompt "The Fox"
  tinylm inspect runs/fables-char --prompt "The Fox" --layer 3 --precision 2
  tinylm inspect runs/fables-char --prompt "The Fox" --all-layers | less -S
  tinylm inspect runs/fables-char --prompt "The Fox" --backward --export fox.safetensors
  tinylm inspect runs/fables-char --prompt "The Fox" --csv "h.0.att[1]" > att.csv
  tinylm inspect runs/fables-char --prompt "The Fox" --ablate 1.3 --ablate 0.mlp
  tinylm inspect runs/fables-char --prompt "The Fox" --rank-heads --ablate-mode mean

Every number comes from one forward pass (the model's trace): token embeddings, position
embeddings, their sum, each head's attention weights (row = query token, column = key token;
· marks the causal mask), each block's output, and the next-token probabilities.
"""


def add_inspect_parser(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="print every stage of the model on a prompt",
        description="Print the forward pass of a checkpoint on a prompt, stage by stage.",
        epilog=INSPECT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_checkpoint_argument(p)
    p.add_argument("--prompt", required=True, help="text to run through the model")
    layers = p.add_mutually_exclusive_group()
    layers.add_argument("--layer", type=non_negative_int, metavar="L", help="show block L (default 0)")
    layers.add_argument("--all-layers", action="store_true", help="show every block")
    p.add_argument("--precision", type=non_negative_int, default=3, metavar="D", help="decimals (default 3)")
    add_export_arguments(p)
    add_ablate_arguments(p)
    add_device_argument(p)
    p.set_defaults(func=run_inspect)


def format_matrix(
    M: np.ndarray,
    row_labels: list[str],
    col_labels: list[str] | None = None,
    precision: int = 3,
    width: int | None = None,
    max_rows: int = 16,
    mask_upper: bool = False,
) -> list[str]:
    """A labelled grid that fits the terminal: middle rows and columns elided with ⋮ and … ."""
    T, C = M.shape
    width = width or shutil.get_terminal_size((120, 24)).columns
    rows = _pick(T, max_rows)
    label_w = max(len(s) for s in row_labels) if row_labels else 0
    cell = max(len(f"{v:.{precision}f}") for v in M.ravel()) + 1 if M.size else precision + 3
    if col_labels is not None:
        cell = max(cell, min(max(len(s) for s in col_labels), 6) + 1)
    cols = _pick(C, max(2, (width - label_w - 4) // cell))
    head = " " * (label_w + 2) + "".join(
        "…".rjust(cell) if j is None else (col_labels[j][: cell - 1] if col_labels else str(j)).rjust(cell)
        for j in cols
    )
    lines = [head]
    for i in rows:
        if i is None:
            lines.append(" " * (label_w + 2) + "".join("⋮".rjust(cell) for _ in cols))
            continue
        cells = []
        for j in cols:
            if j is None:
                cells.append("…".rjust(cell))
            elif mask_upper and j > i:
                cells.append("·".rjust(cell))
            else:
                cells.append(f"{M[i, j]:.{precision}f}".rjust(cell))
        lines.append(row_labels[i].ljust(label_w) + "  " + "".join(cells))
    return lines


def _pick(n: int, most: int) -> list[int | None]:
    """Indices to show out of n: all if they fit, else both ends with None standing for the gap."""
    if n <= most:
        return list(range(n))
    half = (most - 1) // 2
    return list(range(half + (most - 1) % 2)) + [None] + list(range(n - half, n))


def bar(p: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar p of full width, in eighths of a character."""
    eighths = int(round(max(0.0, min(1.0, p)) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")


def run_inspect(args) -> int:
    if args.device != "cpu" and (wants_ablation(args) or args.backward):
        raise UsageError(
            "--ablate, --rank-heads, --set-token and --backward run on the CPU only; leave out --device cuda"
        )
    model = load_checkpoint(args.checkpoint, device=args.device)
    cfg = model.config
    if args.layer is not None and args.layer >= cfg.n_layer:
        raise UsageError(f"--layer {args.layer} does not exist: the model has layers 0 to {cfg.n_layer - 1}")
    check_prompt(model, args.prompt)
    if wants_ablation(args):
        if args.export or args.csv:
            raise UsageError("--ablate and --rank-heads print their own report: leave out --export and --csv")
        return run_ablation(model, args)
    if args.export or args.csv:
        return run_export(model, args)
    if args.backward or args.overwrite:
        raise UsageError("--backward and --overwrite go with --export OUT or --csv NAME")
    tr = model.trace(args.prompt)
    p = args.precision
    T, C, NH = len(tr.ids), cfg.n_embd, cfg.n_head
    tokens = [token_label(model.tokenizer, int(i)) for i in tr.ids]
    pw = len(str(T - 1))
    labels = [f"{t:>{pw}} {show_token(s, 8)}" for t, s in enumerate(tokens)]
    short = [show_token(s, 6) for s in tokens]
    out = []
    section = _Sections(out)
    out.append(
        f"checkpoint {args.checkpoint}: {plural(cfg.n_layer, 'layer')}, "
        f"{plural(NH, 'head') if cfg.attention else 'MLP only (no attention)'}, {C} wide, "
        f"context {cfg.block_size}, vocabulary {cfg.vocab_size} ({model.tokenizer.kind} tokenizer)"
    )
    text = model.tokenizer.decode(tr.ids.tolist())
    out.append(f"prompt {text!r} -> {T} tokens")

    section("tokens")
    out.append("  pos    id  token")
    for t, i in enumerate(tr.ids):
        out.append(f"  {t:>3}  {int(i):>4}  {token_label(model.tokenizer, int(i), quoted=True)}")
    if model.tokenizer.byte_level:
        section("how byte-level BPE made them: each chunk's bytes, then every merge, lowest rank first")
        out += bpe_merges(model.tokenizer, text)
    section(f"token embeddings: wte[id]  ({T} x {C})")
    out += format_matrix(tr["wte"], labels, precision=p)
    kind = "learned" if cfg.positional == "learned" else "fixed sine/cosine"
    section(f"+ position embeddings: wpe[pos], {kind}  ({T} x {C})")
    out += format_matrix(tr["wpe"], labels, precision=p)
    section(f"= input to block 0: x = wte[id] + wpe[pos]  ({T} x {C})")
    out += format_matrix(tr["x0"], labels, precision=p)

    shown = range(cfg.n_layer) if args.all_layers else [args.layer or 0]
    for l in shown:
        h = f"h.{l}."
        if not cfg.attention:
            section(f"block {l}: x + mlp(ln_2(x))")
            out.append("  this model has no attention (MLP only): each position sees its own token alone")
            out.append("")
        else:
            section(f"block {l}: x + attention(ln_1(x)), then + mlp(ln_2(x))")
            out.append(f"  attention weights softmax(q k / sqrt({cfg.head_size})), causal: row = query, column = key")
            for head in range(NH):
                out.append(f"  head {head} of {NH}  ({T} x {T})")
                out += ["  " + s for s in format_matrix(tr[h + "att"][head], labels, short, p, mask_upper=True)]
                out.append("")
        out.append(f"  block {l} output: residual stream  ({T} x {C})")
        out += ["  " + s for s in format_matrix(tr[h + "res_2"], labels, precision=p)]
    hidden = [l for l in range(cfg.n_layer) if l not in shown]
    if hidden:
        out.append(f"  (blocks {_ranges(hidden)} not shown: --layer L or --all-layers)")

    probs = tr["probs"][-1].astype(np.float64)
    section(f"next token after {text[-20:]!r}: softmax(ln_f(x) @ wte.T), top {min(TOP_K, probs.size)} of {probs.size}")
    order = np.argsort(-probs, kind="stable")[:TOP_K]
    top = [token_label(model.tokenizer, int(i), quoted=True) for i in order]
    tok_w = max(len(s) for s in top)
    for rank, (i, token) in enumerate(zip(order, top), 1):
        out.append(f"  {rank:>2}. {token:<{tok_w}}  id {int(i):>5}  {probs[i]:.4f}  {bar(probs[i])}")
    print("\n".join(out))
    return 0


MERGE_CHUNKS = 12  # chunks whose merges are listed; a long prompt would fill the screen


def bpe_merges(tokenizer, text: str) -> list[str]:
    """For each pre-tokenizer chunk: its bytes as tokens, then each merge and the tokens after it."""
    out = []
    chunks = tokenizer.chunks(text)
    for chunk in chunks[:MERGE_CHUNKS]:
        out.append(f"  {chunk!r}")
        if chunk in tokenizer.specials:
            out.append("      a special token: one id, no merges")
            continue

        def row(ids: list[int]) -> str:
            return " ".join(show_token(tokenizer.token_label(i), 12) for i in ids)

        out.append(f"      bytes        {row(tokenizer.chunk_ids(chunk))}")
        for step in tokenizer.merge_steps(chunk):
            a, b = (show_token(tokenizer.token_label(i), 12) for i in step.pair)
            out.append(f"      rank {step.rank:<6}  {row(step.ids)}    ({a} + {b})")
    if len(chunks) > MERGE_CHUNKS:
        out.append(f"  ({len(chunks) - MERGE_CHUNKS} more chunks not shown)")
    return out


class _Sections:
    """Numbered section headings."""

    def __init__(self, out: list[str]):
        self.out, self.n = out, 0

    def __call__(self, title: str) -> None:
        self.n += 1
        self.out += ["", f"{self.n}. {title}"]


def _ranges(nums: list[int]) -> str:
    return (
        f"{nums[0]}"
        if len(nums) == 1
        else f"{nums[0]}-{nums[-1]}"
        if nums == list(range(nums[0], nums[-1] + 1))
        else ", ".join(map(str, nums))
    )


# ----- info ---------------------------------------------------------------------------------------
