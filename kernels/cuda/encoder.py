"""Token + position embedding on the GPU: out[b, t] = wte[ids[b, t]] + wpe[t]."""

import math

import numpy as np

from . import _runtime as rt
from ._runtime import cuda

# The backward pass splits the vocabulary into this many residue classes (id % VOCAB_SPLIT),
# one grid row each: more parallelism than one thread per channel, still no atomics.
VOCAB_SPLIT = 16


@cuda.jit
def _encoder_forward_kernel(out, ids, wte, wpe, bad_id):
    """One thread per (b, t, c); an out-of-range id writes NaN and raises bad_id[0]."""
    B, T, C = out.shape
    i = cuda.grid(1)
    if i < B * T * C:
        c = i % C
        bt = i // C
        b = bt // T
        t = bt % T
        ix = ids[b, t]
        if ix < 0 or ix >= wte.shape[0]:
            bad_id[0] = 1  # never read outside wte; the host raises IndexError
            out[b, t, c] = math.nan
        else:
            out[b, t, c] = wte[ix, c] + wpe[t, c]


@cuda.jit
def _encoder_backward_wte_kernel(dwte, dout, ids, bad_id):
    """Thread (c, class k) adds, in position order, every dout row whose id % VOCAB_SPLIT == k.

    Rows of dwte are shared by repeated tokens; giving each (row, channel) to exactly one
    thread avoids atomics and keeps the CPU kernel's summation order (deterministic).
    """
    B, T, C = dout.shape
    V = dwte.shape[0]
    c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    k = cuda.blockIdx.y
    if c < C:
        for b in range(B):
            for t in range(T):
                ix = ids[b, t]
                if ix < 0 or ix >= V:
                    bad_id[0] = 1
                elif ix % VOCAB_SPLIT == k:
                    dwte[ix, c] += dout[b, t, c]


@cuda.jit
def _encoder_backward_wpe_kernel(dwpe, dout):
    """One thread per (t, c): dwpe[t, c] += sum over b of dout[b, t, c], b in order."""
    B, T, C = dout.shape
    i = cuda.grid(1)
    if i < T * C:
        t = i // C
        c = i % C
        for b in range(B):
            dwpe[t, c] += dout[b, t, c]


def _raise_if_bad(bad_id, name):
    if rt.to_host(bad_id)[0] != 0:
        raise IndexError(f"{name}: token id out of range")


def encoder_forward(out, ids, wte, wpe):
    """WRITES out (B, T, C) = wte[ids] + wpe[:T]; ids (B, T) int, wte (V, C), wpe (Tmax, C).

    Raises IndexError for an id outside [0, V) (checked on the device: one 4-byte sync).
    """
    rt.require_cuda()
    B, T, C = out.shape
    if T > wpe.shape[0]:
        raise ValueError("encoder_forward: sequence longer than the position table")
    bad_id = rt.device_zeros(1, np.int32)
    n = B * T * C
    rt.launch(_encoder_forward_kernel, rt.blocks_for(n), rt.BLOCK, out, ids, wte, wpe, bad_id)
    _raise_if_bad(bad_id, "encoder_forward")


def encoder_backward(dwte, dwpe, dout, ids):
    """ADDS dout (B, T, C) into dwte (V, C) rows ids and into dwpe[:T] (skipped if dwpe has 0 rows)."""
    rt.require_cuda()
    B, T, C = dout.shape
    V = dwte.shape[0]
    add_pos = dwpe.shape[0] > 0
    if add_pos and T > dwpe.shape[0]:
        raise ValueError("encoder_backward: sequence longer than the position table")
    bad_id = rt.device_zeros(1, np.int32)
    classes = min(VOCAB_SPLIT, max(V, 1))
    blocks = (rt.blocks_for(C), classes)
    rt.launch(_encoder_backward_wte_kernel, blocks, rt.BLOCK, dwte, dout, ids, bad_id)
    if add_pos:
        n = T * C
        rt.launch(_encoder_backward_wpe_kernel, rt.blocks_for(n), rt.BLOCK, dwpe, dout)
    _raise_if_bad(bad_id, "encoder_backward")


@cuda.jit
def _gather_windows_kernel(x, y, data, uniform):
    """One thread per (b, t): copy the window's token and its successor."""
    B, T = x.shape
    i = cuda.grid(1)
    if i < B * T:
        b = i // T
        t = i % T
        span = data.shape[0] - T
        s = int(uniform[b] * span)
        if s > span - 1:  # (no builtin min: it does not compile for the device here)
            s = span - 1
        x[b, t] = data[s + t]
        y[b, t] = data[s + t + 1]


def gather_windows(x, y, data, uniform):
    """WRITES x[b] = data[s:s+T], y[b] = data[s+1:s+T+1], s = floor(uniform[b] * (len(data) - T))."""
    rt.require_cuda()
    B, T = x.shape
    rt.launch(_gather_windows_kernel, rt.blocks_for(B * T), rt.BLOCK, x, y, data, uniform)
