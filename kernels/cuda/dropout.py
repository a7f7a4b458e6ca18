"""Dropout on the GPU: the mask from uniform draws made on the host, elementwise over any shape."""

from . import _runtime as rt
from ._runtime import BLOCK, cuda, elementwise


@cuda.jit
def _dropout_forward_kernel(out, mask, inp, rand, p, keep):
    i = cuda.grid(1)
    if i < inp.shape[0]:
        m = keep if rand[i] >= p else 0.0
        mask[i] = m
        out[i] = inp[i] * m


@cuda.jit
def _mul_kernel(out, a, b):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = a[i] * b[i]


def dropout_forward(out, mask, inp, rand, p):
    """WRITES mask = (rand >= p) / (1 - p) and out = inp * mask; rand is uniform [0, 1), any shape."""
    rt.require_cuda()
    if not (0.0 <= p < 1.0):
        raise ValueError("dropout_forward: p must be in [0, 1)")
    n = inp.size
    if n == 0:
        return
    keep = 1.0 / (1.0 - p)
    args = (rt.flat(out), rt.flat(mask), rt.flat(inp), rt.flat(rand), float(p), keep)
    rt.launch(_dropout_forward_kernel, rt.blocks_for(n), BLOCK, *args)


def dropout_backward(dinp, dout, mask):
    """WRITES dinp = dout * mask, any shape."""
    rt.require_cuda()
    elementwise(_mul_kernel, dinp, dout, mask)
