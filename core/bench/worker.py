"""The tinylm side of `tinylm bench`, run in a fresh process per measurement so peaks don't mix.

`python -m tinylm.core.bench.worker SPEC.json` prints one JSON line. Modes: `train` (timed steps,
peak memory, optionally generation), `startup` (one step from nothing, as `tinylm train` would),
`profile` (per-kernel time of a training step through a timing shim around tinylm.kernels).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from tinylm.core.bench.memory_peak import peak_rss_kb

# name -> (model shape, batch size, corpus): a tiny teaching model, nanoGPT's CPU "baby" model and a
# 6-layer 384-wide one.
CONFIGS = {
    "slm": (dict(block_size=8, n_layer=2, n_head=2, n_embd=16), 8, "builtin"),
    "baby": (dict(block_size=64, n_layer=4, n_head=4, n_embd=128), 12, "shakespeare"),
    "small": (dict(block_size=256, n_layer=6, n_head=6, n_embd=384), 8, "shakespeare"),
}
SHAKESPEARE = Path("shared") / "data" / "tinyshakespeare.txt"


def corpus_path(kind: str) -> str | None:
    """tiny shakespeare if ../shared/data holds it (beside the repo or the working directory), else None
    (the built-in corpus)."""
    if kind != "shakespeare":
        return None
    repo = Path(__file__).resolve().parents[2]
    for root in (repo.parent, Path.cwd().parent, Path.cwd()):
        if (root / SHAKESPEARE).is_file():
            return str(root / SHAKESPEARE)
    return None


def train_config(batch_size: int):
    """nanoGPT's CPU settings (TrainConfig's defaults); evaluation never falls inside a timed window."""
    from tinylm.core import TrainConfig

    return TrainConfig(batch_size=batch_size, max_steps=2000, eval_interval=10**9)


def _timed_loop(step, spec: dict) -> list[float]:
    """Run warm-up steps, then time steps until min_steps and min_time are both reached (or max_steps)."""
    times, budget_end = [], None
    for _ in range(spec["warmup"]):
        step()
    while True:
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
        budget_end = budget_end or time.perf_counter() + spec["min_time"]
        if len(times) >= spec["max_steps"] or (len(times) >= spec["min_steps"] and time.perf_counter() > budget_end):
            return times


def _build(spec: dict, kernels=None):
    import numpy as np

    from tinylm.core import GPT, ModelConfig, Trainer, get_kernels, tokenizer_from_dict

    kernels = kernels if kernels is not None else get_kernels(spec.get("device", "cpu"))
    tokenizer = tokenizer_from_dict(spec["tokenizer"])
    model = GPT(ModelConfig(**spec["model"]), tokenizer, seed=spec["seed"], kernels=kernels)
    # no history: its snapshots at steps 0, 1, 2, 3, 4, 6, ... would land inside the timed steps
    return Trainer(model, np.load(spec["ids_path"]), train_config(spec["train"]["batch_size"]), history=False)


def run_train(spec: dict) -> dict:
    import numba
    from threadpoolctl import threadpool_info

    from tinylm.core import Sampling

    trainer = _build(spec)
    times = _timed_loop(trainer.step, spec)
    result = {
        "engine": "tinylm",
        "step_s": times,
        "losses": [h.train_loss for h in trainer.history[:3]],
        "peak_rss_kb": peak_rss_kb(),
        "blas": threadpool_info(),
        "threading_layer": _threading_layer(numba),
    }
    if spec["gen_tokens"]:
        model = trainer.model
        for _ in model.generate([0], Sampling(temperature=0.8, top_k=200, seed=1), min(50, spec["gen_tokens"])):
            pass  # warm-up: loads the decode kernel
        started = time.perf_counter()
        n = sum(
            1 for _ in model.generate([0], Sampling(temperature=0.8, top_k=200, seed=spec["seed"]), spec["gen_tokens"])
        )
        result["gen_kv_s"] = time.perf_counter() - started
        result["gen_tokens"] = n
    return result


def _threading_layer(numba) -> str | None:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        return None


def run_startup(spec: dict) -> dict:
    """What `tinylm train` does before its first step: load the corpus, train the char tokenizer,
    encode, build the model and trainer, then one step."""
    from tinylm.core import DEFAULT_CORPUS, ModelConfig, get_kernels, load_corpus, make_trainer

    imported = time.time()
    corpus = load_corpus(spec["corpus"] or DEFAULT_CORPUS)
    trainer = make_trainer(
        corpus,
        "char",
        model_config=ModelConfig(**spec["model"]),
        train_config=train_config(spec["train"]["batch_size"]),
        kernels=get_kernels(spec.get("device", "cpu")),
    )
    built = time.time()
    trainer.step()
    return {"engine": "tinylm", "imported_at": imported, "built_at": built, "finished_at": time.time()}


# ----- profile: a kernel namespace that times every call ---------------------------------------

_ROLES = {(1, 3): "attn.c_attn", (1, 1): "attn.c_proj", (1, 4): "mlp.c_fc", (4, 1): "mlp.c_proj"}


def _label_and_flops(name: str, args) -> tuple[str, float]:
    """A readable row name (matmuls by layer role) and the FLOPs of the call (0 where not counted)."""
    if name in ("matmul_forward", "matmul_backward"):
        inp, weight = (args[1], args[2]) if name == "matmul_forward" else (args[4], args[5])
        (N, Cin), OC = inp.shape, weight.shape[1]
        small = min(Cin, OC)
        role = _ROLES.get((Cin // small, OC // small), f"{Cin}x{OC}")
        mults = 2 if name == "matmul_forward" else 4
        return f"{name} {role}", mults * N * Cin * OC
    if name in ("lm_head_forward", "lm_head_backward"):
        inp, wte = (args[1], args[2]) if name == "lm_head_forward" else (args[3], args[4])
        mults = 2 if name == "lm_head_forward" else 4
        return name, mults * inp.shape[0] * inp.shape[1] * wte.shape[0]
    if name in ("attention_forward", "attention_backward"):
        qkv = args[3]
        B, T, C3 = qkv.shape
        causal_pairs = T * (T + 1) / 2
        mults = 4 if name == "attention_forward" else 8  # QK^T and AV; twice that backward
        return name, mults * B * causal_pairs * (C3 // 3)
    return name, 0.0


class _TimedKernels:
    """A kernel namespace passing every call on to another one, timed and counted by row name."""

    def __init__(self, kernels):
        self._kernels = kernels
        self.reset()

    def reset(self) -> None:
        """Forget every call timed so far."""
        self.seconds, self.calls, self.flops = defaultdict(float), defaultdict(int), defaultdict(float)

    def __getattr__(self, name):
        fn = getattr(self._kernels, name)
        if not callable(fn):  # DEVICE: a value, which the model reads to choose its path
            return fn

        def timed(*args):
            started = time.perf_counter()
            out = fn(*args)
            elapsed = time.perf_counter() - started
            label, f = _label_and_flops(name, args)
            self.seconds[label] += elapsed
            self.calls[label] += 1
            self.flops[label] += f
            return out

        self.__dict__[name] = timed  # made once per name
        return timed


def run_profile(spec: dict) -> dict:
    from tinylm.core import get_kernels

    trainer = _build(spec)
    plain = _timed_loop(trainer.step, {**spec, "min_steps": spec["steps"], "max_steps": spec["steps"]})
    timing = _TimedKernels(get_kernels("cpu"))
    profiled = _build(spec, kernels=timing)  # the same run, on the timing namespace
    profiled.step()  # buffers made, as the plain run's warm-up made them
    timing.reset()
    shimmed = _timed_loop(profiled.step, {**spec, "warmup": 0, "min_steps": spec["steps"], "max_steps": spec["steps"]})
    seconds, calls, flops = timing.seconds, timing.calls, timing.flops
    n = len(shimmed)
    rows = [
        {"op": k, "ms": 1e3 * v / n, "calls": calls[k] / n, "gflops": flops[k] / v / 1e9 if flops[k] else None}
        for k, v in seconds.items()
    ]
    return {
        "engine": "tinylm",
        "steps": n,
        "step_ms_plain": 1e3 * sorted(plain)[len(plain) // 2],
        "step_ms_profiled": 1e3 * sum(shimmed) / n,
        "rows": rows,
    }


# ----- GPT-2 scale: open a checkpoint, trace a prompt, generate ------------------------------


def run_gpt2_make(spec: dict) -> dict:
    """Write a checkpoint of random weights with the spec's shape (GPT-2 initialisation)."""
    from tinylm.core import GPT, ModelConfig, save_checkpoint

    model = GPT(ModelConfig(**spec["model"]), seed=spec["seed"])
    save_checkpoint(spec["path"], model)
    return {"engine": "tinylm", "weight_bytes": model.flat.nbytes}


