"""Refusing a forward pass whose outputs are NaN or infinite, before they are shown or sampled from."""

from __future__ import annotations

import numpy as np

from .errors import NonFiniteOutput


def check_finite_output(model, values: np.ndarray, what: str = "outputs") -> None:
    """Raise NonFiniteOutput when a forward pass's values hold NaN or inf (weights that overflow the
    float type: a damaged checkpoint or a diverged run), instead of showing or sampling from them."""
    if not np.isfinite(values).all():  # values: on the host
        flat = model.kernels.to_host(model.flat)
        largest = float(np.abs(flat).max()) if flat.size else 0.0
        raise NonFiniteOutput(
            f"the model's {what} are not finite numbers (NaN or inf): its weights overflow {model.dtype.name} "
            f"(largest |weight| {largest:.3g}); the checkpoint is damaged or its training diverged"
        )
