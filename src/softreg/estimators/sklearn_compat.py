"""scikit-learn helpers that have no public home, behind one seam with a tested fallback.

scikit-learn keeps its parameter constraints (``Interval``, ``StrOptions``, the check run by
``BaseEstimator._validate_params``) and ``_check_sample_weight`` in private modules. The
estimators import them from here: scikit-learn's own objects where they exist (so the
common checks see the errors they expect), else the small stand-ins below, which follow the
same rules and messages for the kinds of constraint softreg uses: ``Interval`` over Integral
or Real, ``StrOptions``, ``None``, a type, ``"boolean"``, ``"random_state"``, ``"verbose"``
and ``"array-like"``.

The estimator callbacks (``set_callbacks``, ``sklearn.callback.ProgressBar``) are public from
scikit-learn 1.9; with an older one, ``CallbackSupportMixin`` is an empty class, ``with_callbacks``
leaves ``fit`` as it is and ``CALLBACKS`` is False (the estimators then offer ``verbose`` only).
"""

from __future__ import annotations

import operator
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = ["Interval", "StrOptions", "check_sample_weight", "validate_params", "SKLEARN_HELPERS",
           "CallbackSupportMixin", "with_callbacks", "CALLBACKS"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter breaks its declared constraint (scikit-learn raises its own class of this name)."""


class _FallbackInterval:
    """Numbers of ``type`` (Integral or Real) between ``left`` and ``right`` (None: unbounded)."""

    def __init__(self, type: type, left: float | None, right: float | None, *, closed: str) -> None:
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be 'left', 'right', 'both' or 'neither'; got {closed!r}.")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def is_satisfied_by(self, val: Any) -> bool:
        if not isinstance(val, self.type):
            return False
        if not isinstance(val, Integral) and np.isnan(val):
            return False
        # an open end is -inf / inf, so an interval open there excludes the infinity too
        left = -np.inf if self.left is None else self.left
        right = np.inf if self.right is None else self.right
        left_ok = operator.ge if self.closed in ("left", "both") else operator.gt
        right_ok = operator.le if self.closed in ("right", "both") else operator.lt
        return bool(left_ok(val, left) and right_ok(val, right))

    def __str__(self) -> str:
        kind = "an int" if self.type is Integral else "a float"
        lb = "[" if self.closed in ("left", "both") else "("
        rb = "]" if self.closed in ("right", "both") else ")"

        def bound(b, infinity):
            return infinity if b is None else (float(b) if self.type is Real else b)

        return f"{kind} in the range {lb}{bound(self.left, '-inf')}, {bound(self.right, 'inf')}{rb}"


class _FallbackStrOptions:
    """One of a set of strings."""

    def __init__(self, options: set[str]) -> None:
        self.options = options

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, str) and val in self.options

    def __str__(self) -> str:
        return f"a str among {{{', '.join(repr(o) for o in self.options)}}}"


def _satisfied(constraint: Any, val: Any) -> bool:
    if constraint is None:
        return val is None
    if isinstance(constraint, type):
        return isinstance(val, constraint)
    if constraint == "boolean":
        return isinstance(val, (bool, np.bool_))
    if constraint == "random_state":
        return (val is None or isinstance(val, np.random.RandomState)
                or (isinstance(val, Integral) and not isinstance(val, bool) and 0 <= val <= 2**32 - 1))
    if constraint == "verbose":
        return isinstance(val, (Integral, np.bool_)) and not isinstance(val, str) and val >= 0
    if constraint == "array-like":
        return (not isinstance(val, (str, bytes)) and not np.isscalar(val)
                and (hasattr(val, "__len__") or hasattr(val, "shape") or hasattr(val, "__array__")))
    return constraint.is_satisfied_by(val)


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__qualname__!r}"
    return {"boolean": "an instance of 'bool' or an instance of 'numpy.bool'",
            "random_state": "an int in the range [0, 4294967295], an instance of "
                            "'numpy.random.mtrand.RandomState' or None",
            "verbose": "an int in the range [0, inf), an instance of 'bool' or an instance of 'numpy.bool'",
            "array-like": "an array-like"}.get(constraint, str(constraint))


def _fallback_validate(estimator: Any) -> None:
    """Check every parameter of ``estimator`` against ``estimator._parameter_constraints``."""
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        if constraints == "no_validation" or name not in params:
            continue
        val = params[name]
        if any(_satisfied(c, val) for c in constraints):
            continue
        words = [_describe(c) for c in constraints]
        rule = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {rule}. Got {val!r} instead."
        )


def _fallback_check_sample_weight(sample_weight: Any, X: Any, dtype: Any = None, *,
                                  ensure_non_negative: bool = False) -> np.ndarray:
    """Sample weights as a float array of shape (n_samples,): None gives ones, a number repeats."""
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    dtype = dtype if dtype in (np.float32, np.float64) else np.float64  # softreg asks for float64
    if sample_weight is None:
        return np.ones(n, dtype=dtype)
    if isinstance(sample_weight, Real):
        return np.full(n, sample_weight, dtype=dtype)
    w = np.asarray(sample_weight, dtype=dtype)
    if w.ndim != 1:
        raise ValueError(f"Sample weights must be 1D array or scalar; got shape {w.shape}.")
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n,)}!")
    if not np.isfinite(w).all():
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if ensure_non_negative and (w < 0).any():
        raise ValueError("Negative values in data passed to `sample_weight`")
    return w


try:
    from sklearn.utils._param_validation import Interval, StrOptions

    SKLEARN_HELPERS = True
except ImportError:  # a scikit-learn that moved them: the stand-ins above take over
    Interval, StrOptions = _FallbackInterval, _FallbackStrOptions  # type: ignore[misc,assignment]
    SKLEARN_HELPERS = False

try:
    from sklearn.utils.validation import _check_sample_weight as check_sample_weight
except ImportError:
    check_sample_weight = _fallback_check_sample_weight  # type: ignore[assignment]


def validate_params(estimator: Any) -> None:
    """Check ``estimator``'s parameters against its ``_parameter_constraints``; raise on the first breach."""
    method = getattr(estimator, "_validate_params", None)
    if SKLEARN_HELPERS and method is not None:
        method()
    else:
        _fallback_validate(estimator)


try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks

    CALLBACKS = True
except ImportError:  # scikit-learn < 1.9: no estimator callbacks

    class CallbackSupportMixin:  # type: ignore[no-redef]
        """Stand-in: no set_callbacks."""

    def with_callbacks(method):  # type: ignore[no-redef]
        return method

    CALLBACKS = False
