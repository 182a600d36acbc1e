"""Training rows as a multiset, so that integer sample weights train exactly like repeated rows.

A fit sees its rows in an order fixed by their content (a 64-bit hash of each row's bits and
label), rows repeated exactly become one row carrying their total weight, and rows of weight 0
are dropped. Two fits whose weighted multisets of rows are equal (``sample_weight=[2, ...]``
against the row written twice, in any order) then get the same data, bit for bit, and train
to the same weights with any optimizer, minibatch SGD included.

Hashing costs one pass over the data (about 0.1 s per 50 million values here); it is done
when sample weights are given, and otherwise only on inputs of up to ``HASH_LIMIT`` stored
values, where it costs a few milliseconds. Larger unweighted inputs are used as given.
"""

from __future__ import annotations

import numpy as np

HASH_LIMIT = 1 << 23  # stored values (dense: rows x features; sparse: non-zeros) hashed without weights
_CHUNK = 4096  # dense rows hashed at once (bounds the uint64 temporary)
_LABEL_SALT = np.uint64(0x9E3779B97F4A7C15)


def needs_hashing(X, weighted: bool) -> bool:
    size = X.nnz if hasattr(X, "nnz") else X.shape[0] * X.shape[1]
    return weighted or size <= HASH_LIMIT


def prepare_rows(X, codes: np.ndarray, weights: np.ndarray | None):
    """(X float32 (dense array or SciPy CSR), codes, mean-1 weights or None), canonical when hashed.

    X : (n, F) float array or SciPy sparse matrix; codes : (n,) int64 class indices;
    weights : (n,) non-negative or None.
    """
    sparse = hasattr(X, "tocsr")
    if weights is not None:
        keep = weights > 0
        if not keep.all():
            X, codes, weights = X[keep], codes[keep], weights[keep]
    X = _float32(X, sparse)
    if not needs_hashing(X, weights is not None):
        return X, codes, None
    keys = (_sparse_keys(X) if sparse else _dense_keys(X)) + (codes.astype(np.uint64) + np.uint64(1)) * _LABEL_SALT
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1  # group of each row, in key order
    first = order[starts]  # one row per group, in key order
    shared = np.bincount(group)[group] > 1
    if shared.any() and not _same(X, codes, order[shared], first[group[shared]], sparse):
        return _exact(X, codes, weights, sparse)  # a hash collision (about 2^-64 per pair): sort by content
    total = np.bincount(group, weights=None if weights is None else weights[order])
    merged = None if np.all(total == total[0]) else total * (len(total) / total.sum())
    return X[first], codes[first], merged


def _float32(X, sparse: bool):
    """float32 rows with -0.0 made 0.0 (equal values, equal bits); sparse: canonical CSR, no stored zeros
    (a copy only when the matrix is not that already)."""
    if sparse:
        import scipy.sparse as sp

        if (X.format == "csr" and X.dtype == np.float32 and X.has_canonical_format
                and np.count_nonzero(X.data) == X.nnz):
            return X  # canonical already: used as given, never written to (no copy of a large matrix)
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        return X
    X = np.array(X, dtype=np.float32, order="C", copy=True)
    X += 0.0
    return X


def _multipliers(n: int) -> np.ndarray:
    """Fixed odd 64-bit multipliers, one per feature (the same in every process)."""
    return np.random.default_rng(20240521).integers(1, 2**63, size=n, dtype=np.uint64) | np.uint64(1)


def _dense_keys(X: np.ndarray) -> np.ndarray:
    """Per row: sum over features of bits(x_j) * m_j, wrapping modulo 2^64."""
    bits, m = X.view(np.uint32), _multipliers(X.shape[1])
    keys = np.empty(X.shape[0], dtype=np.uint64)
    for a in range(0, X.shape[0], _CHUNK):
        keys[a : a + _CHUNK] = (bits[a : a + _CHUNK].astype(np.uint64) * m).sum(axis=1)
    return keys


def _sparse_keys(X) -> np.ndarray:
    """Per CSR row: sum over stored entries of bits(value) * m_column, wrapping modulo 2^64: the
    dense key of the same row (a zero's bits are 0), so dense and sparse input train alike."""
    m = _multipliers(X.shape[1])
    terms = X.data.view(np.uint32).astype(np.uint64) * m[X.indices]
    running = np.zeros(len(terms) + 1, dtype=np.uint64)
    np.cumsum(terms, out=running[1:])
    return running[X.indptr[1:]] - running[X.indptr[:-1]]


def _same(X, codes: np.ndarray, rows: np.ndarray, firsts: np.ndarray, sparse: bool) -> bool:
    """Whether each row equals its group's first row (same label, same values)."""
    if not np.array_equal(codes[rows], codes[firsts]):
        return False
    if sparse:
        return (X[rows] != X[firsts]).nnz == 0
    return np.array_equal(X[rows], X[firsts])


def _exact(X, codes: np.ndarray, weights: np.ndarray | None, sparse: bool):
    """The slow, exact way: rows sorted by content itself."""
    dense = X.toarray() if sparse else X
    table = np.ascontiguousarray(np.column_stack([dense.view(np.uint32).astype(np.int64), codes]))
    _, first, group = np.unique(table, axis=0, return_index=True, return_inverse=True)
    total = np.bincount(group.ravel(), weights=weights)
    merged = None if np.all(total == total[0]) else total * (len(total) / total.sum())
    return X[first], codes[first], merged
