"""`tinylm bench` output: machine description, the plain-text table, the per-kernel profile."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

from .gpt2 import format_gpt2

# (result key, what, limit, higher is better): the project's speed, memory and start-up targets.
TARGETS = [
    ("configs.slm.speed_ratio", "training slm, speed vs PyTorch", 5.0, True),
    ("configs.baby.speed_ratio", "training baby, speed vs PyTorch", 1.5, True),
    ("configs.small.speed_ratio", "training small, speed vs PyTorch", 1.2, True),
    ("generation.ratio_vs_torch_nocache", "generation baby, vs PyTorch without KV cache", 10.0, True),
    ("generation.ratio_vs_torch_kv", "generation baby, vs PyTorch with KV cache", 3.0, True),
    ("configs.baby.tinylm.peak_rss_mib", "peak memory training baby (MiB)", 200.0, False),
    ("startup.warm_s", "fresh process to first baby step, warm cache (s)", 1.5, False),
    ("startup.cold_s", "fresh process to first baby step, empty cache (s)", 15.0, False),
]
SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """CPU model, cores, SIMD flags, memory and library versions (without importing torch)."""
    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "flags": [],
        "memory_gb": None,
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "torch": _version("torch"),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    info["cpu"] = value.strip()
                elif key.strip() == "flags":
                    present = set(value.split())
                    info["flags"] = [flag for flag in SIMD_FLAGS if flag in present]
                    break
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def code_version() -> dict:
    """The git commit of the source tree being measured and which kernel/model files differ from it."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--", "kernels", "core"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "modified": []}
    modified = [line[3:] for line in status if not line[3:].startswith("core/bench")]
    return {"commit": commit or None, "modified": modified}


def _blas_line(blas: list[dict]) -> str:
    """Each thread pool the tinylm process loaded, named by the package that ships it."""
    parts = []
    for b in blas:
        owner = os.path.basename(os.path.dirname(b.get("filepath") or "")).removesuffix(".libs") or "?"
        if b.get("user_api") == "blas":
            parts.append(
                f"{owner}: {b.get('internal_api')} {b.get('version')} ({b.get('architecture') or '?'} "
                f"kernels, {b.get('num_threads')} threads)"
            )
        else:
            parts.append(f"{b.get('internal_api')} ({b.get('prefix')}, {b.get('num_threads')} threads)")
    return "; ".join(parts) or "unknown"


def _num(x, fmt=",.0f", missing="-"):
    return missing if x is None else format(x, fmt)


def _header(r: dict) -> list[str]:
    m = r["machine"]
    load = lambda xs: " ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    lines = [
        f"tinylm bench  {r['date']}  ({r['threads']} threads, {r['rounds']} tinylm/PyTorch rounds"
        f"{', quick' if r['quick'] else ''})",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {' '.join(m['flags'])}",
        f"source: commit {r['code']['commit']}"
        + (f", modified: {' '.join(r['code']['modified'])}" if r["code"]["modified"] else ", clean"),
        f"python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, torch {m['torch'] or 'not installed'}",
        f"thread pools in the tinylm process: {_blas_line(r.get('blas', []))}; Numba threading layer "
        f"{r.get('threading_layer')}"
        + (f"  [OPENBLAS_CORETYPE={m['openblas_coretype']}]" if m["openblas_coretype"] else ""),
        f"load average (1, 5, 15 min): before {load(r['load_before'])}, after {load(r['load_after'])}",
        f"float32 matmul peak (numpy 2048x2048, best of the run): {r['matmul_peak_gflops']:.1f} GFLOP/s",
        f"FLOPs: {r['flop_formula']}",
    ]
    idle = ", ".join(f"{k} {v:.0f} MiB" for k, v in r["idle_rss_mib"].items())
    lines.append(f"idle interpreter RSS: {idle}")
    if r["torch"]["note"]:
        lines.append(r["torch"]["note"])
    busiest = max(r["load_before"][0], r["load_after"][0])
    if busiest > 0.5 * (m["cores"] or 1):
        lines.append(
            f"WARNING: the machine was busy (load {busiest:.2f} on {m['cores']} cores): other processes "
            "compete for the cores, so absolute figures are low and ratios noisy; rerun when idle"
        )
    return lines


def format_report(r: dict) -> str:
    """The benchmark as a readable plain-text table."""
    lines = _header(r) + [""]
    if "gpt2" in r:
        lines += format_gpt2(r["gpt2"]) + [""]
    if r["configs"]:
        lines += _training_lines(r) + [""]
    lines += ["targets"]
    for t in r["targets"]:
        ran = "gpt2" in r if t["key"].startswith("gpt2.") else bool(r["configs"])
        if not ran:
            continue  # a section this run left out
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
        sign = ">=" if t["higher"] else "<="
        lines.append(f"  {t['target']:<52} {_num(t['value'], '.2f'):>8}  ({sign} {t['limit']:g})  {verdict}")
    return "\n".join(line.rstrip() for line in lines)


