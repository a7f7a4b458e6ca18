"""Token + position embedding: out[b, t] = wte[ids[b, t]] + wpe[t]."""

from numba import njit

from .flags import JIT


@njit(**JIT)
def encoder_forward(out, ids, wte, wpe):
    """WRITES out (B, T, C) = wte[ids] + wpe[:T]; ids (B, T) int, wte (V, C), wpe (Tmax, C)."""
    B, T, C = out.shape
    V = wte.shape[0]
    if T > wpe.shape[0]:
        raise ValueError("encoder_forward: sequence longer than the position table")
    for b in range(B):
        for t in range(T):
            ix = ids[b, t]
            # numba does not bounds-check: a bad id would read foreign memory.
            if ix < 0 or ix >= V:
                raise IndexError("encoder_forward: token id out of range")
            for c in range(C):
                out[b, t, c] = wte[ix, c] + wpe[t, c]


@njit(**JIT)
def encoder_backward(dwte, dwpe, dout, ids):
    """ADDS dout (B, T, C) into dwte (V, C) rows ids and into dwpe[:T] (skipped if dwpe has 0 rows)."""
    B, T, C = dout.shape
    V = dwte.shape[0]
    add_pos = dwpe.shape[0] > 0
    if add_pos and T > dwpe.shape[0]:
        raise ValueError("encoder_backward: sequence longer than the position table")
    # serial: several positions can hold the same token, so rows of dwte are shared.
    for b in range(B):
        for t in range(T):
            ix = ids[b, t]
            if ix < 0 or ix >= V:
                raise IndexError("encoder_backward: token id out of range")
            for c in range(C):
                dwte[ix, c] += dout[b, t, c]
            if add_pos:
                for c in range(C):
                    dwpe[t, c] += dout[b, t, c]


@njit(**JIT)
def gather_windows(x, y, data, uniform):
    """WRITES x[b] = data[s:s+T], y[b] = data[s+1:s+T+1] with s = floor(uniform[b] * (len(data) - T)).

    The random training windows of one batch; uniform (B,) holds draws in [0, 1).
    """
    B, T = x.shape
    span = data.shape[0] - T
    for b in range(B):
        s = min(int(uniform[b] * span), span - 1)
        for t in range(T):
            x[b, t] = data[s + t]
            y[b, t] = data[s + t + 1]
