"""`tinylm bench`: training and generation speed, memory and start-up time, side by side with PyTorch.

Every measurement runs in a fresh child process (so memory peaks don't mix and a cold Numba cache
is really cold); tinylm and PyTorch children alternate (ABAB...) so drift of a shared machine
falls on both. Speed comparisons are ratios from the same invocation.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..cli.common import positive_int
from ..config import ModelConfig
from . import gpt2
from .children import KIB_TO_MIB, BenchError, idle_rss_mib, run_child
from .report import TARGETS, code_version, format_profile, format_report, machine_info
from .worker import CONFIGS, corpus_path, train_config

TORCH_SKIPPED = "PyTorch comparison skipped (pip install 'tinylm-tui[bench]')"
FLOP_FORMULA = "6*(12*L*C^2 + V*C) + 6*L*C*T per token (PaLM/nanoGPT estimate: matmuls and attention, fwd+bwd)"
GEN_CONFIG = "baby"
ALL_CONFIGS = (*CONFIGS, "gpt2")
# (warm-up steps, at least this many timed steps, for at least this many seconds, at most this many)
FULL = dict(rounds=3, warmup=5, min_steps=10, min_time=2.0, max_steps=3000, gen_tokens=2000, warm_starts=3)
QUICK = dict(rounds=1, warmup=2, min_steps=3, min_time=0.2, max_steps=200, gen_tokens=200, warm_starts=1)


def add_bench_parser(subparsers) -> None:
    """Register `bench` on the CLI's subparsers; the CLI calls args.func(args) and exits with its result."""
    p = subparsers.add_parser(
        "bench",
        help="measure training and generation speed, memory and start-up (vs PyTorch if installed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(p)
    p.set_defaults(func=run_bench)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--configs",
        default=None,
        help=f"comma-separated configurations among {', '.join(ALL_CONFIGS)} (default: the training ones, "
        f"{', '.join(CONFIGS)}; gpt2 is GPT-2 small's shape against transformers; with --profile, the first "
        "one named, default baby)",
    )
    p.add_argument("--quick", action="store_true", help="a short run (a smoke test; figures are rough)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead of the benchmark, print where one training step spends its time, by kernel",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="threads for tinylm (Numba, BLAS) and PyTorch alike (default: all cores, %(default)s)",
    )
    p.add_argument("--rounds", type=positive_int, default=None, help="tinylm/PyTorch alternations per configuration")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-cold-start", action="store_true", help="skip the start-up with an empty Numba cache")
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where tinylm and PyTorch train and generate: cpu (default) or cuda (one NVIDIA GPU, both engines, "
        "PyTorch with TF32 off; the training configurations only)",
    )


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


# ----- child processes ------------------------------------------------------------------------


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ----- specs ----------------------------------------------------------------------------------


def make_spec(name: str, workdir: Path, settings: dict, threads: int, gen_tokens: int) -> dict:
    """Tokenise the configuration's corpus once; both engines read the same ids."""
    from ..corpus import DEFAULT_CORPUS, load_corpus, split_ids
    from ..schedule import get_lr
    from ..tokenizers import train_tokenizer

    shape, batch_size, corpus_kind = CONFIGS[name]
    corpus = corpus_path(corpus_kind)
    text = load_corpus(corpus or DEFAULT_CORPUS).text
    tokenizer = train_tokenizer("char", text)
    ids = tokenizer.encode(text)
    tc = train_config(batch_size)
    np.save(workdir / f"{name}.npy", ids)
    np.save(workdir / f"{name}-train.npy", split_ids(ids, tc.val_fraction)[0])
    return dict(
        config=name,
        mode="train",
        threads=threads,
        seed=tc.seed,
        corpus=corpus,
        corpus_name=Path(corpus).name if corpus else DEFAULT_CORPUS,
        n_tokens=int(ids.size),
        model=dict(shape, vocab_size=tokenizer.vocab_size),
        train=dataclasses.asdict(tc),
        tokenizer=tokenizer.to_dict(),
        ids_path=str(workdir / f"{name}.npy"),
        lrs=[get_lr(s, tc.learning_rate, tc.min_lr, tc.warmup_steps, tc.decay_steps) for s in range(tc.max_steps)],
        warmup=settings["warmup"] if name != "small" else min(2, settings["warmup"]),
        min_steps=settings["min_steps"],
        min_time=settings["min_time"],
        max_steps=settings["max_steps"],
        gen_tokens=gen_tokens,
        device=settings.get("device", "cpu"),
    )


