"""scikit-learn estimators: the common checks, the L2 optimum against LogisticRegression, options, errors."""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks
from threadpoolctl import threadpool_limits

from softreg import LogisticRegressionClassifier, MLPClassifier, SoftmaxRegressionClassifier

_SKLEARN = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
ESTIMATORS = [SoftmaxRegressionClassifier, LogisticRegressionClassifier, MLPClassifier]

# Short runs (small max_iter in the checks and here) are deliberate; one test asserts the warning.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([
    SoftmaxRegressionClassifier(),
    LogisticRegressionClassifier(),
    # a smaller, faster-learning network keeps the checks quick; the defaults are tested below
    MLPClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=50),
    # minibatch SGD, which also runs the partial_fit checks
    SoftmaxRegressionClassifier(optimizer="sgd"),
])
def test_sklearn_common_checks(estimator, check, monkeypatch):
    # The NumPy-input array API check only asks that the flag be set: SciPy's own array API
    # support (read when SciPy is imported) plays no part with NumPy arrays.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    name = getattr(check, "func", check).__name__
    if (isinstance(estimator, LogisticRegressionClassifier) and _SKLEARN < (1, 7)
            and name.startswith("check_sample_weight_equivalence")):
        # scikit-learn 1.6's check binarises y for binary-only estimators after shuffling, so
        # it compares two different problems; 1.7 fixed it, and the estimator passes it there.
        pytest.skip("scikit-learn < 1.7 compares two different problems in this check")
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    """Standardized digits split into train and test: (X_train, X_test, y_train, y_test)."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _objective(coef, intercept, X, y, l2):
    """Mean cross-entropy plus l2/2 * ||coef||^2, in float64."""
    scores = X @ coef.T + intercept  # (N, C)
    scores = scores - scores.max(axis=1, keepdims=True)
    log_proba = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return -log_proba[np.arange(len(y)), y].mean() + 0.5 * l2 * (coef**2).sum()


def test_softmax_reaches_logistic_regression_optimum(digits):
    X, _, y, _ = digits
    C = 1.0
    alpha = 1.0 / (C * len(y))  # C * sum(loss) + ||W||^2 / 2, divided by C * n
    with threadpool_limits(1):  # OpenMP threads in sklearn's loss crawl on a busy machine
        reference = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    ours = SoftmaxRegressionClassifier(alpha=alpha, random_state=0).fit(X, y)
    assert ours.coef_.shape == reference.coef_.shape == (10, 64)
    best = _objective(reference.coef_, reference.intercept_, X, y, alpha)
    got = _objective(ours.coef_, ours.intercept_, X, y, alpha)
    assert abs(got - best) / best < 1e-4, (got, best)
    assert ours.n_iter_ < ours.max_iter  # stopped by convergence, not by max_iter


def test_partial_fit_over_minibatches_matches_fit(digits):
    X, X_test, y, y_test = digits
    full = SoftmaxRegressionClassifier(random_state=0).fit(X, y).score(X_test, y_test)
    online = SoftmaxRegressionClassifier(optimizer="sgd", learning_rate=0.05, random_state=0)
    rng = np.random.RandomState(0)
    for _ in range(10):
        for batch in np.array_split(rng.permutation(len(y)), 10):
            online.partial_fit(X[batch], y[batch], classes=np.arange(10))
    assert online.n_iter_ == 100 and len(online.loss_curve_) == 100
    assert online.loss_curve_[-1] < online.loss_curve_[0] / 5
    assert abs(online.score(X_test, y_test) - full) <= 0.02
    assert full > 0.93


def test_partial_fit_classes_rules():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegressionClassifier(optimizer="adam")
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.predict_proba(X).shape == (150, 3)
    with pytest.raises(ValueError, match=r"y contains label\(s\) \[7\] not in classes_ \[0, 1, 2\]"):
        clf.partial_fit(X[:2], [0, 7])
    with pytest.raises(ValueError, match=r"classes=\[0, 1\] differs from the classes of the first call"):
        clf.partial_fit(X[:2], [0, 1], classes=[0, 1])
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxRegressionClassifier is expecting 4"):
        clf.partial_fit(X[:, :3], y)


def test_partial_fit_needs_a_minibatch_optimizer():
    assert hasattr(SoftmaxRegressionClassifier(), "partial_fit")  # optimizer='auto': SGD
    clf = SoftmaxRegressionClassifier(optimizer="lbfgs")
    assert not hasattr(clf, "partial_fit")
    with pytest.raises(AttributeError) as info:
        clf.partial_fit([[0.0], [1.0]], [0, 1], classes=[0, 1])
    assert "has optimizer='lbfgs' (full batch). Set optimizer='auto', 'sgd'" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported by partial_fit"):
        SoftmaxRegressionClassifier(optimizer="sgd", class_weight="balanced").partial_fit(
            [[0.0], [1.0]], [0, 1], classes=[0, 1])


def test_meta_estimators():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), SoftmaxRegressionClassifier(random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.95
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.9
    search = GridSearchCV(pipe, {"softmaxregressionclassifier__alpha": [1e-4, 10.0]}, cv=3).fit(X, y)
    assert search.best_params_ == {"softmaxregressionclassifier__alpha": 1e-4}
    calibrated = CalibratedClassifierCV(
        make_pipeline(StandardScaler(), LogisticRegressionClassifier(random_state=0)), cv=3
    ).fit(X[y > 0], y[y > 0])
    proba = calibrated.predict_proba(X[y > 0])
    assert proba.shape == (100, 2) and np.allclose(proba.sum(axis=1), 1)
    assert calibrated.score(X[y > 0], y[y > 0]) > 0.9


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_string_labels_round_trip(Estimator):
    X, y = load_iris(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[y > 0], np.array(["setosa", "versicolor", "virginica"])[y[y > 0]]
    clf = Estimator(random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["versicolor", "virginica"]
    assert set(clf.predict(X)) == {"versicolor", "virginica"}
    assert clf.score(X, y) > 0.9
    decision = clf.decision_function(X)
    assert decision.shape == (100,)  # binary: the log-odds of classes_[1]
    assert np.array_equal(clf.predict(X), clf.classes_[(decision > 0).astype(int)])
    assert np.allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-decision)))


def test_linear_shapes_and_decision_function():
    X, y = load_iris(return_X_y=True)
    multi = SoftmaxRegressionClassifier(random_state=0).fit(X, y)
    assert multi.coef_.shape == (3, 4) and multi.intercept_.shape == (3,)
    assert multi.decision_function(X).shape == (150, 3)
    assert np.allclose(multi.decision_function(X), X @ multi.coef_.T + multi.intercept_)
    for Estimator in (SoftmaxRegressionClassifier, LogisticRegressionClassifier):
        binary = Estimator(random_state=0).fit(X[y > 0], y[y > 0])  # two outputs, or one logit
        assert binary.coef_.shape == (1, 4) and binary.intercept_.shape == (1,)
        expected = X @ binary.coef_[0] + binary.intercept_[0]
        assert np.allclose(binary.decision_function(X), expected)
    assert not hasattr(MLPClassifier(), "coef_")


def test_balanced_class_weight_favours_the_minority_class():
    X, y = make_classification(n_samples=400, weights=[0.9, 0.1], class_sep=0.5, random_state=0)
    plain = SoftmaxRegressionClassifier(random_state=0).fit(X, y).predict(X)
    balanced = SoftmaxRegressionClassifier(class_weight="balanced", random_state=0).fit(X, y).predict(X)
    assert (balanced == 1).sum() > 2 * (plain == 1).sum()
    assert (balanced[y == 1] == 1).mean() > (plain[y == 1] == 1).mean()


@pytest.mark.parametrize("params", [{}, {"optimizer": "sgd"}])
def test_sample_weight_two_equals_a_repeated_row(params):
    X, y = load_iris(return_X_y=True)
    weight = np.where(np.arange(150) % 3 == 0, 2.0, 1.0)
    weighted = SoftmaxRegressionClassifier(random_state=0, **params).fit(X, y, sample_weight=weight)
    repeated = SoftmaxRegressionClassifier(random_state=0, **params).fit(
        np.vstack([X, X[::3]]), np.concatenate([y, y[::3]]))
    plain = SoftmaxRegressionClassifier(random_state=0, **params).fit(X, y)
    assert np.allclose(weighted.coef_, repeated.coef_, atol=1e-6)
    assert not np.allclose(weighted.coef_, plain.coef_, atol=1e-2)


@pytest.mark.parametrize("optimizer", ["lbfgs", "sgd"])
def test_sparse_input_gives_the_dense_model(digits, optimizer):
    X, _, y, _ = digits
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    alpha = 1e-3
    params = dict(alpha=alpha, optimizer=optimizer, random_state=0)
    if optimizer == "sgd":
        params.update(average=0.75, learning_rate=0.1)  # a fixed plan and step: the runs differ by rounding only
    dense = SoftmaxRegressionClassifier(**params).fit(X, y)
    sparse = SoftmaxRegressionClassifier(**params).fit(sp.csr_matrix(X), y)
    # sparse products add in another order: float32 rounding, then the same optimum
    got, want = (_objective(m.coef_, m.intercept_, X, y, alpha) for m in (sparse, dense))
    assert got == pytest.approx(want, rel=1e-5 if optimizer == "lbfgs" else 1e-3)
    assert np.allclose(dense.coef_, sparse.coef_, atol=1e-3 if optimizer == "lbfgs" else 2e-2)
    assert (dense.predict(X) == sparse.predict(X)).mean() > 0.99
    # one model scores dense and sparse rows alike
    assert np.allclose(sparse.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)), atol=1e-9)


def test_sparse_rows_are_never_made_dense(monkeypatch):
    rng = np.random.default_rng(0)
    X = sp.random(300, 50_000, density=0.001, format="csr", random_state=0)
    y = (X[:, :25_000].sum(axis=1).A.ravel() > X[:, 25_000:].sum(axis=1).A.ravel()).astype(int)

    def refuse(*args, **kwargs):
        raise AssertionError("a sparse matrix was made dense")

    monkeypatch.setattr(sp.csr_matrix, "toarray", refuse)
    monkeypatch.setattr(sp.csr_matrix, "todense", refuse)
    monkeypatch.setattr(torch.Tensor, "to_dense", refuse)
    for Estimator, params in [(SoftmaxRegressionClassifier, {}), (LogisticRegressionClassifier, {"optimizer": "sgd"}),
                              (MLPClassifier, {"hidden_layer_sizes": (8,), "max_iter": 3})]:
        clf = Estimator(random_state=0, **params).fit(X, y)
        assert clf.predict_proba(X).shape == (300, 2)
        clf.partial_fit(X[:100], y[:100], classes=[0, 1]) if hasattr(clf, "partial_fit") else None
    assert rng is not None


def test_warm_start_continues_from_the_previous_weights(digits):
    X, _, y, _ = digits
    clf = SoftmaxRegressionClassifier(optimizer="sgd", average=0, max_iter=3, warm_start=True, random_state=0)
    clf.fit(X, y)
    model, first = clf.model_, clf.loss_curve_
    clf.fit(X, y)
    assert clf.model_ is model
    assert clf.loss_curve_[0] < first[-1] < first[0]
    cold = SoftmaxRegressionClassifier(optimizer="sgd", average=0, max_iter=3, random_state=0).fit(X, y)
    assert cold.model_ is not model and cold.loss_curve_ == pytest.approx(first)


def test_early_stopping_stops_before_max_iter(digits):
    X, _, y, _ = digits
    clf = MLPClassifier(early_stopping=True, n_iter_no_change=3, max_iter=500, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500 and clf.n_iter_ == len(clf.history_) == len(clf.loss_curve_)
    assert "val_loss" in clf.history_.rows[0] and clf.history_.best_epoch <= clf.n_iter_
    assert clf.score(X, y) > 0.9


def test_max_iter_before_convergence_warns(digits):
    X, _, y, _ = digits
    with pytest.warns(ConvergenceWarning, match="ran max_iter=2 epochs and the training cost was still improving"):
        assert MLPClassifier(max_iter=2, random_state=0).fit(X, y).n_iter_ == 2


def test_l1_penalty_gives_exact_zeros(digits):
    X, _, y, _ = digits
    live = X.std(axis=0) > 0  # digits has a few pixels that are always blank
    l1 = SoftmaxRegressionClassifier(penalty="l1", alpha=0.02, optimizer="sgd", random_state=0).fit(X, y)
    l2 = SoftmaxRegressionClassifier(penalty="l2", alpha=0.02, optimizer="sgd", random_state=0).fit(X, y)
    assert (l1.coef_[:, ~live] == 0).all()
    assert (l1.coef_[:, live] == 0).mean() > 0.2
    assert (l2.coef_ == 0).sum() == 0
    assert l1.score(X, y) > 0.9


def test_fit_leaves_the_global_random_state_alone():
    X, y = load_iris(return_X_y=True)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    SoftmaxRegressionClassifier(optimizer="sgd", random_state=3).fit(X, y)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_parameter_rules_cover_every_parameter(Estimator):
    assert set(Estimator._parameter_constraints) == set(Estimator().get_params())
    # scikit-learn's own check that every rule rejects what it should, with its message
    check_param_validation(Estimator.__name__, Estimator(max_iter=5))


@pytest.mark.parametrize("Estimator, params, message", [
    (SoftmaxRegressionClassifier, {"alpha": -1},
     "The 'alpha' parameter of SoftmaxRegressionClassifier must be a float in the range [0.0, inf) or a str among {'auto'}. Got -1 instead."),
    (LogisticRegressionClassifier, {"penalty": "l3"},
     "The 'penalty' parameter of LogisticRegressionClassifier must be a str among"),
    (MLPClassifier, {"hidden_layer_sizes": (0,)},
     "The 'hidden_layer_sizes' parameter of MLPClassifier must be a tuple of positive integers "
     "(units per hidden layer). Got (0,) instead. Example: hidden_layer_sizes=(100,)."),
    (MLPClassifier, {"hidden_layer_sizes": 0},
     "The 'hidden_layer_sizes' parameter of MLPClassifier must be an array-like or an int in the range"),
    (MLPClassifier, {"activation": "softplus"}, "The 'activation' parameter of MLPClassifier must be a str among"),
    (SoftmaxRegressionClassifier, {"optimizer": "rmsprop"},
     "The 'optimizer' parameter of SoftmaxRegressionClassifier must be a str among"),
    (SoftmaxRegressionClassifier, {"penalty": "l1"},
     "penalty='l1' has an L1 part, which optimizer='lbfgs' cannot minimise (it is not smooth). "
     "Use optimizer='sgd' or 'adam'"),
])
def test_invalid_parameters_are_named(Estimator, params, message):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError) as info:
        Estimator(**params).fit(X, y)
    assert message in str(info.value)


def test_bad_input_raises_sklearn_errors():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegressionClassifier()
    with pytest.raises(NotFittedError, match="This SoftmaxRegressionClassifier instance is not fitted yet"):
        clf.predict(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.fit(bad, y)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxRegressionClassifier is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="got 1 class, \\[0\\]. Add samples of another class"):
        SoftmaxRegressionClassifier().fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="Only binary classification is supported.*use SoftmaxRegressionClassifier"):
        LogisticRegressionClassifier().fit(X, y)
    with pytest.raises(ValueError, match="warm_start needs the classes of the previous fit"):
        SoftmaxRegressionClassifier(warm_start=True).fit(X, y).fit(X[y > 0], y[y > 0])


def test_partial_fit_divergence_is_reported():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegressionClassifier(optimizer="sgd", learning_rate=1e6)
    with pytest.raises(ValueError, match="training diverged .* lower the learning rate"):
        for _ in range(5):
            clf.partial_fit(X * 1e10, y, classes=[0, 1, 2])


# -- the fast path: automatic choices, partial_fit, progress, start-up ------------------------------


def test_auto_optimizer_follows_the_size_of_the_problem(digits):
    X, _, y, _ = digits
    small = SoftmaxRegressionClassifier(random_state=0).fit(X, y)
    assert small.optimizer_ == "lbfgs" and small.learning_rate_ == 1.0 and small.batch_size_ == len(y)
    Xb, yb = make_classification(n_samples=12_000, n_features=20, n_informative=10, n_classes=3, random_state=0)
    Xb = StandardScaler().fit_transform(Xb)
    large = SoftmaxRegressionClassifier(random_state=0).fit(Xb, yb)
    assert large.optimizer_ == "sgd" and large.batch_size_ == 256
    assert large.n_iter_ == 15  # the averaged plan: about 700 updates of 47 per epoch
    reference = LogisticRegression(C=1 / (1e-4 * len(yb)), max_iter=1000).fit(Xb, yb)
    assert abs(large.score(Xb, yb) - reference.score(Xb, yb)) < 0.01
    # the step follows the data's scale: features 10 times larger, a step about 100 times smaller
    scaled = SoftmaxRegressionClassifier(random_state=0, max_iter=1).fit(10 * Xb, yb)
    assert scaled.learning_rate_ == pytest.approx(large.learning_rate_ / 100, rel=0.05)
    wide = SoftmaxRegressionClassifier(max_iter=1).fit(sp.random(50, 400_000, density=1e-4, format="csr",
                                                                  random_state=0), np.arange(50) % 3)
    assert wide.optimizer_ == "sgd"  # L-BFGS's history would hold 40 vectors of 1.2 million values


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_one_partial_fit_pass_in_ten_chunks_learns_as_sgdclassifier_does(digits, Estimator):
    from sklearn.linear_model import SGDClassifier

    X, X_test, y, y_test = digits
    if Estimator is LogisticRegressionClassifier:
        y, y_test = (y >= 5).astype(int), (y_test >= 5).astype(int)
    classes = np.unique(y)
    ours, theirs = [], []
    for seed in range(3):
        chunks = np.array_split(np.random.RandomState(seed).permutation(len(y)), 10)
        clf, reference = Estimator(random_state=seed), SGDClassifier(random_state=seed)
        for chunk in chunks:
            clf.partial_fit(X[chunk], y[chunk], classes=classes)
            reference.partial_fit(X[chunk], y[chunk], classes=classes)
        ours.append(clf.score(X_test, y_test))
        theirs.append(reference.score(X_test, y_test))
    assert np.mean(ours) >= np.mean(theirs), (ours, theirs)


def test_verbose_prints_the_plan_and_epochs(digits, capsys):
    X, _, y, _ = digits
    clf = SoftmaxRegressionClassifier(optimizer="sgd", learning_rate=0.01, max_iter=60, tol=0, n_iter_no_change=60,
                                      verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert clf.n_iter_ == 60
    assert lines[0].startswith("SoftmaxRegressionClassifier: model: softmax")
    assert any("SGD lr 0.01 momentum 0.9" in line for line in lines)
    epochs = [line for line in lines if "Epoch" in line]
    assert len(epochs) == 11 and epochs[0].startswith("SoftmaxRegressionClassifier: Epoch  1/60  Cost:")  # 1, 7, ..., 55, 60
    clf.set_params(verbose=2).fit(X, y)
    assert len([line for line in capsys.readouterr().out.splitlines() if "Epoch" in line]) == 60
    SoftmaxRegressionClassifier(max_iter=5).fit(X, y)
    assert capsys.readouterr().out == ""


def test_scikit_learn_callbacks_see_every_epoch_and_can_stop_a_fit(digits):
    from softreg.estimators.sklearn_compat import CALLBACKS

    X, X_test, y, y_test = digits
    if not CALLBACKS:  # scikit-learn < 1.9: verbose only
        assert not hasattr(SoftmaxRegressionClassifier(), "set_callbacks")
        return
    from sklearn.callback import ProgressBar

    class Record:
        def __init__(self, stop_after=None):
            self.events, self.scores, self.stop_after = [], [], stop_after

        def setup(self, estimator, context):
            self.events.append("setup")

        def teardown(self, estimator, context):
            self.events.append("teardown")

        def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None):
            self.events.append(("begin", context.task_name))

        def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None):
            self.events.append(("end", context.task_name))
            if context.task_name == "epoch":
                self.scores.append(fitted_estimator.score(X_test, y_test))
                return self.stop_after is not None and len(self.scores) >= self.stop_after
            return False

    record = Record()
    clf = SoftmaxRegressionClassifier(optimizer="sgd", average=0.75, max_iter=12, random_state=0)
    clf.set_callbacks(record).fit(X, y)
    assert record.events[0] == "setup" and record.events[-1] == "teardown"
    assert record.events.count(("begin", "epoch")) == record.events.count(("end", "epoch")) == clf.n_iter_ == 12
    assert record.scores[-1] == pytest.approx(clf.score(X_test, y_test))  # the fitted copy is the model
    stopper = Record(stop_after=3)
    SoftmaxRegressionClassifier(optimizer="lbfgs").set_callbacks(stopper).fit(X, y)
    assert len(stopper.scores) == 3
    quiet = SoftmaxRegressionClassifier(max_iter=3).set_callbacks(ProgressBar())
    assert quiet.fit(X, y).n_iter_ == 3


def test_first_fits_import_no_torchdynamo():
    code = ("import sys\n"
            "from sklearn.datasets import load_digits\n"
            "from softreg import SoftmaxRegressionClassifier, MLPClassifier\n"
            "X, y = load_digits(return_X_y=True)\n"
            "SoftmaxRegressionClassifier(max_iter=3).fit(X, y)\n"  # L-BFGS
            "SoftmaxRegressionClassifier(optimizer='sgd', max_iter=3).fit(X, y)\n"
            "MLPClassifier(max_iter=2).fit(X, y)\n"
            "assert 'torch._dynamo' not in sys.modules, 'TorchDynamo was imported'\n")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
