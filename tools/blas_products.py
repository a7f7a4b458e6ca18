"""The matrix products of one 64-token GPT-2 small forward pass: numpy's BLAS against torch's, same threads.

    python tools/blas_products.py [--threads 2] [--tokens 64] [--reps 7]

A traced forward is these products plus little else, so their speed bounds the pass. Each layer has its own
weights (12 x c_attn, attn.c_proj, c_fc, mlp.c_proj in Hugging Face's (in, out) layout), so every weight comes
from memory once per pass as in the model, not from cache. Rows: numpy's np.matmul with its own BLAS
threads; tinylm's column split (the inference pass: each thread one block of columns through BLAS at one
thread); torch's F.linear (MKL/oneDNN) on the same numbers, when torch is installed. Median of --reps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

LAYERS, C, V = 12, 768, 50257
SHAPES = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)]  # (in, out) per layer, the model's order


def median_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1e3 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()

    from threadpoolctl import threadpool_info, threadpool_limits

    from tinylm.core.parallel import ColumnSplit

    rng = np.random.default_rng(0)
    T = args.tokens
    weights = [[rng.standard_normal(s, dtype=np.float32) * 0.02 for s in SHAPES] for _ in range(LAYERS)]
    wte = rng.standard_normal((V, C), dtype=np.float32) * 0.02  # (V, C): the tied head reads it transposed
    inputs = {n: rng.standard_normal((T, n), dtype=np.float32) for n in (C, 4 * C)}
    outs = {n: np.empty((T, n), np.float32) for n in (C, 3 * C, 4 * C, V)}
    layer_flops = 2 * T * LAYERS * sum(i * o for i, o in SHAPES)
    head_flops = 2 * T * C * V

    rows = []

    def layers(matmul):
        for layer in weights:
            for w in layer:
                matmul(outs[w.shape[1]], inputs[w.shape[0]], w)

    with threadpool_limits(args.threads):
        rows.append(
            (
                "numpy np.matmul, BLAS threads",
                median_ms(lambda: layers(lambda o, x, w: np.matmul(x, w, out=o)), args.reps),
                median_ms(lambda: np.matmul(inputs[C], wte.T, out=outs[V]), args.reps),
            )
        )
    with ColumnSplit(args.threads) as split:
        rows.append(
            (
                "numpy, tinylm's column split",
                median_ms(lambda: layers(split.matmul), args.reps),
                median_ms(lambda: split.matmul_t(outs[V], inputs[C], wte), args.reps),
            )
        )
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        t_weights = [[torch.from_numpy(np.ascontiguousarray(w.T)) for w in layer] for layer in weights]  # (out, in)
        t_inputs = {n: torch.from_numpy(x) for n, x in inputs.items()}
        t_wte = torch.from_numpy(wte)

        def torch_layers():
            with torch.no_grad():
                for layer in t_weights:
                    for w in layer:
                        torch.nn.functional.linear(t_inputs[w.shape[1]], w)

        def torch_head():
            with torch.no_grad():
                torch.nn.functional.linear(t_inputs[C], t_wte)

        rows.append(("torch F.linear", median_ms(torch_layers, args.reps), median_ms(torch_head, args.reps)))

    blas = ", ".join(f"{i['internal_api']} {i['version']}" for i in threadpool_info() if i["user_api"] == "blas")
    print(f"GPT-2 small's products at {T} tokens, {args.threads} threads; numpy's BLAS: {blas}")
    print(f"{'':32s} {'48 layer products':>20s} {'tied head':>16s} {'total':>9s}")
    for name, lay, head in rows:
        layer_rate, head_rate = layer_flops / lay / 1e6, head_flops / head / 1e6
        total = lay + head
        print(f"{name:32s} {lay:8.1f} ms {layer_rate:5.0f} GF/s {head:6.1f} ms {head_rate:4.0f} GF/s {total:6.1f} ms")


if __name__ == "__main__":
    main()
