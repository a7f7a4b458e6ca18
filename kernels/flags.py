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

# Below this much work (elements touched) a parallel kernel runs its loop serially: waking the
# thread pool costs 10-50 us (more with OMP_WAIT_POLICY=PASSIVE, see __init__), more than a loop
# of ~30k elements. Keeps tiny models (the `slm` step is well under a millisecond) serial.
PARALLEL_MIN_WORK = 1 << 15

# elements per parallel chunk of an elementwise kernel: large enough to amortise scheduling,
# small enough to balance two threads
CHUNK = 1 << 14
