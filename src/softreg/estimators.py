"""scikit-learn estimators over softreg's models and trainer.

``SoftmaxRegressionClassifier`` (multinomial), ``LogisticRegressionClassifier``
(binary only) and ``MLPClassifier`` keep the estimator contract: ``__init__``
only stores parameters, whose rules are declared in ``_parameter_constraints``;
``fit`` returns self; learned attributes end in ``_``. Both ``fit`` and
``partial_fit`` train through softreg.training's one loop: ``fit`` runs
``training.fit`` on a fresh TrainState; ``partial_fit`` runs one
``training.train_epoch`` on a TrainState kept between calls.

Every fit minimises the weighted mean cross-entropy plus
``alpha * (l1_ratio * |W|_1 + (1 - l1_ratio) / 2 * ||W||^2)`` over the weight
matrices (biases are not penalised), as SGDClassifier does. With penalty 'l2'
and ``alpha = 1 / (C * n_samples)`` this is LogisticRegression's objective
divided by ``C * n_samples``.

- X is dense or SciPy sparse. Sparse input is made dense for training (and
  8192 rows at a time for scoring), which suits moderate sizes.
- Training runs in float32. Scoring runs in float64, so a row's result does
  not depend on which other rows are scored with it.
- Sample weights, times class weights, are rescaled to average 1: only their
  ratios matter. Rows with zero weight are dropped, and rows repeated exactly
  (same features, same label) become one row carrying their total weight, so
  integer sample weights train exactly like repeated rows, in any row order.
- Random draws use a private torch random state seeded from ``random_state``;
  the caller's Python, NumPy and torch random states are left as they were.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.func import functional_call

from softreg._sklearn_compat import Interval, StrOptions, check_sample_weight, validate_params
from softreg.data.base import Dataset, Split
from softreg.data.sources import InMemorySource
from softreg.models import scores_to_log_proba
from softreg.training.config import Runtime, TrainConfig, config_from_flat
from softreg.training.device import resolve_device
from softreg.training.loop import cpu_threads, train_epoch
from softreg.training.loop import fit as train_fit
from softreg.training.state import History
from softreg.training.trainer import new_state, split_validation

AUTO_LEARNING_RATE = {"lbfgs": 1.0, "adam": 1e-3, "sgd": 1e-2}  # learning_rate="auto", per optimizer
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "logistic": "sigmoid"}  # logistic: sklearn's name
SCORE_CHUNK = 8192  # rows scored at once
DTYPES = (np.float64, np.float32)  # accepted as given; anything else becomes float64


def _merge_rows(X: np.ndarray, codes: np.ndarray, weights: np.ndarray | None):
    """Drop zero-weight rows; merge rows repeated exactly into one row weighted by their total.

    X : (n, F) float; codes : (n,) int64 class indices; weights : (n,) or None.
    Returns float32 X (m, F), codes (m,) and mean-1 weights (m,), or None when all are
    equal. Rows come out in an order fixed by their content (their hash), so equal
    weighted sets of rows give bit-identical training.
    """
    if weights is not None:
        keep = weights > 0
        X, codes, weights = X[keep], codes[keep], weights[keep]
    rows = np.ascontiguousarray(np.column_stack([X.astype(np.float64, copy=False), codes]))
    odd = np.random.RandomState(0).randint(1, 2**63, size=rows.shape[1], dtype=np.uint64) | np.uint64(1)
    keys = rows.view(np.uint64) @ odd  # (n,) hash of the bits, wrapping mod 2**64
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    counts = np.bincount(group)
    shared = counts[group] > 1
    if not np.array_equal(rows[shared], rows[first[group[shared]]]):  # a hash collision: sort exactly
        _, first, group = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    total = np.bincount(group.ravel(), weights=weights)
    X = np.ascontiguousarray(X[first], dtype=np.float32)
    merged = None if np.all(total == total[0]) else total * (len(total) / total.sum())
    return X, codes[first], merged


def _decision(scores: torch.Tensor) -> torch.Tensor:
    """(n,) log-odds of the second class for two classes, else the (n, C) scores."""
    if scores.ndim == 2 and scores.shape[1] == 2:
        return scores[:, 1] - scores[:, 0]
    return scores


def _stochastic(estimator: "_SoftregClassifier") -> bool:
    if estimator.optimizer == "lbfgs":
        raise AttributeError(
            f"partial_fit needs a minibatch optimizer, but this {type(estimator).__name__} has "
            "optimizer='lbfgs' (full batch). Set optimizer='sgd' or optimizer='adam'."
        )
    return True


class _SoftregClassifier(ClassifierMixin, BaseEstimator):
    """Parameters, fitting and scoring shared by the three estimators; subclasses name the model."""

    _kind = "softmax"
    _parameter_constraints: dict = {
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "optimizer": [StrOptions({"lbfgs", "sgd", "adam"})],
        "learning_rate": [Interval(Real, 0, 1e6, closed="right"), StrOptions({"auto"})],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
    }

    def __init__(self, *, penalty: str | None = "l2", alpha: float = 1e-4, l1_ratio: float = 0.15,
                 class_weight: dict | str | None = None, optimizer: str = "lbfgs",
                 learning_rate: float | str = "auto", momentum: float = 0.9, batch_size: int | str = "auto",
                 max_iter: int = 100, tol: float = 1e-4, n_iter_no_change: int = 10,
                 early_stopping: bool = False, validation_fraction: float = 0.1, warm_start: bool = False,
                 random_state: int | np.random.RandomState | None = None, device: str = "cpu"):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X, y, sample_weight=None) -> _SoftregClassifier:
        """Train on X, y: from a fresh initialisation, or from the current weights with warm_start.

        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), labels of any type
        sample_weight : array-like of shape (n_samples,), optional relative weight of each sample

        Runs up to ``max_iter`` epochs; stops earlier once the training cost (or, with
        early_stopping, the validation cost) has not improved by more than ``tol`` for
        ``n_iter_no_change`` epochs. Returns self.
        """
        validate_params(self)
        warm = self.warm_start and hasattr(self, "model_")
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=DTYPES, reset=not warm)
        check_classification_targets(y)
        classes = np.unique(y)
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start needs the classes of the previous fit, {self.classes_.tolist()}; "
                f"y has {classes.tolist()}. Set warm_start=False to start afresh."
            )
        self._check_classes(classes, y)
        self.classes_ = classes
        codes = np.searchsorted(classes, y).astype(np.int64)
        weights = self._row_weights(X, y, codes, sample_weight, partial=False)
        X, codes, weights = _merge_rows(X.toarray() if sp.issparse(X) else X, codes, weights)
        seed = self._seed()
        config = self._config(len(codes), epochs=self.max_iter, seed=seed)
        data = self._dataset(torch.from_numpy(X), torch.from_numpy(codes))
        w = None if weights is None else torch.from_numpy(weights).float()
        validation = None
        if self.early_stopping:
            data, validation, w = self._hold_out(data, w, seed)
        device = resolve_device(self.device)
        state = new_state(data, config, Runtime(device=self.device), has_validation=validation is not None,
                          device=device, model=self.model_ if warm else None)
        source = InMemorySource(data.train.X, data.train.y, None if w is None else w.to(state.model.dtype),
                                device=device)
        val_source = None if validation is None else InMemorySource(validation.X, validation.y, device=device)
        train_fit(state, source, validation=val_source)
        self.model_ = state.model
        history = state.history
        converged = len(history) < state.plan.epochs  # the stopping rule ended it
        self._state = None  # partial_fit after fit starts a fresh optimizer
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history.avg_cost)
        if not converged:
            watched = "validation" if self.early_stopping else "training"
            warnings.warn(
                f"{type(self).__name__} ran max_iter={self.max_iter} epochs and the {watched} cost was "
                f"still improving by more than tol={self.tol}; raise max_iter (or tol) to let it converge.",
                ConvergenceWarning,
            )
        return self

    @available_if(_stochastic)
    def partial_fit(self, X, y, classes=None, sample_weight=None) -> _SoftregClassifier:
        """One epoch of minibatch updates on X, y, from the current weights and optimizer state.

        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), labels among ``classes``
        classes : array-like of shape (n_classes,), every label; required on the first call
        sample_weight : array-like of shape (n_samples,), optional relative weight of each sample

        Only with optimizer 'sgd' or 'adam'. Returns self.
        """
        validate_params(self)
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit, "
                             "e.g. classes=np.unique(y_all): every label the model will see.")
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=DTYPES, reset=first)
        check_classification_targets(y)
        if first:
            self._check_classes(unique_labels(classes), classes)
            self.classes_ = unique_labels(classes)
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes={list(classes)} differs from the classes of the first call, "
                             f"{self.classes_.tolist()}; pass the same classes or none.")
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(
                f"y contains label(s) {unknown.tolist()} not in classes_ {self.classes_.tolist()}, the classes "
                "given on the first call to partial_fit. Pass every label in classes on the first call."
            )
        codes = np.searchsorted(self.classes_, y).astype(np.int64)
        weights = self._row_weights(X, y, codes, sample_weight, partial=True)
        device = resolve_device(self.device)
        Xt = torch.tensor(X.toarray() if sp.issparse(X) else X, dtype=torch.float32)
        wt = None if weights is None else torch.tensor(weights / weights.mean(), dtype=torch.float32)
        state = getattr(self, "_state", None)
        if state is None:
            config = self._config(len(codes), epochs=10**7, seed=self._seed())
            data = self._dataset(Xt, torch.from_numpy(codes))
            state = self._state = new_state(data, config, Runtime(device=self.device), has_validation=False,
                                            device=device, model=None if first else self.model_)
            if first:
                self.model_ = state.model
                self.history_, self.n_iter_, self.loss_curve_ = History(), 0, []
        source = InMemorySource(Xt, torch.from_numpy(codes), None if wt is None else wt.to(state.model.dtype),
                                device=device)
        with cpu_threads(state.plan.threads, device):
            train_epoch(state, source)
        state.model.eval()
        row = state.history.rows[-1]
        cost, accuracy = row["avg_cost"], row["accuracy"]
        self.n_iter_ += 1
        self.history_.append(epoch=self.n_iter_, avg_cost=cost, accuracy=accuracy)
        self.loss_curve_.append(cost)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Scores: (n_samples,) log-odds of ``classes_[1]`` for two classes, else (n_samples, n_classes)."""
        return _decision(self._scores(X)).cpu().numpy()

    def predict_log_proba(self, X) -> np.ndarray:
        """Log-probabilities of shape (n_samples, n_classes), columns in the order of ``classes_``."""
        return scores_to_log_proba(self._scores(X)).cpu().numpy()

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of shape (n_samples, n_classes), columns in the order of ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels of shape (n_samples,), taken from ``classes_``."""
        decision = _decision(self._scores(X))
        index = (decision > 0).long() if decision.ndim == 1 else decision.argmax(dim=1)
        return self.classes_[index.cpu().numpy()]

    def _scores(self, X) -> torch.Tensor:
        """The network's float64 scores for raw X: (n, C), or (n,) logits for a one-output head."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=DTYPES, reset=False)
        model = self.model_
        device = next(model.parameters()).device
        state = {name: t.detach().double() for name, t in [*model.named_parameters(), *model.named_buffers()]}
        chunks = []
        with torch.no_grad():
            for start in range(0, X.shape[0], SCORE_CHUNK):
                xb = X[start : start + SCORE_CHUNK]
                xb = torch.tensor(xb.toarray() if sp.issparse(xb) else xb, dtype=torch.float64, device=device)
                chunks.append(functional_call(model, state, (xb,)))
        return torch.cat(chunks)

    def _hold_out(self, data: Dataset, w: torch.Tensor | None, seed: int):
        """Split off validation_fraction of the rows: (training Dataset, validation Split, training weights)."""
        # split_validation splits any rows: splitting row numbers gives indices for X and w alike
        numbered = self._dataset(torch.arange(len(data.train))[:, None], data.train.y)
        kept, held = split_validation(numbered, self.validation_fraction, seed)
        train_rows, held_rows = kept.train.X[:, 0], held.X[:, 0]
        validation = Split(data.train.X[held_rows], data.train.y[held_rows])
        training = self._dataset(data.train.X[train_rows], data.train.y[train_rows])
        return training, validation, None if w is None else w[train_rows]

    def _check_classes(self, classes: np.ndarray, y) -> None:
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; got 1 class, "
                             f"{classes.tolist()}. Add samples of another class.")

    def _row_weights(self, X, y, codes: np.ndarray, sample_weight, *, partial: bool) -> np.ndarray | None:
        """Per-row weights (n,): sample_weight times the class weight of each row's label, or None."""
        w = None
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if self.class_weight is not None:
            if partial and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: one batch does not show the "
                    "class frequencies. Pass class_weight=dict(zip(classes, compute_class_weight("
                    "'balanced', classes=classes, y=y_all))) instead."
                )
            per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            w = per_class[codes] if w is None else w * per_class[codes]
        if w is not None and not w.any():
            raise ValueError("The sample weights times the class weights are all zero; "
                             "give some samples a non-zero weight.")
        return w

    def _penalties(self) -> tuple[float, float]:
        """(l1, l2) strengths for TrainConfig."""
        alpha = float(self.alpha)
        if self.penalty is None:
            return 0.0, 0.0
        ratio = {"l1": 1.0, "l2": 0.0, "elasticnet": float(self.l1_ratio)}[self.penalty]
        return alpha * ratio, alpha * (1.0 - ratio)

    def _config(self, n_samples: int, epochs: int, seed: int) -> TrainConfig:
        l1, l2 = self._penalties()
        if l1 > 0 and self.optimizer == "lbfgs":
            raise ValueError(
                f"penalty={self.penalty!r} has an L1 part, which optimizer='lbfgs' cannot minimise (it is not "
                "smooth). Use optimizer='sgd' or 'adam' (L1 is then applied as a soft-threshold step after "
                "each update), or penalty='l2'."
            )
        batch = 200 if self.batch_size == "auto" else int(self.batch_size)
        lr = self.learning_rate
        hidden, activation = self._architecture()
        # every setting is given, so the trainer's defaults (tuned for the command line) do not leak in
        return config_from_flat(dict(
            model=self._kind, hidden=hidden, activation=activation, bias=True, init="default",
            preprocess="none", epochs=int(epochs), batch_size=0 if self.optimizer == "lbfgs" else min(batch, n_samples),
            lr=AUTO_LEARNING_RATE[self.optimizer] if lr == "auto" else float(lr), optimizer=self.optimizer,
            momentum=float(self.momentum), l2=l2, l1=l1, schedule="constant", average=0.0,
            validation_fraction=float(self.validation_fraction) if self.early_stopping else 0.0,
            early_stopping=bool(self.early_stopping), stall_stop=not self.early_stopping,
            patience=int(self.n_iter_no_change), tol=float(self.tol), shuffle=True, drop_last=False, seed=seed,
        ))

    def _architecture(self) -> tuple[list[int], str]:
        return [100], "relu"  # unused by the linear models

    def _dataset(self, X: torch.Tensor, codes: torch.Tensor) -> Dataset:
        return Dataset(name=type(self).__name__, train=Split(X, codes), test=None,
                       classes=[str(c) for c in self.classes_])

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))


