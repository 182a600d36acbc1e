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
