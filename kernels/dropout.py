"""Dropout with a mask kept for the backward pass, from uniform draws made by the caller."""

from numba import njit

from .flags import JIT

# memory-bound and small: serial (a thread-pool launch costs more than the loop)


@njit(**JIT)
def dropout_forward(out, mask, inp, rand, p):
    """WRITES mask = (rand >= p) / (1 - p) and out = inp * mask; rand is uniform [0, 1), any shape."""
    if not (0.0 <= p < 1.0):
        raise ValueError("dropout_forward: p must be in [0, 1)")
    o = out.reshape(-1)
    m = mask.reshape(-1)
    x = inp.reshape(-1)
    r = rand.reshape(-1)
    keep = 1.0 / (1.0 - p)
    for i in range(x.shape[0]):
        mi = keep if r[i] >= p else 0.0
        m[i] = mi
        o[i] = x[i] * mi


@njit(**JIT)
def dropout_backward(dinp, dout, mask):
    """WRITES dinp = dout * mask, any shape."""
    di = dinp.reshape(-1)
    do = dout.reshape(-1)
    m = mask.reshape(-1)
    for i in range(di.shape[0]):
        di[i] = do[i] * m[i]