def _torch_spec(spec: dict) -> dict:
    return dict(spec, ids_path=spec["ids_path"].replace(".npy", "-train.npy"))


# ----- the benchmark --------------------------------------------------------------------------


def _median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def _engine_summary(runs: list[dict], spec: dict, peak: float) -> dict:
    """Pool the timed steps of every round."""
    steps = [s for r in runs for s in r["step_s"]]
    m = spec["model"]
    tokens = spec["train"]["batch_size"] * m["block_size"]
    flops = ModelConfig(**m).flops_per_token() * tokens
    ms = _median_ms(steps)
    return {
        "step_ms": ms,
        "step_ms_per_round": [_median_ms(r["step_s"]) for r in runs],
        "steps_timed": len(steps),
        "tokens_per_s": tokens / ms * 1e3,
        "gflops": flops / ms / 1e6,
        "peak_share": flops / ms / 1e6 / peak,
        "peak_rss_mib": max(r["peak_rss_kb"] for r in runs) * KIB_TO_MIB,
        "first_losses": runs[0]["losses"],
    }


def bench_config(name, workdir, settings, threads, use_torch, gen_tokens, log) -> tuple[dict, list]:
    spec = make_spec(name, workdir, settings, threads, gen_tokens)
    runs = {"tinylm": [], "torch": []}
    for r in range(settings["rounds"]):
        for engine in ("tinylm", "torch") if use_torch else ("tinylm",):
            log(f"  {name}: {engine}, round {r + 1}/{settings['rounds']}")
            runs[engine].append(run_child(engine, spec if engine == "tinylm" else _torch_spec(spec), workdir))
    return spec, runs


def summarise(spec, runs, peak) -> dict:
    m = spec["model"]
    out = {
        "model": m,
        "batch_size": spec["train"]["batch_size"],
        "corpus": spec["corpus_name"],
        "tokens_per_step": spec["train"]["batch_size"] * m["block_size"],
    }
    out["flops_per_token"] = ModelConfig(**m).flops_per_token()
    out["tinylm"] = _engine_summary(runs["tinylm"], spec, peak)
    if runs["torch"]:
        out["torch"] = _engine_summary(runs["torch"], spec, peak)
        per_round = [t / s for t, s in zip(out["torch"]["step_ms_per_round"], out["tinylm"]["step_ms_per_round"])]
        out["speed_ratio"] = out["torch"]["step_ms"] / out["tinylm"]["step_ms"]
        out["speed_ratio_range"] = [min(per_round), max(per_round)]
    return out


def _generation(spec, runs) -> dict:
    n = spec["gen_tokens"]
    gen = {
        "config": spec["config"],
        "tokens": n,
        "sampling": "temperature 0.8, top-k 200",
        "tinylm_kv_tokens_per_s": n / statistics.median(r["gen_kv_s"] for r in runs["tinylm"]),
    }
    if runs["torch"]:
        for kind in ("nocache", "kv"):
            rate = n / statistics.median(r[f"gen_{kind}_s"] for r in runs["torch"])
            gen[f"torch_{kind}_tokens_per_s"] = rate
            gen[f"ratio_vs_torch_{kind}"] = gen["tinylm_kv_tokens_per_s"] / rate
    return gen


