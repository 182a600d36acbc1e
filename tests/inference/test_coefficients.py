"""Coefficient tables against statsmodels: Logit on its spector data, MNLogit on a made table."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")

from softreg.estimators.classifiers import LogisticRegressionClassifier, SoftmaxRegressionClassifier  # noqa: E402
from softreg.inference.coefficients import CoefficientWarning  # noqa: E402


def _table4(seed=0, n=500):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    logits = X @ rng.normal(size=(3, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    return X, y


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_logit_matches_statsmodels_on_spector(cov_type):
    data = sm.datasets.spector.load_pandas()
    X, y = data.exog, data.endog.astype(int)
    table = LogisticRegressionClassifier(penalty=None).fit(X, y).summary(cov_type=cov_type)
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, cov_type=cov_type)
    assert list(table.index) == ["intercept", *X.columns]
    np.testing.assert_allclose(table["coef"], ref.params, atol=1e-6)
    np.testing.assert_allclose(table["std_err"], ref.bse, rtol=1e-5)
    np.testing.assert_allclose(table["p_value"], ref.pvalues, rtol=1e-4)
    np.testing.assert_allclose(table[["ci_lower", "ci_upper"]], ref.conf_int(0.05), rtol=1e-5)
    np.testing.assert_allclose(table["odds_ratio"], np.exp(ref.params), rtol=1e-6)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_multinomial_matches_mnlogit_against_the_first_class(cov_type):
    X, y = _table4()
    table = SoftmaxRegressionClassifier(penalty=None).fit(X, y).summary(cov_type=cov_type)
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12, cov_type=cov_type)
    assert table.index.names == ["class", "term"]
    np.testing.assert_allclose(table["coef"], np.asarray(ref.params).T.reshape(-1), atol=1e-6)
    np.testing.assert_allclose(table["std_err"], np.asarray(ref.bse).T.reshape(-1), rtol=1e-5)


def test_a_duplicated_column_is_named_and_gets_nan_errors():
    X, y = _table4()
    X = np.c_[X, X[:, 1]]
    with pytest.warns(CoefficientWarning, match="x1.*x3"):
        table = SoftmaxRegressionClassifier(penalty=None).fit(X, y).summary()
    assert table.xs("x3", level="term")["std_err"].isna().all()
    assert table.xs("x0", level="term")["std_err"].notna().all()


def test_perfect_separation_warns_and_leaves_nan_errors():
    rng = np.random.default_rng(1)
    x0 = np.r_[-np.ones(20), np.ones(20)] + 0.1 * rng.normal(size=40)
    X, y = np.c_[x0, rng.normal(size=40)], (x0 > 0).astype(int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = LogisticRegressionClassifier(penalty=None).fit(X, y).summary()
    messages = [str(w.message) for w in caught if issubclass(w.category, CoefficientWarning)]
    assert messages and "x0" in messages[0]
    assert np.isnan(table.loc["x0", "std_err"])
