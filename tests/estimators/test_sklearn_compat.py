"""softreg.estimators.sklearn_compat: its stand-ins agree with scikit-learn's private helpers they replace."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval as SkInterval
from sklearn.utils._param_validation import StrOptions as SkStrOptions
from sklearn.utils._param_validation import InvalidParameterError as SkInvalidParameterError
from sklearn.utils.validation import _check_sample_weight as sk_check_sample_weight

from softreg.estimators import sklearn_compat as compat

INTERVALS = [
    (Real, 0, None, "left"), (Real, 0, None, "neither"), (Real, 0, 1, "both"), (Real, 0, 1, "neither"),
    (Integral, 1, None, "left"), (Integral, None, 5, "right"), (Real, None, None, "neither"),
]
VALUES = [-1, 0, 0.0, 0.5, 1, 1.0, 2, 5, 5.5, 1e300, -np.inf, np.inf, np.nan, True, np.int64(3),
          np.float32(0.25), "1", None, [1]]


@pytest.mark.parametrize("type_, left, right, closed", INTERVALS)
def test_interval_accepts_and_describes_like_scikit_learn(type_, left, right, closed):
    ours = compat._FallbackInterval(type_, left, right, closed=closed)
    theirs = SkInterval(type_, left, right, closed=closed)
    assert str(ours) == str(theirs)
    for v in VALUES:
        assert ours.is_satisfied_by(v) == theirs.is_satisfied_by(v), v


def test_str_options_like_scikit_learn():
    options = {"lbfgs", "sgd", "adam"}
    ours, theirs = compat._FallbackStrOptions(options), SkStrOptions(options)
    assert str(ours) == str(theirs)
    for v in ["sgd", "SGD", "", None, 1, "adam ", "lbfgs"]:
        assert ours.is_satisfied_by(v) == theirs.is_satisfied_by(v), v


class _Sk(BaseEstimator):
    """Constraints of every kind the estimators use, in scikit-learn's own objects."""

    _parameter_constraints: dict = {
        "penalty": [SkStrOptions({"l2", "l1"}), None],
        "alpha": [SkInterval(Real, 0, None, closed="left")],
        "batch_size": [SkInterval(Integral, 1, None, closed="left"), SkStrOptions({"auto"})],
        "class_weight": [dict, SkStrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "hidden": ["array-like", SkInterval(Integral, 1, None, closed="left")],
        "device": [str],
    }

    def __init__(self, penalty="l2", alpha=1e-4, batch_size="auto", class_weight=None, warm_start=False,
                 random_state=None, hidden=(100,), device="cpu"):
        self.penalty, self.alpha, self.batch_size, self.class_weight = penalty, alpha, batch_size, class_weight
        self.warm_start, self.random_state, self.hidden, self.device = warm_start, random_state, hidden, device


class _Ours(_Sk):
    _parameter_constraints = {
        name: [compat._FallbackInterval(c.type, c.left, c.right, closed=c.closed) if isinstance(c, SkInterval)
               else compat._FallbackStrOptions(c.options) if isinstance(c, SkStrOptions) else c
               for c in constraints]
        for name, constraints in _Sk._parameter_constraints.items()
    }


CASES = [
    ("penalty", "l1"), ("penalty", None), ("penalty", "L1"), ("penalty", 3),
    ("alpha", 0), ("alpha", 0.1), ("alpha", -1), ("alpha", "big"), ("alpha", np.nan),
    ("batch_size", 1), ("batch_size", "auto"), ("batch_size", 0), ("batch_size", 2.0),
    ("class_weight", {0: 1}), ("class_weight", "balanced"), ("class_weight", "other"),
    ("warm_start", True), ("warm_start", np.bool_(False)), ("warm_start", 1), ("warm_start", "yes"),
    ("random_state", 0), ("random_state", None), ("random_state", np.random.RandomState(0)),
    ("random_state", -1), ("random_state", 2**32), ("random_state", "seed"),
    ("hidden", (10, 10)), ("hidden", [5]), ("hidden", np.array([3])), ("hidden", 7), ("hidden", 0),
    ("hidden", "abc"), ("device", "cuda"), ("device", 0),
]


@pytest.mark.parametrize("name, value", CASES)
def test_validation_agrees_with_scikit_learn(name, value):
    sk_error = ours_error = None
    try:
        _Sk(**{name: value})._validate_params()
    except SkInvalidParameterError as exc:
        sk_error = str(exc)
    try:
        compat._fallback_validate(_Ours(**{name: value}))
    except compat.InvalidParameterError as exc:
        ours_error = str(exc)
    assert (sk_error is None) == (ours_error is None), (sk_error, ours_error)
    if sk_error is not None:
        # the same sentence; scikit-learn's wording of its string constraints may vary by version
        assert ours_error.split(" must be ")[0] == sk_error.split(" must be ")[0].replace("_Sk", "_Ours")
        assert ours_error.endswith(f"Got {value!r} instead.") and sk_error.endswith(f"Got {value!r} instead.")
        if name in ("penalty", "alpha", "batch_size"):
            assert ours_error == sk_error.replace("_Sk", "_Ours")


def test_validate_params_uses_scikit_learn_when_it_can():
    assert compat.SKLEARN_HELPERS and compat.Interval is SkInterval and compat.StrOptions is SkStrOptions
    with pytest.raises(SkInvalidParameterError):
        compat.validate_params(_Sk(alpha=-1))
    compat.validate_params(_Sk())


X = np.zeros((4, 2))
WEIGHTS = [None, 2, 0.5, [1, 2, 3, 4], np.arange(4), np.array([1.0, 0, 2, 3], dtype=np.float32),
           (1, 1, 1, 1), [1, 2, 3], np.ones((4, 1)), [1, -1, 1, 1], [1, np.nan, 1, 1], ["a", "b", "c", "d"]]


@pytest.mark.parametrize("weights", WEIGHTS, ids=range(len(WEIGHTS)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # the estimators ask for float64
@pytest.mark.parametrize("non_negative", [False, True])
def test_sample_weight_like_scikit_learn(weights, dtype, non_negative):
    def run(fn):
        try:
            w = fn(weights, X, dtype=dtype, ensure_non_negative=non_negative)
        except ValueError:
            return "ValueError"
        return w

    ours, theirs = run(compat._fallback_check_sample_weight), run(sk_check_sample_weight)
    if isinstance(theirs, str):
        assert ours == theirs
    else:
        assert not isinstance(ours, str), ours
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)
