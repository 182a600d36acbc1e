"""Coefficient tables: each term's coefficient, standard error, z, p-value and confidence interval,
by name, in the features' own units, at the exact optimum (softreg.models.inference_stats).

Binary logistic regression gives one row per term (``intercept`` first) and an ``odds_ratio``
column; softmax regression gives rows indexed by (class, term) against a reference class, the
first by default, as statsmodels' ``MNLogit``: the full softmax is not identifiable without a
penalty. With a penalty the table is that of the penalised optimum, its covariance the inverse
of the penalised information (an approximation: the penalty biases the coefficients), and
``reference=None`` shows every class's own coefficients.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from softreg.errors import UserInputError
from softreg.models import inference_stats as stats

COLUMNS = ["coef", "std_err", "z", "p_value", "ci_lower", "ci_upper"]


class CoefficientWarning(UserWarning):
    """The table has terms whose standard errors could not be computed (NaN)."""


def _normal_quantile(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise UserInputError(f"alpha must be a number in (0, 1), the confidence intervals' error rate; got {alpha!r}. "
                             "Example: alpha=0.05 for 95% intervals.")
    return float(alpha)


def summarize(X, y: np.ndarray, w: np.ndarray | None, weight: np.ndarray, bias: np.ndarray, *, classes: list,
              terms: list[str], logistic: bool, l2: np.ndarray | float = 0.0, reference="first",
              cov_type: str = "nonrobust", alpha: float = 0.05, select: list[str] | None = None):
    """The coefficient table (a pandas DataFrame) of a linear head on raw features X (n, F).

    ``weight`` (K, F) and ``bias`` (K,): the fitted head in X's units, where Newton's method starts
    (K = 1 for a logistic head: the log-odds of classes[1]); ``y`` (n,) class codes; ``w`` (n,)
    frequency weights or None; ``l2`` the penalty on each feature's weights (a number or (F,));
    ``reference`` 'first', a class label, or None (the full softmax: needs a penalty).
    ``select``: only these terms' rows. Warns (CoefficientWarning) naming the terms whose
    standard errors are NaN."""
    alpha = check_alpha(alpha)
    n_features = X.shape[1]
    l2 = np.broadcast_to(np.asarray(l2, dtype=np.float64), (n_features,)).copy()
    penalised = bool((l2 > 0).any())
    C = len(classes)
    theta0 = np.concatenate([np.asarray(bias, np.float64)[:, None], np.asarray(weight, np.float64)], axis=1)
    ref = _reference(reference, classes, logistic, penalised)
    if logistic:
        free, model_ref = [1], 0
    elif penalised:
        free, model_ref = list(range(C)), None
    else:
        free, model_ref = [k for k in range(C) if k != ref], ref
        theta0 = theta0[free] - theta0[ref]
    problem = stats.Problem(X=X, y=np.asarray(y), w=w, n_classes=C, free=free, reference=model_ref, l2=l2)
    result = stats.fit(problem, theta0, cov_type=cov_type)
    theta, cov, shown = result.theta, result.cov, free
    if not logistic and penalised and ref is not None:
        theta, cov = stats.to_reference(theta, cov, ref)
        shown = [k for k in range(C) if k != ref]
    table = _table(theta, cov, [classes[k] for k in shown], terms, alpha, logistic)
    _warn(result, table.index, terms, len(shown))
    table.attrs.update(converged=result.converged, iterations=result.iterations, gradient_norm=result.gradient_norm,
                       cov_type=cov_type, alpha=alpha, penalised=penalised,
                       reference=None if ref is None else classes[ref], n_parameters=problem.n_parameters)
    if select is not None:
        table = _select(table, select, logistic)
    return table


def _reference(reference, classes: list, logistic: bool, penalised: bool) -> int | None:
    if logistic:
        return 0
    if reference is None:
        if not penalised:
            raise UserInputError("reference=None asks for every class's own coefficients, which only a penalty makes "
                                 "identifiable; this model has none. Use reference='first' (or a class label).")
        return None
    if isinstance(reference, str) and reference == "first":
        return 0
    labels = [str(c) for c in classes]
    if str(reference) not in labels:
        raise UserInputError(f"reference={reference!r} is not a class; the classes are {labels}.")
    return labels.index(str(reference))


def _table(theta: np.ndarray, cov: np.ndarray, class_labels: list, terms: list[str], alpha: float, logistic: bool):
    import pandas as pd

    coef = theta.reshape(-1)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.where(np.diag(cov) >= 0, np.diag(cov), np.nan))
        z = coef / se
    from scipy.stats import norm

    half = _normal_quantile(1 - alpha / 2) * se
    data = {"coef": coef, "std_err": se, "z": z, "p_value": 2 * norm.sf(np.abs(z)),
            "ci_lower": coef - half, "ci_upper": coef + half}
    names = ["intercept"] + list(terms)
    if logistic:
        data["odds_ratio"] = np.exp(coef)
        index = pd.Index(names, name="term")
    else:
        index = pd.MultiIndex.from_product([[str(c) for c in class_labels], names], names=["class", "term"])
    return pd.DataFrame(data, index=index)


def _label(index, at: int) -> str:
    key = index[at]
    return f"{key[0]}: {key[1]}" if isinstance(key, tuple) else str(key)


def _warn(result: stats.Inference, index, terms: list[str], n_free: int) -> None:
    if not result.converged:
        moving = ", ".join(_label(index, i) for i in result.moving[:20] if i < len(index))
        warnings.warn(
            f"the fit did not converge in {result.iterations} Newton iterations: the classes look perfectly (or "
            f"quasi-perfectly) separated by {moving or 'some terms'}, whose coefficients grow without bound; their "
            "standard errors are NaN. Drop or merge those terms, or fit with a penalty.", CoefficientWarning)
    singular = [i for i in result.unidentified if i not in set(result.moving) and i < len(index)]
    if singular:
        shown = ", ".join(_label(index, i) for i in singular[:20]) + (" ..." if len(singular) > 20 else "")
        warnings.warn(
            f"the information matrix is singular for {len(singular)} coefficient(s): {shown} (a constant, duplicated "
            "or collinear column, or one that is zero on every row); their standard errors are NaN. Drop the "
            "redundant columns.", CoefficientWarning)


def _select(table, select: list[str], logistic: bool):
    terms = table.index if logistic else table.index.get_level_values("term")
    unknown = sorted(set(select) - set(terms))
    if unknown:
        raise UserInputError(f"terms {unknown} are not in the model; its terms are {list(dict.fromkeys(terms))[:20]}")
    return table[np.isin(np.asarray(terms), list(select))]


def largest(table, top: int | None = None):
    """The table sorted by |z|, largest first (NaN last), its ``top`` rows if given."""
    order = np.argsort(-np.nan_to_num(np.abs(table["z"].to_numpy()), nan=-1.0), kind="stable")
    out = table.iloc[order]
    return out if top is None else out.head(top)


def format_table(table) -> str:
    """The table as aligned text, with a line saying how it was computed."""
    attrs = table.attrs
    head = (f"{'converged' if attrs.get('converged', True) else 'NOT converged'} after {attrs.get('iterations', 0)} "
            f"Newton iterations (max |gradient| {attrs.get('gradient_norm', math.nan):.1e}); "
            f"cov_type={attrs.get('cov_type')}; {int(round(100 * (1 - attrs.get('alpha', 0.05))))}% intervals")
    if attrs.get("penalised"):
        head += "; penalised fit: the errors are approximate"
    if attrs.get("reference") is not None and "class" in (table.index.names or []):
        head += f"; against class {attrs['reference']}"
    return head + "\n" + table.to_string(float_format=lambda v: f"{v:.6g}")
