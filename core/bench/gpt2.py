"""`tinylm bench --configs gpt2`: GPT-2 small's shape with random weights (nothing to download),
side by side with transformers' GPT2LMHeadModel opened from the same checkpoint directory.

Figures: opening the checkpoint (peak resident memory over the process before it, against the
weight bytes), one forward pass over a 64-token prompt with tinylm's full trace against
transformers' plain forward, and greedy generation with the KV cache against transformers'
`generate` with its cache, also against the time one pass over the weights' bytes takes in the
same process (a numpy sum over every weight array): a decoding step has to read every weight once,
so that pass is the floor of a token's time on this machine.
"""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

# GPT-2 small (124M parameters): 12 layers, 12 heads, 768 wide, 50,257 tokens, 1,024 positions.
GPT2_SHAPE = dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
TRACE_TOKENS = 64
PROMPT_TOKENS = 8
FULL = dict(reps=5, gen_tokens=128)
QUICK = dict(reps=2, gen_tokens=16)
HF_SKIPPED = "transformers comparison skipped: transformers is not installed (pip install torch transformers)"

# (result key, what, limit, higher is better)
TARGETS = [
    ("gpt2.load_over_weights", "gpt2: opening, peak over idle / weight bytes", 1.3, False),
    ("gpt2.trace_speed_ratio", "gpt2: 64-token traced forward vs transformers", 1.0, True),
    ("gpt2.gen_speed_ratio", "gpt2: greedy generation vs transformers generate", 1.5, True),
    ("gpt2.token_over_pass", "gpt2: token time / one pass over the weights", 2.0, False),
]


def transformers_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