def _startup(spec, workdir, settings, threads, use_torch, cold, log) -> dict:
    """Seconds from spawning a fresh interpreter to the end of its first training step."""

    def once(engine, **env) -> dict:
        """Seconds to the end of the first step, and the phases: imports, data and model, first step."""
        started = time.time()
        answer = run_child(
            engine, dict(spec if engine == "tinylm" else _torch_spec(spec), mode="startup"), workdir, **env
        )
        done, built, imported = answer["finished_at"], answer["built_at"], answer["imported_at"]
        return {
            "total": done - started,
            "import": imported - started,
            "build": built - imported,
            "first_step": done - built,
        }

    def median_of(runs: list[dict]) -> dict:
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    out = {"config": spec["config"]}
    log("  start-up, warm Numba cache")
    out["warm_phases"] = median_of([once("tinylm") for _ in range(settings["warm_starts"])])
    out["warm_s"] = out["warm_phases"]["total"]
    if use_torch:
        log("  start-up, PyTorch")
        out["torch_phases"] = median_of([once("torch") for _ in range(settings["warm_starts"])])
        out["torch_s"] = out["torch_phases"]["total"]
    if cold:
        log("  start-up, empty Numba cache")
        with tempfile.TemporaryDirectory(prefix="tinylm-cold-numba-") as cache:
            out["cold_phases"] = once("tinylm", NUMBA_CACHE_DIR=cache)
        out["cold_s"] = out["cold_phases"]["total"]
    return out


def run_benchmark(args, log=lambda msg: None) -> dict:
    """Measure everything the options ask for and return one JSON-ready dict."""
    names = [n for n in config_names(args) if n in CONFIGS]  # the training configurations
    settings = dict(QUICK if args.quick else FULL, device=args.device)
    if args.rounds:
        settings["rounds"] = args.rounds
    threads = max(1, args.threads)
    use_torch = not args.no_torch and torch_available()
    now = datetime.datetime.now().isoformat(" ", "seconds")
    result = {
        "command": "tinylm bench " + " ".join(_argv(args)),
        "date": now,
        "device": args.device,
        "threads": threads,
        "quick": args.quick,
        "rounds": settings["rounds"],
        "machine": machine_info(),
        "code": code_version(),
        "load_before": list(os.getloadavg()),
        "flop_formula": FLOP_FORMULA,
        "torch": {
            "available": use_torch,
            "note": None
            if use_torch
            else "PyTorch comparison skipped (--no-torch)"
            if args.no_torch
            else TORCH_SKIPPED,
        },
    }
    log(f"matmul peak ({threads} threads)")
    peaks = [matmul_peak_gflops(threads, reps=3 if args.quick else 5)]
    result["idle_rss_mib"] = {"numpy+numba": idle_rss_mib(threads, "numpy, numba")}
    if use_torch:
        result["idle_rss_mib"]["numpy+torch"] = idle_rss_mib(threads, "numpy, torch")
    result["configs"] = {}
    with tempfile.TemporaryDirectory(prefix="tinylm-bench-") as tmp:
        workdir = Path(tmp)
        if "gpt2" in config_names(args):
            use_hf = not args.no_torch and gpt2.transformers_available()
            rounds = settings["rounds"]
            result["gpt2"] = gpt2.bench_gpt2(run_child, workdir, threads, rounds, args.quick, use_hf, log)
            if args.no_torch:
                result["gpt2"]["note"] = "transformers comparison skipped (--no-torch)"
            result["blas"], result["threading_layer"] = result["gpt2"]["blas"], result["gpt2"]["threading_layer"]
        raw = _bench_training(result, names, workdir, settings, threads, use_torch, args, log) if names else {}
        peaks.append(matmul_peak_gflops(threads, reps=3 if args.quick else 5))
    result["matmul_peak_gflops"] = max(peaks)
    result["matmul_peak_samples"] = peaks
    for name in names:
        result["configs"][name] = summarise(*raw[name], result["matmul_peak_gflops"])
        for engine, idle in (("tinylm", "numpy+numba"), ("torch", "numpy+torch")):
            if engine in result["configs"][name]:
                summary = result["configs"][name][engine]
                summary["rss_over_idle_mib"] = summary["peak_rss_mib"] - result["idle_rss_mib"][idle]
    result["load_after"] = list(os.getloadavg())
    result["targets"] = check_targets(result)
    return result


