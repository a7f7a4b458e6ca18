"""Backend switch: the CPU kernels (tinylm.kernels) or their numba.cuda twins (tinylm.kernels.cuda).

Both namespaces expose the same kernel names with the same contract; the CUDA ones take device
arrays. Importing this module never initialises CUDA; asking which backends exist does.
"""

import importlib

BACKENDS = ("cpu", "cuda")


def _cuda_runtime():
    return importlib.import_module("tinylm.kernels.cuda._runtime")


def available_backends() -> list[str]:
    """["cpu"], plus "cuda" when numba.cuda.is_available() (true under NUMBA_ENABLE_CUDASIM=1)."""
    rt = _cuda_runtime()
    return ["cpu", "cuda"] if rt.simulator_enabled() or rt.cuda_available() else ["cpu"]


def cuda_missing() -> str | None:
    """Why the CUDA backend cannot run here (one line naming what is missing and how to get it), or
    None when it can: a usable GPU, or numba's simulator (NUMBA_ENABLE_CUDASIM=1)."""
    return _cuda_runtime().missing()


def cuda_simulated() -> bool:
    """Whether the CUDA backend runs in numba's simulator (NUMBA_ENABLE_CUDASIM=1): correct, and slow."""
    return _cuda_runtime().simulator_enabled()


def get_kernels(name: str):
    """The kernel namespace for backend `name` ("cpu" or "cuda")."""
    if name == "cpu":
        return importlib.import_module("tinylm.kernels")
    if name == "cuda":
        rt = _cuda_runtime()
        if not (rt.simulator_enabled() or rt.cuda_available()):
            raise RuntimeError(rt.NO_GPU_MESSAGE)
        return importlib.import_module("tinylm.kernels.cuda")
    raise ValueError(f"unknown kernel backend {name!r}; choose one of {', '.join(BACKENDS)}")
