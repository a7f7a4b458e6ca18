"""Numba jit options shared by every kernel: one place to change them."""

# Safe fast-math: lets LLVM reassociate and vectorise reductions, but keeps IEEE
# semantics for inf/NaN ("nnan"/"ninf" are left out) because masked attention scores are -inf
# and a NaN loss must stay visible instead of being optimised away.
SAFE_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Every kernel is nogil: training runs in a worker thread next to the UI (see DESIGN.md).
JIT = dict(cache=True, nogil=True, fastmath=SAFE_FASTMATH)

# For kernels with enough independent work per call to amortise a thread-pool launch.
JIT_PARALLEL = dict(JIT, parallel=True)