def bench_gpt2(run_child, workdir: Path, threads: int, rounds: int, quick: bool, use_hf: bool, log, shape=None):
    """Write the checkpoint once, then alternate tinylm and transformers children for `rounds`."""
    settings = QUICK if quick else FULL
    shape = dict(shape or GPT2_SHAPE)
    path = str(workdir / "gpt2")
    base = dict(threads=threads, seed=1337, model=shape, path=path)
    log("  gpt2: writing a checkpoint of random weights")
    made = run_child("tinylm", dict(base, mode="gpt2_make"), workdir)
    spec = dict(
        base,
        mode="gpt2",
        trace_tokens=min(TRACE_TOKENS, shape["block_size"]),
        prompt_tokens=min(PROMPT_TOKENS, shape["block_size"] // 2),
        gen_tokens=min(settings["gen_tokens"], shape["block_size"] // 2),
        reps=settings["reps"],
    )
    runs = {"tinylm": [], "transformers": []}
    for r in range(rounds):
        for engine in ("tinylm", "transformers") if use_hf else ("tinylm",):
            log(f"  gpt2: {engine}, round {r + 1}/{rounds}")
            runs[engine].append(run_child("tinylm" if engine == "tinylm" else "torch", spec, workdir))
    return summarise_gpt2(spec, made["weight_bytes"], runs, use_hf)


def _kib(kb: float) -> float:
    return kb * 1024


def summarise_gpt2(spec: dict, weight_bytes: int, runs: dict, use_hf: bool) -> dict:
    """Medians over rounds (peaks: the largest), and the ratios the targets are about."""
    med = lambda engine, key: statistics.median(r[key] for r in runs[engine])  # noqa: E731
    ours = runs["tinylm"]
    over = max(_kib(r["rss_peak_kb"] - r["rss_before_kb"]) for r in ours)
    n = spec["gen_tokens"]
    out = {
        "model": spec["model"],
        "threads": spec["threads"],
        "rounds": len(ours),
        "weight_bytes": weight_bytes,
        "trace_tokens": spec["trace_tokens"],
        "prompt_tokens": spec["prompt_tokens"],
        "gen_tokens": n,
        "tinylm": {
            "load_s": med("tinylm", "load_s"),
            "rss_before_mib": max(r["rss_before_kb"] for r in ours) / 1024,
            "rss_peak_mib": max(r["rss_peak_kb"] for r in ours) / 1024,
            "rss_end_mib": max(r["rss_end_kb"] for r in ours) / 1024,
            "load_over_mib": over / 2**20,
            "trace_ms": 1e3 * med("tinylm", "trace_s"),
            "gen_tokens_per_s": n / med("tinylm", "gen_s"),
            "token_ms": 1e3 * med("tinylm", "gen_s") / n,
            "pass_ms": 1e3 * med("tinylm", "pass_s"),
        },
        "load_over_weights": over / weight_bytes,
        "transformers": None,
        "note": None if use_hf else HF_SKIPPED,
        "blas": ours[0]["blas"],
        "threading_layer": ours[0]["threading_layer"],
    }
    out["token_over_pass"] = out["tinylm"]["token_ms"] / out["tinylm"]["pass_ms"]
    if use_hf and runs["transformers"]:
        theirs = runs["transformers"]
        hf_over = max(_kib(r["rss_peak_kb"] - r["rss_before_kb"]) for r in theirs)
        out["transformers"] = {
            "version": theirs[0]["version"],
            "load_s": med("transformers", "load_s"),
            "rss_peak_mib": max(r["rss_peak_kb"] for r in theirs) / 1024,
            "rss_end_mib": max(r["rss_end_kb"] for r in theirs) / 1024,
            "load_over_mib": hf_over / 2**20,
            "forward_ms": 1e3 * med("transformers", "forward_s"),
            "gen_tokens_per_s": n / med("transformers", "gen_s"),
            "token_ms": 1e3 * med("transformers", "gen_s") / n,
        }
        out["trace_speed_ratio"] = out["transformers"]["forward_ms"] / out["tinylm"]["trace_ms"]
        out["gen_speed_ratio"] = out["tinylm"]["gen_tokens_per_s"] / out["transformers"]["gen_tokens_per_s"]
        a, b = ours[-1]["gen_ids"], theirs[-1]["gen_ids"]
        out["greedy_tokens_agree"] = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return out


def format_gpt2(g: dict) -> list[str]:
    """The GPT-2-scale section of the report."""
    m, ours, theirs = g["model"], g["tinylm"], g["transformers"]
    mib = g["weight_bytes"] / 2**20
    lines = [
        f"GPT-2 scale (random weights: L={m['n_layer']} NH={m['n_head']} C={m['n_embd']} V={m['vocab_size']} "
        f"T={m['block_size']}, {g['weight_bytes'] / 4e6:.1f}M parameters, {mib:.1f} MiB of float32; "
        f"{g['threads']} threads, {g['rounds']} rounds)",
        f"  {'':<46}{'tinylm':>12}{'transformers':>14}{'ratio':>8}",
    ]

    def row(label, a, b="", ratio=None):
        lines.append(f"  {label:<46}{a:>12}{b:>14}{'' if ratio is None else f'{ratio:.2f}x':>8}")

    hf = theirs or {}
    row(
        "open the checkpoint: peak RSS over idle",
        f"{ours['load_over_mib']:.0f} MiB",
        f"{hf['load_over_mib']:.0f} MiB" if theirs else "",
    )
    row("  / weight bytes (target <= 1.3)", f"{g['load_over_weights']:.2f}")
    row("  seconds", f"{ours['load_s']:.2f} s", f"{hf['load_s']:.2f} s" if theirs else "")
    row(
        f"{g['trace_tokens']}-token forward, ms (tinylm: full trace)",
        f"{ours['trace_ms']:.1f}",
        f"{hf['forward_ms']:.1f}" if theirs else "",
        g.get("trace_speed_ratio"),
    )
    row(
        f"greedy generate, KV cache, {g['gen_tokens']} tokens/s",
        f"{ours['gen_tokens_per_s']:.1f}",
        f"{hf['gen_tokens_per_s']:.1f}" if theirs else "",
        g.get("gen_speed_ratio"),
    )
    row("  ms per token", f"{ours['token_ms']:.1f}", f"{hf['token_ms']:.1f}" if theirs else "")
    row("one pass over the weights (numpy sum, ms)", f"{ours['pass_ms']:.1f}")
    row("  tinylm token time / that pass (target <= 2)", f"{g['token_over_pass']:.2f}")
    lines.append(
        f"  (trace: median of runs after a warm-up; generation after a {g['prompt_tokens']}-token prompt, "
        "prefill included; ratio: how many times faster tinylm is)"
    )
    ends = f"tinylm {ours['rss_end_mib']:.0f} MiB" + (f", transformers {hf['rss_end_mib']:.0f} MiB" if theirs else "")
    lines.append(f"  peak RSS at the end of each process (after every timed run): {ends}")
    if theirs:
        lines.append(
            f"  transformers {theirs['version']}: greedy tokens agree for the first {g['greedy_tokens_agree']} "
            f"of {g['gen_tokens']}"
        )
    else:
        lines.append(f"  {g['note']}")
    return lines
