"""alpha='auto' in the estimators: the regularisation path of --l2 auto, then a fit on every row."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from softreg import LogisticRegressionClassifier, SoftmaxRegressionClassifier


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_alpha_auto_takes_the_path_minimum_and_fits_every_row(digits):
    X_train, X_test, y_train, y_test = digits
    clf = SoftmaxRegressionClassifier(alpha="auto", random_state=0).fit(X_train, y_train)
    points = clf.l2_path_["points"]
    best = min(points, key=lambda p: p["val_loss"])
    assert clf.l2_path_["path_l2"] == best["l2"]
    # the path fits 80% of the rows; the refit on all of them keeps the same total penalty
    assert clf.alpha_ == pytest.approx(best["l2"] * clf.l2_path_["n_fit"] / len(y_train), rel=1e-9)
    strongest = SoftmaxRegressionClassifier(alpha=max(p["l2"] for p in points), random_state=0).fit(X_train, y_train)
    weakest = SoftmaxRegressionClassifier(alpha=0.0, random_state=0).fit(X_train, y_train)
    chosen = SoftmaxRegressionClassifier(alpha=clf.alpha_, random_state=0).fit(X_train, y_train)
    np.testing.assert_allclose(clf.predict_proba(X_test), chosen.predict_proba(X_test), atol=1e-6)
    assert clf.score(X_test, y_test) > strongest.score(X_test, y_test)
    assert clf.score(X_test, y_test) >= weakest.score(X_test, y_test) - 0.01


def test_alpha_auto_is_a_fit_time_l2_choice(digits):
    X_train, _, y_train, _ = digits
    binary = y_train < 5
    with pytest.raises(ValueError, match="penalty='elasticnet' has an L1 part"):
        SoftmaxRegressionClassifier(alpha="auto", penalty="elasticnet").fit(X_train, y_train)
    with pytest.raises(ValueError, match="partial_fit cannot"):
        LogisticRegressionClassifier(alpha="auto").partial_fit(X_train, binary, classes=[False, True])
    with pytest.raises(ValueError, match="alpha"):
        SoftmaxRegressionClassifier(alpha="often").fit(X_train, y_train)


def _unit_rows(n=3000, features=3000, classes=20, seed=0):
    """Sparse rows of unit length (as TF-IDF): a small curvature, so learning_rate='auto' is large."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(seed)
    X = sp.random(n, features, density=0.01, random_state=seed, format="csr")
    centres = rng.normal(size=(classes, features)) * (rng.random((classes, features)) < 0.05)
    y = np.asarray(X @ centres.T).argmax(1)
    return normalize(X), y


def test_sgd_step_shrinks_with_a_strong_penalty():
    """learning_rate='auto' is STEP / (curvature + alpha): a strong penalty on unit-length sparse rows
    (a step near 10 without it) neither diverges nor lands far from the penalised optimum."""
    X, y = _unit_rows()
    sgd = dict(optimizer="sgd", batch_size=512, max_iter=30, tol=0.0, random_state=0)
    weak = SoftmaxRegressionClassifier(alpha=1e-6, **sgd).fit(X, y)
    strong = SoftmaxRegressionClassifier(alpha=1.0, **sgd).fit(X, y)
    assert weak.learning_rate_ > 5 and strong.learning_rate_ < 1.0
    assert 1 / strong.learning_rate_ == pytest.approx(1 / weak.learning_rate_ + (1.0 - 1e-6), rel=1e-6)
    optimum = SoftmaxRegressionClassifier(optimizer="lbfgs", alpha=1.0).fit(X, y)
    np.testing.assert_allclose(strong.predict_proba(X), optimum.predict_proba(X), atol=0.01)  # SGD noise, no averaging


def test_alpha_auto_path_on_unit_length_sparse_rows():
    """The path starts at a penalty of 1: each stage's step is lr / (1 + lr * l2), so the strong end
    does not diverge, and the refit's step is set for the penalty chosen."""
    from softreg.training.l2path import stage_rate
    from softreg.training import make_config

    X, y = _unit_rows()
    sgd = dict(optimizer="sgd", batch_size=512, max_iter=30, tol=0.0, random_state=0)
    clf = SoftmaxRegressionClassifier(alpha="auto", **sgd).fit(X, y)
    assert all(np.isfinite(p["val_loss"]) for p in clf.l2_path_["points"]) and len(clf.l2_path_["points"]) >= 3
    at_chosen = SoftmaxRegressionClassifier(alpha=clf.alpha_, **sgd).fit(X, y)
    assert clf.learning_rate_ == pytest.approx(at_chosen.learning_rate_, rel=1e-9)
    np.testing.assert_allclose(clf.predict_proba(X), at_chosen.predict_proba(X), atol=1e-6)
    sgd, adam = make_config(lr=10.0), make_config(lr=10.0, optimizer="adam")
    assert stage_rate(sgd, 1.0) == pytest.approx(10 / 11) and stage_rate(sgd, 0.0) == 10.0
    assert stage_rate(adam, 1.0) == 10.0
