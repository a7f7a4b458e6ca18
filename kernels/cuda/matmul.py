"""Dense layers and the tied LM head on the GPU: one tiled shared-memory GEMM, bias fused.

A plain TILE x TILE tile (16 on a GPU), one output per thread. cuBLAS (through CuPy, say) would
be several times faster on large layers; this keeps the package numpy + numba only.
"""

from . import _runtime as rt
from ._runtime import TILE, cuda

# +1 column of padding: the transposed tile stores would otherwise hit one bank per column.
# A module constant because a shared array's shape must be a compile-time literal.
TILE_PAD = TILE + 1


def _make_gemm(dt, trans_a, trans_b, has_bias):
    """out (M, N) = op(a) (M, K) @ op(b) (K, N) [+ bias (N,)]; op transposes when asked.

    a is (M, K), or (K, M) when trans_a; b is (K, N), or (N, K) when trans_b. Transposed operands
    are loaded with the thread roles swapped so global reads stay coalesced along a's/b's last
    axis. The flags are compile-time constants: each combination is its own kernel.
    """

    @cuda.jit
    def gemm(out, a, b, bias):
        sa = cuda.shared.array((TILE, TILE_PAD), dt)  # sa[m, k]
        sb = cuda.shared.array((TILE, TILE_PAD), dt)  # sb[k, n]
        M, N = out.shape
        K = a.shape[0] if trans_a else a.shape[1]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row0 = cuda.blockIdx.y * TILE
        col0 = cuda.blockIdx.x * TILE
        row = row0 + ty
        col = col0 + tx
        acc = dt(0)
        for k0 in range(0, K, TILE):
            if trans_a:
                m = row0 + tx
                k = k0 + ty
                if m < M and k < K:
                    sa[tx, ty] = a[k, m]
                else:
                    sa[tx, ty] = dt(0)
            else:
                k = k0 + tx
                if row < M and k < K:
                    sa[ty, tx] = a[row, k]
                else:
                    sa[ty, tx] = dt(0)
            if trans_b:
                n = col0 + ty
                k = k0 + tx
                if n < N and k < K:
                    sb[tx, ty] = b[n, k]
                else:
                    sb[tx, ty] = dt(0)
            else:
                k = k0 + ty
                if k < K and col < N:
                    sb[ty, tx] = b[k, col]
                else:
                    sb[ty, tx] = dt(0)
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        if row < M and col < N:
            if has_bias:
                acc += bias[col]
            out[row, col] = acc

    return gemm


_gemm = rt.by_dtype(_make_gemm)


def _make_bias_grad(dt):
    @cuda.jit
    def bias_grad(dbias, dout):
        """Thread o WRITES dbias[o] = sum of column o of dout, rows in order."""
        N, OC = dout.shape
        o = cuda.grid(1)
        if o < OC:
            acc = dt(0)
            for i in range(N):
                acc += dout[i, o]
            dbias[o] = acc

    return bias_grad


_bias_grad = rt.by_dtype(_make_bias_grad)


def _launch_gemm(out, a, b, trans_a, trans_b, bias=None):
    M, N = out.shape
    if M * N == 0:
        return  # nothing to write
    has_bias = bias is not None
    kernel = _gemm(out.dtype, trans_a, trans_b, has_bias)
    blocks = ((N + TILE - 1) // TILE, (M + TILE - 1) // TILE)
    # without a bias the kernel never reads it; any 1-D array of the right dtype will do
    rt.launch(kernel, blocks, (TILE, TILE), out, a, b, bias if has_bias else rt.flat(out))


def matmul_forward(out, inp, weight, bias):
    """WRITES out (N, OC) = inp (N, C) @ weight (C, OC) + bias (OC,); bias of shape (0,) means none."""
    rt.require_cuda()
    _launch_gemm(out, inp, weight, False, False, bias if bias.shape[0] > 0 else None)


def matmul_backward(dinp, dweight, dbias, dout, inp, weight):
    """WRITES dinp = dout @ weight.T, dweight = inp.T @ dout, dbias = dout.sum(0) (skipped if (0,))."""
    rt.require_cuda()
    _launch_gemm(dinp, dout, weight, False, True)
    _launch_gemm(dweight, inp, dout, True, False)
    if dbias.shape[0] > 0:
        OC = dbias.shape[0]
        rt.launch(_bias_grad(dbias.dtype), rt.blocks_for(OC), rt.BLOCK, dbias, dout)


def lm_head_forward(out, inp, wte):
    """WRITES out (N, V) = inp (N, C) @ wte (V, C).T."""
    rt.require_cuda()
    _launch_gemm(out, inp, wte, False, True)


def lm_head_backward(dinp, dwte, dlogits, inp, wte):
    """WRITES dinp (N, C) = dlogits @ wte, dwte (V, C) = dlogits.T @ inp; encoder_backward then ADDS."""
    rt.require_cuda()
    _launch_gemm(dinp, dlogits, wte, False, False)
    _launch_gemm(dwte, dlogits, inp, True, False)