def _bench_training(result, names, workdir, settings, threads, use_torch, args, log) -> dict:
    """The training configurations, then generation and start-up; returns each configuration's raw runs."""
    gen_config = GEN_CONFIG if GEN_CONFIG in names else names[0]
    raw = {}
    for name in names:
        gen_tokens = settings["gen_tokens"] if name == gen_config else 0
        raw[name] = bench_config(name, workdir, settings, threads, use_torch, gen_tokens, log)
    result["generation"] = _generation(*raw[gen_config])
    result["startup"] = _startup(raw[gen_config][0], workdir, settings, threads, use_torch, not args.no_cold_start, log)
    first = raw[names[0]][1]["tinylm"][0]
    result["blas"], result["threading_layer"] = first["blas"], first["threading_layer"]
    return raw


def config_names(args) -> list[str]:
    """The configurations named by --configs (all when not given)."""
    names = [n.strip() for n in (args.configs or ",".join(CONFIGS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_CONFIGS]
    if unknown or not names:
        raise ValueError(
            f"unknown configuration {', '.join(unknown) or '(none)'}; choose among {', '.join(ALL_CONFIGS)}"
        )
    return names


def check_targets(result: dict) -> list[dict]:
    """The speed and memory targets, each with the measured figure and whether it is met (None: not measured)."""
    out = []
    for key, label, limit, higher in TARGETS + gpt2.TARGETS:
        value = _lookup(result, key)
        section = result.get(key.split(".")[0], {})
        if section.get("config", "baby") != "baby":  # generation and start-up targets are about baby
            value = None
        out.append(
            {
                "target": label,
                "key": key,
                "limit": limit,
                "higher": higher,
                "value": value,
                "met": None if value is None else (value >= limit if higher else value <= limit),
            }
        )
    return out


def _lookup(result: dict, key: str):
    node = result
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _argv(args) -> list[str]:
    out = ([f"--configs {args.configs}"] if args.configs else []) + [f"--threads {args.threads}"]
    out += [
        f"--{flag.replace('_', '-')}" for flag in ("quick", "json", "no_torch", "no_cold_start") if getattr(args, flag)
    ]
    out += [f"--device {args.device}"] if args.device != "cpu" else []
    return out + ([f"--rounds {args.rounds}"] if args.rounds else [])


def run_profile(args) -> dict:
    """Per-kernel time of one training step of the first configuration named (default baby)."""
    name = config_names(args)[0] if args.configs else "baby"
    if name not in CONFIGS:
        raise ValueError(f"--profile times a training step; choose among {', '.join(CONFIGS)}")
    with tempfile.TemporaryDirectory(prefix="tinylm-profile-") as tmp:
        settings = dict(QUICK if args.quick else FULL)
        spec = make_spec(name, Path(tmp), settings, max(1, args.threads), 0)
        steps = 10 if args.quick else 50
        spec.update(mode="profile", steps=steps if name != "small" else steps // 5)  # a small step takes seconds
        answer = run_child("tinylm", spec, Path(tmp))
        if not args.no_torch and torch_available():
            answer["torch"] = run_child("torch", _torch_spec(spec), Path(tmp))
    answer["rows"].sort(key=lambda row: -row["ms"])
    return {"config": name, "threads": spec["threads"], "load": list(os.getloadavg()), **answer}


def run_bench(args) -> int:
    """Entry point for `tinylm bench`; returns the exit status."""
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.device == "cuda":
        from tinylm.kernels.backend import cuda_missing, cuda_simulated

        problem = cuda_missing()
        if problem is not None:
            print(f"tinylm: error: --device cuda: {problem}", file=sys.stderr)
            return 2
        if args.profile or "gpt2" in config_names(args):
            print(
                "tinylm: error: --profile and --configs gpt2 run on the CPU only; leave out --device cuda",
                file=sys.stderr,
            )
            return 2
        if cuda_simulated():
            log("tinylm: --device cuda runs in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): figures mean nothing")
    try:
        if args.profile:
            result = run_profile(args)
            print(json.dumps(result, indent=2) if args.json else format_profile(result))
            return 0
        result = run_benchmark(args, log)
    except (BenchError, ValueError) as exc:
        print(f"tinylm: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tinylm bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_arguments(parser)
    return run_bench(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())


def matmul_peak_gflops(threads: int, n: int = 2048, reps: int = 5) -> float:
    """Best float32 n x n matrix product through numpy's BLAS, in GFLOP/s."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(a, b, out=out)
        best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(reps))
    return 2 * n**3 / best / 1e9
