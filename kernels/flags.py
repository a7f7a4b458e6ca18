"""Numba jit options shared by every kernel: one place to change them."""

# Safe fast-math: lets LLVM reassociate and vectorise reductions, but keeps IEEE
# semantics for inf/NaN ("nnan"/"ninf" are left out) because masked attention scores are -inf
# and a NaN loss must stay visible instead of being optimised away.
SAFE_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Every kernel is nogil: training runs in a worker thread next to the UI (see DESIGN.md).
# error_model="numpy": numba's default ("python") tests every float division for a zero divisor
# to raise ZeroDivisionError; that branch stops LLVM vectorising any loop that divides
# (AdamW, GELU, exp) and costs up to 8x. With "numpy" a division by zero gives inf/nan as in numpy.
JIT = dict(cache=True, nogil=True, fastmath=SAFE_FASTMATH, error_model="numpy")

# For kernels with enough independent work per call to amortise a thread-pool launch.
JIT_PARALLEL = dict(JIT, parallel=True)
