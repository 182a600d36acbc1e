"""softreg.estimators.rows: weighted rows as a multiset (repeats merged, order fixed by content), dense and
sparse alike, exact under hash collisions, and no hashing of large unweighted inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from softreg.estimators import rows as _rows


def _data(n=40, f=6, seed=0):
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(n, f)), 1)
    X[rng.random((n, f)) < 0.5] = 0.0
    return X, rng.integers(0, 3, n)


def _same(a, b):
    Xa, ca, wa = a
    Xb, cb, wb = b
    Xa = Xa.toarray() if sp.issparse(Xa) else Xa
    Xb = Xb.toarray() if sp.issparse(Xb) else Xb
    assert np.array_equal(Xa, Xb) and np.array_equal(ca, cb)
    assert (wa is None and wb is None) or np.allclose(wa, wb)


@pytest.mark.parametrize("sparse", [False, True])
def test_integer_weights_equal_repeated_rows_in_any_order(sparse):
    X, codes = _data()
    weights = np.random.default_rng(1).integers(0, 4, len(codes)).astype(float)
    repeated = (np.repeat(X, weights.astype(int), axis=0), np.repeat(codes, weights.astype(int)))
    order = np.random.default_rng(2).permutation(len(codes))
    wrap = sp.csr_matrix if sparse else np.asarray
    a = _rows.prepare_rows(wrap(X[order]), codes[order], weights[order])
    b = _rows.prepare_rows(wrap(repeated[0]), repeated[1], None)
    _same(a, b)
    assert a[0].shape[0] == (weights > 0).sum() and a[0].dtype == np.float32


def test_dense_and_sparse_rows_come_out_in_the_same_order():
    X, codes = _data()
    dense = _rows.prepare_rows(X, codes, None)
    sparse = _rows.prepare_rows(sp.csr_matrix(X), codes, None)
    _same(dense, sparse)


def test_rows_equal_but_for_the_label_stay_apart_and_negative_zero_is_zero():
    X = np.array([[1.0, -0.0], [1.0, 0.0], [1.0, 0.0]])
    Xo, codes, weights = _rows.prepare_rows(X, np.array([0, 0, 1]), None)
    assert Xo.shape[0] == 2 and sorted(codes.tolist()) == [0, 1]
    assert sorted(weights.tolist()) == pytest.approx([2 / 3, 4 / 3])  # mean-1 weights of counts 1 and 2


@pytest.mark.parametrize("sparse", [False, True])
def test_a_hash_collision_falls_back_to_an_exact_sort(monkeypatch, sparse):
    X, codes = _data()
    wrap = sp.csr_matrix if sparse else np.asarray
    honest = _rows.prepare_rows(wrap(X), codes, None)
    monkeypatch.setattr(_rows, "_dense_keys", lambda X: np.zeros(X.shape[0], dtype=np.uint64))
    monkeypatch.setattr(_rows, "_sparse_keys", lambda X: np.zeros(X.shape[0], dtype=np.uint64))
    collided = _rows.prepare_rows(wrap(X), codes, None)
    # every row now shares a key with others; rows stay distinct and keep their weights
    assert collided[0].shape[0] == honest[0].shape[0]
    assert sorted(map(tuple, collided[0].toarray().tolist() if sparse else collided[0].tolist())) == \
        sorted(map(tuple, honest[0].toarray().tolist() if sparse else honest[0].tolist()))


def test_large_unweighted_inputs_are_not_hashed(monkeypatch):
    X, codes = _data(n=100)

    def refuse(X):
        raise AssertionError("hashed")

    monkeypatch.setattr(_rows, "HASH_LIMIT", 10)
    monkeypatch.setattr(_rows, "_dense_keys", refuse)
    Xo, co, wo = _rows.prepare_rows(X, codes, None)
    assert np.array_equal(Xo, X.astype(np.float32)) and np.array_equal(co, codes) and wo is None
    with pytest.raises(AssertionError, match="hashed"):  # weights given: hashed whatever the size
        _rows.prepare_rows(X, codes, np.ones(100))


def test_large_canonical_sparse_rows_are_used_without_a_copy(monkeypatch):
    """A float32 CSR matrix with sorted, unique indices and no stored zeros is the fit's data as it
    is (a hashed 1M-document matrix is a gigabyte); any other sparse input is copied and
    canonicalised, never modified in place."""
    monkeypatch.setattr(_rows, "HASH_LIMIT", 0)
    X, codes = _data(n=100)
    canonical = sp.csr_matrix(X.astype(np.float32))
    assert _rows.prepare_rows(canonical, codes, None)[0] is canonical
    messy = sp.csr_matrix((np.array([1.0, 2.0, 0.0, 3.0], np.float32), np.array([2, 0, 1, 2]), np.array([0, 3, 4])),
                          shape=(2, 3))  # row 0: unsorted, a stored zero; row 1: fine
    duplicated = sp.csr_matrix((np.array([1.0, 2.0], np.float32), np.array([1, 1]), np.array([0, 2, 2])), shape=(2, 3))
    for given, dense in [(messy, [[2, 0, 1], [0, 0, 3]]), (duplicated, [[0, 3, 0], [0, 0, 0]]),
                         (canonical.astype(np.float64), X)]:
        before = given.copy()
        out = _rows.prepare_rows(given, np.array([0, 1] if given.shape[0] == 2 else codes), None)[0]
        assert out is not given and out.has_canonical_format and np.count_nonzero(out.data) == out.nnz
        assert out.dtype == np.float32 and np.allclose(out.toarray(), dense)
        for name in ("data", "indices", "indptr"):  # the caller's matrix is untouched
            assert np.array_equal(getattr(given, name), getattr(before, name))


def test_a_fit_leaves_the_callers_sparse_matrix_as_it_was(monkeypatch):
    from softreg import SoftmaxRegressionClassifier

    monkeypatch.setattr(_rows, "HASH_LIMIT", 10)
    X, codes = _data(n=200)
    X = sp.csr_matrix(X.astype(np.float32))
    before = X.copy()
    SoftmaxRegressionClassifier(optimizer="sgd", max_iter=3, random_state=0).fit(X, codes)
    for name in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(X, name), getattr(before, name))