def _training_lines(r: dict) -> list[str]:
    """Training, generation and start-up of the small configurations."""
    lines = []
    head = (
        f"{'config':<7}{'engine':<8}{'ms/step':>10}{'tokens/s':>11}{'GFLOP/s':>9}{'% peak':>8}"
        f"{'peak RSS (over idle)':>22}   {'tinylm speed / torch':<22}"
    )
    lines += [
        "training (median step after warm-up; speed ratio = torch ms / tinylm ms, range over rounds)",
        head,
        "-" * len(head),
    ]
    for name, c in r["configs"].items():
        for engine in ("tinylm", "torch"):
            e = c.get(engine)
            if e is None:
                continue
            ratio = ""
            if engine == "tinylm" and "speed_ratio" in c:
                lo, hi = c["speed_ratio_range"]
                ratio = f"{c['speed_ratio']:.2f}x ({lo:.2f}-{hi:.2f})"
            rss = f"{e['peak_rss_mib']:.0f} MiB ({e['rss_over_idle_mib']:+.0f})"
            lines.append(
                f"{name if engine == 'tinylm' else '':<7}{engine:<8}{e['step_ms']:>10.2f}"
                f"{e['tokens_per_s']:>11,.0f}{e['gflops']:>9.1f}{100 * e['peak_share']:>7.1f}%"
                f"{rss:>22}   {ratio}"
            )
    for name, c in r["configs"].items():
        m = c["model"]
        lines.append(
            f"  {name}: L={m['n_layer']} NH={m['n_head']} C={m['n_embd']} T={m['block_size']} "
            f"B={c['batch_size']} V={m['vocab_size']} ({c['corpus']}), "
            f"{c['flops_per_token'] / 1e6:.2f} MFLOP/token"
        )
    g = r["generation"]
    lines += [
        "",
        f"generation ({g['config']}, {g['tokens']} tokens, {g['sampling']})",
        f"  tinylm, KV cache          {g['tinylm_kv_tokens_per_s']:>9,.0f} tokens/s",
    ]
    for kind, label in (("nocache", "no KV cache"), ("kv", "KV cache")):
        if f"torch_{kind}_tokens_per_s" in g:
            lines.append(
                f"  torch, {label:<18} {g[f'torch_{kind}_tokens_per_s']:>9,.0f} tokens/s"
                f"   tinylm is {g[f'ratio_vs_torch_{kind}']:.1f}x"
            )
    s = r["startup"]
    lines += [
        "",
        f"fresh process to first finished training step ({s['config']})",
        f"  {'':<26}{'total':>8}{'imports':>9}{'data+model':>12}{'1st step':>10}",
    ]
    for key, label in (
        ("warm_phases", "tinylm, warm Numba cache"),
        ("cold_phases", "tinylm, empty Numba cache"),
        ("torch_phases", "torch"),
    ):
        ph = s.get(key)
        if ph:
            lines.append(
                f"  {label:<26}{ph['total']:>7.2f}s{ph['import']:>8.2f}s{ph['build']:>11.2f}s{ph['first_step']:>9.2f}s"
            )
        elif key == "cold_phases":
            lines.append(f"  {label:<26}  skipped")
    lines.append(
        "  (tinylm: corpus, char tokenizer and encoding included, as `tinylm train` does"
        + ("; torch: reads the already encoded ids)" if "torch_phases" in s else ")")
    )
    return lines


def format_profile(p: dict) -> str:
    """Per-kernel breakdown of one training step, largest first, with its share of the step."""
    step = p["step_ms_profiled"]
    lines = [
        f"profile of one '{p['config']}' training step ({p['threads']} threads, {p['steps']} steps averaged, "
        f"load {p['load'][0]:.2f})",
        f"step {step:.2f} ms with the timing shim ({p['step_ms_plain']:.2f} ms median without it)",
        f"{'operation':<34}{'calls':>6}{'ms':>9}{'% step':>8}{'GFLOP/s':>9}",
    ]
    total = 0.0
    for row in p["rows"]:
        total += row["ms"]
        lines.append(
            f"{row['op']:<34}{row['calls']:>6.3g}{row['ms']:>9.3f}{100 * row['ms'] / step:>7.1f}%"
            f"{_num(row['gflops'], '9.1f', ' ' * 9)}"
        )
    rest = step - total
    lines.append(f"{'other (Python, batch, loss glue)':<34}{'':>6}{rest:>9.3f}{100 * rest / step:>7.1f}%")
    t = p.get("torch")
    if t:
        lines += [
            "",
            f"PyTorch, same step: {t['step_ms_plain']:.2f} ms without the profiler; self CPU time by "
            f"operator, top {len(t['rows'])}",
            f"{'operator':<44}{'calls':>6}{'ms':>9}",
        ]
        lines += [f"{row['op'][:43]:<44}{row['calls']:>6}{row['ms']:>9.3f}" for row in t["rows"]]
    return "\n".join(lines)
