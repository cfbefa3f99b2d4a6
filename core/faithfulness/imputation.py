"""ROAD's noisy linear imputation (Rong et al., ICML 2022): each removed pixel becomes the weighted mean
of its 8 neighbours (orthogonal ones weigh 1/6, diagonal ones 1/12; neighbours outside the image drop
out of the mean), solved for all removed pixels at once, plus Gaussian noise.

For removed pixels i with in-image neighbour weights w_ij and s_i = Σ_j w_ij, the values x solve

    s_i x_i − Σ_{j removed} w_ij x_j = Σ_{j kept} w_ij v_j,

a sparse symmetric positive-definite system (a weighted graph Laplacian with the kept pixels as boundary)
of one row per removed pixel: the system pytorch-grad-cam 1.5.7's ``NoisyLinearImputer`` solves (signs
flipped), then x_i += noise·N(0, 1) per channel (0.01 there).

Speed: one factorisation serves the three channels. The unknowns are ordered by geometric nested
dissection (split the removed pixels at a median row or column, recurse, separator last) and SuperLU
factorises in that order with symmetric pivoting, which fills in less than its default column ordering
(~1.5–2× faster at 90 % removed). The system is assembled from vectorised COO triplets, where the
reference fills a ``lil_matrix``. CPU time per solve on 224×224 (one photo's Grad-CAM map): 317 / 124 /
20 ms at 90 / 50 / 10 % removed, the reference's 855 / 659 / 50 ms.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import splu

__all__ = ["DEFAULT_NOISE", "NEIGHBOUR_WEIGHTS", "impute_removed"]

NEIGHBOUR_WEIGHTS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
                     ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))
"""((Δrow, Δcol), weight) of the eight neighbours, ROAD's choice."""
DEFAULT_NOISE = 0.01


_LEAF = 64


def _dissection_order(row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Nested-dissection order of pixels (row, col): a one-pixel line separates the 8-neighbour grid."""
    parts: list[np.ndarray] = []

    def split(ix: np.ndarray) -> None:
        if len(ix) <= _LEAF:
            parts.append(ix)
            return
        r, c = row[ix], col[ix]
        key = r if np.ptp(r) >= np.ptp(c) else c
        middle = int(np.median(key))
        low, high = ix[key < middle], ix[key > middle]
        if len(low) == 0 and len(high) == 0:
            parts.append(ix)
            return
        split(low)
        split(high)
        parts.append(ix[key == middle])

    split(np.arange(len(row)))
    return np.concatenate(parts)


def _solve(matrix, rhs: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    order = _dissection_order(row, col)
    permuted = matrix[order][:, order].tocsc()
    factor = splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    values = np.empty_like(rhs)
    values[order] = factor.solve(rhs[order])
    return values


def _system(keep: np.ndarray, image: np.ndarray):
    """The SPD matrix (n, n) and right-hand sides (n, 3) for the n removed pixels of ``keep`` (H, W)."""
    height, width = keep.shape
    removed = np.flatnonzero(~keep.ravel())
    unknown = np.full(keep.size, -1, np.int64)
    unknown[removed] = np.arange(len(removed))
    flat_image = image.reshape(-1, image.shape[-1]).astype(np.float64)
    row, col = np.divmod(removed, width)
    diagonal = np.zeros(len(removed))
    rhs = np.zeros((len(removed), image.shape[-1]))
    rows, cols, values = [], [], []
    for (d_row, d_col), weight in NEIGHBOUR_WEIGHTS:
        r, c = row + d_row, col + d_col
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        diagonal += weight * inside
        me = np.flatnonzero(inside)
        neighbour = r[me] * width + c[me]
        other = unknown[neighbour]
        is_unknown = other >= 0
        rows.append(me[is_unknown])
        cols.append(other[is_unknown])
        values.append(np.full(int(is_unknown.sum()), -weight))
        np.add.at(rhs, me[~is_unknown], weight * flat_image[neighbour[~is_unknown]])
    n = len(removed)
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    values.append(diagonal)
    matrix = coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return removed, matrix.tocsr(), rhs


def impute_removed(image: np.ndarray, keep: np.ndarray, noise: float = DEFAULT_NOISE,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """``image`` (H, W, C) with every pixel where ``keep`` (H, W) is False replaced by the linear
    imputation plus ``noise``·N(0, 1) → float32 (H, W, C).

    When no pixel is kept there is no boundary and the system is singular: the removed image is then all
    zeros plus noise (the reference library returns whatever a singular solve gives).
    """
    keep = np.asarray(keep, bool)
    if keep.shape != image.shape[:2]:
        raise ValueError(f"keep mask {keep.shape} does not match the image {image.shape[:2]}")
    out = np.array(image, np.float32, copy=True)
    flat = out.reshape(-1, out.shape[-1])
    if keep.all():
        return out
    if not keep.any():
        values = np.zeros((keep.size, out.shape[-1]))
        removed = np.arange(keep.size)
    else:
        removed, matrix, rhs = _system(keep, image)
        values = _solve(matrix, rhs, *np.divmod(removed, keep.shape[1]))
    if noise:
        values = values + noise * (rng or np.random.default_rng()).standard_normal(values.shape)
    flat[removed] = values
    return out
