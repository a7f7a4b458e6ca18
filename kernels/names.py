"""Every kernel by name, with the module that holds it: the one list both backends are built from.

tinylm.kernels (CPU, Numba) and tinylm.kernels.cuda (numba.cuda) each have a module of that name
holding a kernel of that name with the same contract (outputs first; WRITES or ADDS as its
docstring says); kernels/reference.py has the slow numpy oracle of each. Adding a kernel: write it
in its module of each package (and its reference and tests), then add its line here.
"""

KERNELS = {
    "encoder_forward": "encoder",
    "encoder_backward": "encoder",
    "gather_windows": "encoder",
    "layernorm_forward": "layernorm",
    "layernorm_backward": "layernorm",
    "matmul_forward": "matmul",
    "matmul_backward": "matmul",
    "lm_head_forward": "matmul",
    "lm_head_backward": "matmul",
    "attention_forward": "attention",
    "attention_backward": "attention",
    "attention_forward_fused": "attention",
    "gelu_forward": "gelu",
    "gelu_backward": "gelu",
    "gelu_backward_inplace": "gelu",
    "softmax_forward": "softmax",
    "residual_forward": "residual",
    "add_inplace": "residual",
    "dropout_forward": "dropout",
    "dropout_backward": "dropout",
    "crossentropy_forward": "crossentropy",
    "crossentropy_backward": "crossentropy",
    "count_correct": "crossentropy",
    "grad_norm": "optim",
    "scale_inplace": "optim",
    "adamw_update": "optim",
    "attend_one": "decode",
    "kv_store": "decode",
    # not kernels: the buffers this package's kernels take, and moving values in and out of them
    "zeros": "memory",
    "from_host": "memory",
    "to_host": "memory",
    "copy_in": "memory",
    "fill_zero": "memory",
}

# The CPU's fused decoding step and its pieces: on the GPU a step is the training kernels on one
# row plus attend_one.
CPU_ONLY = {
    "decode_step": "decode",
    "layernorm_one": "decode",
    "gelu_one": "decode",
}


def export(package: str, namespace: dict, names: dict[str, str]) -> list[str]:
    """Import each kernel of `names` from its module in `package` into `namespace`; returns the names."""
    from importlib import import_module

    for name, module in names.items():
        namespace[name] = getattr(import_module(f"{package}.{module}"), name)
    return list(names)
