"""The one stratified split of softreg: test splits, validation splits and the --l2 auto path's
held-out rows are all drawn here, so one seed means one split wherever it is used."""

from __future__ import annotations

import numpy as np


def stratified_split(y: np.ndarray, fraction: float, seed: int, minimum: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows), sorted: about ``fraction`` of each class held out (of the whole
    when a class is too rare to split); fixed by ``seed``.

    y : (n,) int class indices (a NumPy array or a CPU tensor)
    minimum : hold out at least this many rows when ``fraction`` > 0 (a validation split needs one;
        a test split of a tiny table is none, so that every row trains)
    """
    y = np.asarray(y)
    n = len(y)
    n_out = max(minimum, int(round(n * fraction))) if fraction > 0 else 0
    if n_out == 0 or n - n_out < 1:
        return np.arange(n), np.arange(0)
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() < 2 or n_out < len(present):
        perm = rng.permutation(n)
        return np.sort(perm[n_out:]), np.sort(perm[:n_out])
    # classes get floor(share), then the rows left over go to the classes with the largest remainders
    share = counts * (n_out / n)
    take = np.floor(share).astype(np.int64)
    extra = n_out - take.sum()
    if extra > 0:
        order = np.argsort(-(share - take), kind="stable")
        take[order[:extra]] += 1
    held = []
    for k in np.nonzero(counts)[0]:
        rows = np.nonzero(y == k)[0]
        held.append(rng.permutation(rows)[: take[k]])
    out = np.sort(np.concatenate(held))
    mask = np.ones(n, bool)
    mask[out] = False
    return np.nonzero(mask)[0], out