def _median_of_runs(fn, reps: int) -> tuple[float, object]:
    """fn() once to warm up, then reps timed calls: (median seconds, the last result)."""
    out = fn()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], out


def run_gpt2(spec: dict) -> dict:
    """Open the checkpoint (peak memory over this process before opening it), time the full
    trace of a prompt, greedy generation with the KV cache, and one pass over the weights' bytes."""
    import numpy as np

    from tinylm.core import Sampling, load

    before = peak_rss_kb()
    started = time.perf_counter()
    model = load(spec["path"])
    result = {
        "engine": "tinylm",
        "load_s": time.perf_counter() - started,
        "rss_before_kb": before,
        "rss_peak_kb": peak_rss_kb(),
        "weight_bytes": model.flat.nbytes,
    }
    ids = np.random.default_rng(spec["seed"]).integers(0, model.config.vocab_size, spec["trace_tokens"])
    result["trace_s"], _ = _median_of_runs(lambda: model.trace(ids), spec["reps"])
    prompt, n = ids[: spec["prompt_tokens"]], spec["gen_tokens"]
    # every one of the n tokens is timed, as transformers' min_new_tokens does on its side
    greedy = lambda: [s.id for s in model.generate(prompt, Sampling(greedy=True), n, stop_at_eos=False)]  # noqa: E731
    result["gen_s"], result["gen_ids"] = _median_of_runs(greedy, max(1, spec["reps"] // 2))
    weights = list(model.params.values())
    result["pass_s"], _ = _median_of_runs(lambda: [w.sum() for w in weights], spec["reps"])
    import numba
    from threadpoolctl import threadpool_info

    result.update(rss_end_kb=peak_rss_kb(), blas=threadpool_info(), threading_layer=_threading_layer(numba))
    return result


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    from tinylm.core import limit_threads

    limit_threads(spec["threads"])
    modes = {"gpt2_make": run_gpt2_make, "gpt2": run_gpt2}
    run = {"train": run_train, "startup": run_startup, "profile": run_profile, **modes}[spec["mode"]]
    print(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