class _LinearCoefficients:
    """coef_ and intercept_ read from the linear layer, in scikit-learn's shapes."""

    @property
    def coef_(self) -> np.ndarray:
        """Weights of shape (1, n_features) for two classes, else (n_classes, n_features)."""
        return self._coefficients()[0]

    @property
    def intercept_(self) -> np.ndarray:
        """Biases of shape (1,) for two classes, else (n_classes,)."""
        return self._coefficients()[1]

    def _coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        linear = self.model_.net.linear
        W = linear.weight.detach().double().cpu().numpy()  # (outputs, F)
        b = linear.bias.detach().double().cpu().numpy()  # (outputs,)
        if W.shape[0] == 2:  # two softmax outputs: the log-odds of class 1 against class 0
            W, b = W[1:] - W[:1], b[1:] - b[:1]
        return W, b


_PARAMETERS_DOC = """
    Parameters
    ----------
    penalty : {'l2', 'l1', 'elasticnet'} or None, default='l2'
        Penalty on the weight matrices; 'l1' and 'elasticnet' need optimizer 'sgd' or 'adam'.
    alpha : float >= 0, default=1e-4
        Penalty strength: l2 = alpha * (1 - r), l1 = alpha * r with r = 1, 0 or l1_ratio.
    l1_ratio : float in [0, 1], default=0.15
        Share of L1 in the elastic net.
    class_weight : dict, 'balanced' or None, default=None
        Weight per class, multiplied into the sample weights.
    optimizer : {'lbfgs', 'sgd', 'adam'}
        'lbfgs' takes full-batch steps (up to 20 line-searched iterations per epoch).
    learning_rate : float > 0 or 'auto', default='auto'
        'auto' is 1.0 for lbfgs, 0.01 for sgd, 0.001 for adam.
    momentum : float in [0, 1), default=0.9
        SGD momentum.
    batch_size : int >= 1 or 'auto', default='auto'
        Minibatch size for sgd and adam; 'auto' is min(200, n_samples).
    max_iter : int >= 1
        Most epochs per fit.
    tol, n_iter_no_change : float >= 0, int >= 1, default=1e-4, 10
        Stop once the training cost (validation cost with early_stopping) has not fallen
        by more than tol for n_iter_no_change epochs in a row.
    early_stopping : bool, default=False
        Hold out validation_fraction of the rows (stratified), score them every epoch and
        keep the best epoch's weights.
    validation_fraction : float in (0, 1), default=0.1
    warm_start : bool, default=False
        fit continues from the previous fit's weights (the optimizer starts afresh).
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, the sample order and the validation split.
    device : str, default='cpu'
        'cpu', 'cuda', 'cuda:N' or 'auto'.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    n_iter_ : int, epochs run
    model_ : softreg.models.Classifier, the trained network
    history_ : softreg.training.History, one row per epoch
    loss_curve_ : list of float, mean training cross-entropy of each epoch (without the penalty)
"""


