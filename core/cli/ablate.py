"""`tinylm inspect --ablate` and `--rank-heads`: what the next token does when parts are knocked out."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..intervene import MODES, Ablation, Intervention, intervened_probs, rank_heads
from .common import UsageError, show_token, token_label

TOP_K = 10  # next tokens listed on each side
BAR_WIDTH = 12  # characters for probability 1.0


def add_ablate_arguments(p) -> None:
    g = p.add_argument_group("interventions (instead of the stage-by-stage listing)")
    g.add_argument(
        "--ablate",
        action="append",
        default=[],
        metavar="PART",
        help="knock out a head (LAYER.HEAD, e.g. 1.3), a layer's attention (1.attn) or its MLP (1.mlp); repeatable",
    )
    g.add_argument(
        "--ablate-mode",
        choices=MODES,
        default="zero",
        help="zero: its output set to 0; mean: to its mean over the prompt's positions (default zero)",
    )
    g.add_argument(
        "--set-token",
        action="append",
        default=[],
        metavar="POS=TOKEN",
        help="replace the prompt's token at position POS (negative: from the end) by TOKEN, text that is one "
        "token or #ID; repeatable",
    )
    g.add_argument(
        "--rank-heads",
        action="store_true",
        help="knock out every head, attention layer and MLP alone and rank them by the change in the "
        "most likely next token's probability",
    )


def wants_ablation(args) -> bool:
    return bool(args.ablate) or bool(args.set_token) or args.rank_heads


def parse_set_token(text: str, tokenizer) -> tuple[int, int]:
    """'3=x' or '-1=#42' -> (position, token id); a UsageError naming the problem otherwise."""
    pos, eq, tok = text.partition("=")
    try:
        position = int(pos)
    except ValueError:
        position = None
    if not eq or position is None or not tok:
        raise UsageError(f"--set-token {text!r}: write POS=TOKEN, e.g. 2=x or -1=#42")
    if tok.startswith("#") and tok[1:].isdigit():
        return position, int(tok[1:])
    ids = tokenizer.encode(tok)
    if len(ids) != 1:
        raise UsageError(f"--set-token {text!r}: {tok!r} is {len(ids)} tokens, not one; give its id as #ID")
    return position, int(ids[0])


def _bar(p: float) -> str:
    eighths = int(round(max(0.0, min(1.0, p)) * BAR_WIDTH * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")


def run_ablation(model, args) -> int:
    """Print the top next tokens with and without the ablations, or the ranking table."""
    cfg = model.config
    try:
        ablations = tuple(Ablation.parse(text, args.ablate_mode).check(cfg.n_layer, cfg.n_head) for text in args.ablate)
    except ConfigError as exc:
        raise UsageError(f"--ablate: {exc}") from None
    tok = model.tokenizer
    forced = dict(parse_set_token(text, tok) for text in args.set_token)
    iv = Intervention(ablations, forced)
    try:
        iv.edited_ids(model.encode_prompt(args.prompt), cfg.vocab_size)
    except ConfigError as exc:
        raise UsageError(f"--set-token: {exc}") from None
    label = lambda i: token_label(tok, int(i), quoted=True)  # noqa: E731
    before = model.next_token_probs(args.prompt)
    chosen = int(np.argmax(before))
    out = [f"prompt {args.prompt!r}; chosen next token {label(chosen)} (the most likely), p = {before[chosen]:.4f}"]
    if iv:
        after = intervened_probs(model, args.prompt, iv)
        out += _side_by_side(before, after, label, _describe(iv, model, args.prompt, label))
        delta = after[chosen] - before[chosen]
        out.append(f"p({label(chosen)}): {before[chosen]:.4f} -> {after[chosen]:.4f} ({delta:+.4f})")
    if args.rank_heads:
        out += ["", *_ranking(model, args.prompt, chosen, args.ablate_mode, label)]
    print("\n".join(out))
    return 0


def _describe(iv, model, prompt, label) -> str:
    """What the intervention changes, tokens named by their text."""
    ids = model.encode_prompt(prompt)
    parts = [a.describe() for a in iv.ablations]
    parts += [f"token {p} {label(ids[p])} replaced by {label(i)}" for p, i in iv.tokens.items()]
    return "; ".join(parts)


def _side_by_side(before, after, label, what: str) -> list[str]:
    k = min(TOP_K, before.size)
    top_b = np.argsort(-before, kind="stable")[:k]
    top_a = np.argsort(-after, kind="stable")[:k]
    w = max(len(show_token(label(i), 14, quoted=True)) for i in [*top_b, *top_a])
    col = w + 8 + BAR_WIDTH + 2
    out = ["", f"changed: {what}", f"  {'without':<{col}}  with"]
    for rank, (b, a) in enumerate(zip(top_b, top_a), 1):
        left = f"{show_token(label(b), 14, quoted=True):<{w}}  {before[b]:.4f} {_bar(before[b]):<{BAR_WIDTH}}"
        right = f"{show_token(label(a), 14, quoted=True):<{w}}  {after[a]:.4f} {_bar(after[a])}"
        out.append(f"{rank:>2}. {left:<{col}}  {right}")
    return out


def _ranking(model, prompt, chosen: int, mode: str, label) -> list[str]:
    effects = rank_heads(model, prompt, chosen, mode)
    out = [
        f"which parts matter: each knocked out alone ({mode}), largest change in p({label(chosen)}) first",
        " rank  part     p after   change  most likely then",
    ]
    for rank, e in enumerate(effects, 1):
        top = show_token(label(e.top_after), 14, quoted=True)
        out.append(f"{rank:>5}  {e.ablation.label:<7} {e.p_after:>8.4f} {e.delta:>+8.4f}  {top}")
    return out
