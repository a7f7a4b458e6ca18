"""The numbers behind the Vocabulary screen: PCA of the embeddings, nearest tokens, finding a token by its text."""

from __future__ import annotations

import numpy as np

from .tokens import visible

EXACT_PCA_CELLS = 2_000_000  # up to this many numbers the PCA is a float64 SVD; above, a float32 Gram matrix


def pca_2d(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of each row on the first two principal axes, and the share of variance each explains.

    A large table (GPT-2's 50,257 x 768) goes through its C x C Gram matrix in float32: seconds instead of
    a minute and a half for the SVD, with the same axes to float32 precision."""
    if table.size > EXACT_PCA_CELLS and table.shape[0] > table.shape[1]:
        return _pca_gram(table)
    x = table.astype(np.float64)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return _finish(x, vt[:2], s**2)


def _pca_gram(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = (table - table.mean(axis=0, dtype=np.float64)).astype(np.float32)
    values, vectors = np.linalg.eigh((x.T @ x).astype(np.float64))
    order = np.argsort(values)[::-1]
    return _finish(x, vectors[:, order[:2]].T, np.clip(values[order], 0.0, None))


def _finish(x: np.ndarray, axes: np.ndarray, variances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates on `axes` (each turned so its largest loading is positive) and the explained shares."""
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]  # the same picture every time
    coords = (x @ axes.T.astype(x.dtype)).astype(np.float64)
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(x), 2 - coords.shape[1]))])
    total = float(variances.sum())
    explained = variances[:2] / total if total > 0 else np.zeros(min(len(variances), 2))
    return coords, np.pad(explained, (0, 2 - len(explained)))


def unit_rows(table: np.ndarray) -> np.ndarray:
    """Each row divided by its length (float32): cosine similarity becomes one matrix-vector product."""
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    return (table / np.maximum(norms, 1e-12)).astype(np.float32)


def nearest(table: np.ndarray, index: int, k: int = 5, unit: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The k rows most similar (cosine) to row `index`; `unit` is `unit_rows(table)` when already made."""
    if unit is None:
        x = table.astype(np.float64)
        norms = np.linalg.norm(x, axis=1)
        sims = x @ x[index] / np.maximum(norms * norms[index], 1e-12)
    else:
        sims = (unit @ unit[index]).astype(np.float64)
    sims[index] = -np.inf
    top = np.argpartition(-sims, min(k, len(sims) - 1))[: k + 1] if len(sims) > k + 1 else np.arange(len(sims))
    order = top[np.argsort(-sims[top], kind="stable")][:k]
    return [(int(i), float(sims[i])) for i in order]


def token_matches(labels: list[str], query: str) -> list[int]:
    """Ids whose label is `query` (typed as text: ' the' finds '␣the'), then those that start with it, then
    those that contain it, each group in id order."""
    if not query:
        return []
    want = visible(query)
    exact = [i for i, label in enumerate(labels) if label == want]
    starts = [i for i, label in enumerate(labels) if label.startswith(want) and label != want]
    contains = [i for i, label in enumerate(labels) if want in label and not label.startswith(want)]
    return exact + starts + contains


def find_token(labels: list[str], query: str, after: int | None = None) -> int | None:
    """The best match of `query` (see token_matches), or the match ranked after token `after` (wrapping)."""
    found = token_matches(labels, query)
    if not found:
        return None
    if after is not None and after in found:
        return found[(found.index(after) + 1) % len(found)]
    return found[0]