class SoftmaxRegressionClassifier(_LinearCoefficients, _SoftregClassifier):
    __doc__ = """Multinomial logistic (softmax) regression: one weight row per class.

    Defaults to full-batch L-BFGS, which is deterministic and reaches the optimum of
    the smooth (L2) objective without tuning a learning rate; use optimizer='sgd' or
    'adam' for minibatches, partial_fit, or an L1 penalty. Two classes give two outputs;
    coef_ then holds their difference, shape (1, n_features).
    """ + _PARAMETERS_DOC + """    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    """


class LogisticRegressionClassifier(_LinearCoefficients, _SoftregClassifier):
    __doc__ = """Binary logistic regression: one logit, sigmoid(logit) = P(classes_[1]).

    Exactly two classes; use SoftmaxRegressionClassifier for more. Defaults as
    SoftmaxRegressionClassifier (full-batch L-BFGS).
    """ + _PARAMETERS_DOC + """    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    """

    _kind = "logistic"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _check_classes(self, classes: np.ndarray, y) -> None:
        super()._check_classes(classes, y)
        if len(classes) > 2:
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {type_of_target(y)} "
                f"({len(classes)} classes); use SoftmaxRegressionClassifier for more than two classes."
            )


class MLPClassifier(_SoftregClassifier):
    __doc__ = """Multi-layer perceptron: fully connected hidden layers, then a softmax head
    (a single logit for two classes).

    Defaults follow scikit-learn's MLPClassifier: Adam with learning rate 0.001,
    minibatches of 200, up to 200 epochs.

    hidden_layer_sizes : tuple of int >= 1, default=(100,)
        Units per hidden layer.
    activation : {'relu', 'tanh', 'sigmoid', 'logistic'}, default='relu'
        'logistic' is scikit-learn's name for 'sigmoid'.
    """ + _PARAMETERS_DOC

    _kind = "mlp"
    _parameter_constraints: dict = {
        **_SoftregClassifier._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(self, hidden_layer_sizes: tuple[int, ...] | int = (100,), activation: str = "relu", *,
                 penalty: str | None = "l2", alpha: float = 1e-4, l1_ratio: float = 0.15,
                 class_weight: dict | str | None = None, optimizer: str = "adam",
                 learning_rate: float | str = "auto", momentum: float = 0.9, batch_size: int | str = "auto",
                 max_iter: int = 200, tol: float = 1e-4, n_iter_no_change: int = 10,
                 early_stopping: bool = False, validation_fraction: float = 0.1, warm_start: bool = False,
                 random_state: int | np.random.RandomState | None = None, device: str = "cpu"):
        super().__init__(
            penalty=penalty, alpha=alpha, l1_ratio=l1_ratio, class_weight=class_weight, optimizer=optimizer,
            learning_rate=learning_rate, momentum=momentum, batch_size=batch_size, max_iter=max_iter, tol=tol,
            n_iter_no_change=n_iter_no_change, early_stopping=early_stopping,
            validation_fraction=validation_fraction, warm_start=warm_start, random_state=random_state,
            device=device,
        )
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation

    def _architecture(self) -> tuple[list[int], str]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if np.iterable(sizes) else [sizes]
        if not sizes or not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in sizes):
            raise ValueError(
                f"The 'hidden_layer_sizes' parameter of MLPClassifier must be a tuple of positive "
                f"integers (units per hidden layer). Got {self.hidden_layer_sizes!r} instead. "
                "Example: hidden_layer_sizes=(100,)."
            )
        return [int(h) for h in sizes], ACTIVATIONS[self.activation]


__all__ = ["SoftmaxRegressionClassifier", "LogisticRegressionClassifier", "MLPClassifier"]
