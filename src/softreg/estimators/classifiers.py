"""scikit-learn estimators over softreg's models and trainer.

``SoftmaxRegressionClassifier`` (multinomial), ``LogisticRegressionClassifier`` (binary only)
and ``MLPClassifier`` keep the estimator contract: ``__init__`` only stores parameters, whose
rules are declared in ``_parameter_constraints``; ``fit`` returns self; learned attributes end
in ``_``. Both ``fit`` and ``partial_fit`` train through softreg.training's one loop: ``fit``
runs ``training.fit`` on a fresh TrainState; ``partial_fit`` runs one ``training.train_epoch``
on a TrainState kept between calls.

Every fit minimises the weighted mean cross-entropy plus
``alpha * (l1_ratio * |W|_1 + (1 - l1_ratio) / 2 * ||W||^2)`` over the weight matrices
(biases are not penalised), as SGDClassifier does. With penalty 'l2' and
``alpha = 1 / (C * n_samples)`` this is LogisticRegression's objective divided by ``C * n_samples``.

- X is dense or SciPy sparse. Sparse rows stay sparse: CSR batches, sparse x dense products,
  a sparse first layer for the MLP; scoring reads them 8192 rows at a time.
- The linear estimators' ``optimizer='auto'`` picks full-batch L-BFGS for small problems and
  the command line's recipe (momentum SGD, weights averaged over the last 75% of about 700
  updates, a step set from the data's scale) for large ones: see softreg.training.auto and BENCHMARKS.md.
- Training runs in float32. Scoring runs in float64, so a row's result does not depend on
  which other rows are scored with it.
- Sample weights, times class weights, are rescaled to average 1: only their ratios matter.
  Rows with zero weight are dropped, and rows repeated exactly (same features, same label)
  become one row carrying their total weight, seen in an order fixed by their content, so
  integer sample weights train exactly like repeated rows (softreg.estimators.rows: always with weights,
  and without them up to 8 million stored values).
- Random draws use a private torch random state seeded from ``random_state``; the caller's
  Python, NumPy and torch random states are left as they were.
"""

from __future__ import annotations

import math
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

from softreg import settings as S
from softreg.training import auto as _auto
from softreg.estimators import hooks as _fit_hooks
from softreg.estimators.docs import LINEAR_DOC, MLP_DOC, PARAMETERS_DOC
from softreg.estimators.rows import prepare_rows
from softreg.estimators.sklearn_compat import (CallbackSupportMixin, Interval, StrOptions, check_sample_weight,
                                     validate_params, with_callbacks)
from softreg.data.base import Dataset, Split
from softreg.models.sparse import CHUNK_ROWS, from_scipy, take_rows
from softreg.models import scores_to_log_proba
from softreg.training.config import Runtime, TrainConfig, config_from_flat
from softreg.system.device import resolve_device
from softreg.training.plan import auto_batch_size, describe, make_plan
from softreg.training.state import History
from softreg.training.fitting import prepare
from softreg.training.trainer import split_validation

ADAM_LEARNING_RATE = 1e-3  # learning_rate='auto' with Adam (scikit-learn's MLPClassifier default) ...
ADAM_ONLINE_LEARNING_RATE = 3e-3  # ... and in partial_fit, where one pass must learn (BENCHMARKS.md)
LBFGS_LEARNING_RATE = 1.0  # L-BFGS's first trial step, scaled by its line search
AVERAGE = 0.75  # the recipe's averaging window: the last 75% of the updates (softreg.training.config)
ALIASES = {"logistic": "sigmoid"}  # scikit-learn's name for an activation
DTYPES = (np.float64, np.float32)  # accepted as given; anything else becomes float64


def _from_setting(name: str, *words: str) -> list:
    """scikit-learn's constraint for a parameter that is training setting ``name`` (softreg.settings),
    also admitting ``words`` (such as 'auto')."""
    kind = S.setting(name).kind
    extra = set(words)
    if isinstance(kind, S.OrWord):
        extra.add(kind.word)
        kind = kind.kind
    if isinstance(kind, S.Choice):
        return [StrOptions(set(kind.choices) | extra)]
    closed = {(False, False): "both", (True, False): "right", (False, True): "left", (True, True): "neither"}
    number = Interval(Integral if kind.integer else Real, kind.lo, None if kind.hi == math.inf else kind.hi,
                      closed=closed[(kind.open_lo, kind.open_hi and kind.hi != math.inf)])
    return [number] + ([StrOptions(extra)] if extra else [])


def _decision(scores: torch.Tensor) -> torch.Tensor:
    """(n,) log-odds of the second class for two classes, else the (n, C) scores."""
    if scores.ndim == 2 and scores.shape[1] == 2:
        return scores[:, 1] - scores[:, 0]
    return scores


def _stochastic(estimator: "_SoftregClassifier") -> bool:
    if estimator.optimizer == "lbfgs":
        raise AttributeError(
            f"partial_fit needs a minibatch optimizer, but this {type(estimator).__name__} has "
            "optimizer='lbfgs' (full batch). Set optimizer='auto', 'sgd' or 'adam'."
        )
    return True


class _SoftregClassifier(CallbackSupportMixin, ClassifierMixin, BaseEstimator):
    """Parameters, fitting and scoring shared by the three estimators; subclasses name the model."""

    _kind = "softmax"
    _parameter_constraints: dict = {
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "optimizer": _from_setting("optimizer", "auto"),
        "learning_rate": _from_setting("lr", "auto"),
        "schedule": _from_setting("schedule"),
        "average": _from_setting("average", "auto"),
        "momentum": _from_setting("momentum"),
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": _from_setting("tol"),
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def __init__(self, *, penalty: str | None = "l2", alpha: float | str = 1e-4, l1_ratio: float = 0.15,
                 class_weight: dict | str | None = None, optimizer: str = "auto",
                 learning_rate: float | str = "auto", schedule: str = "constant", average: float | str = "auto",
                 momentum: float = 0.9, batch_size: int | str = "auto", max_iter: int = 100, tol: float = 1e-4,
                 n_iter_no_change: int = 10, early_stopping: bool = False, validation_fraction: float = 0.1,
                 warm_start: bool = False, random_state: int | np.random.RandomState | None = None,
                 device: str = "cpu", verbose: int = 0):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.average = average
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
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------------ fitting

    @with_callbacks
    def fit(self, X, y, sample_weight=None) -> _SoftregClassifier:
        """Train on X, y: from a fresh initialisation, or from the current weights with warm_start.

        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), labels of any type
        sample_weight : array-like of shape (n_samples,), optional relative weight of each sample

        L-BFGS and unaveraged SGD / Adam run up to ``max_iter`` epochs and stop earlier once the
        training cost (or, with early_stopping, the validation cost) has not improved by more
        than ``tol`` for ``n_iter_no_change`` epochs. Averaged SGD / Adam follow their plan
        (about 700 updates, at most ``max_iter`` epochs). Returns self.
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
        self._fit_rows = (X, codes, weights)  # for summary(): references, not copies; not pickled
        rows, codes, weights = prepare_rows(X, codes, weights)
        seed = self._seed()
        config, planned = self._settings(rows, len(codes), seed, partial=False)
        data = self._dataset(rows, codes)
        w = None if weights is None else torch.from_numpy(weights).float()
        validation = None
        if self.early_stopping:
            data, validation, w = self._hold_out(data, w, seed)
        runtime = Runtime(device=self.device)
        config = self._choose_alpha(data, config, runtime, w, rows)
        run = prepare(data, config, runtime, validation=validation, sample_weight=w,
                      model=self.model_ if warm else None)
        lines = describe(config, run.plan, "none", str(run.device)) if self.verbose else []
        callbacks, root = _fit_hooks.fit_callbacks(self, X, y, sample_weight, run.plan.epochs, lines)
        state = run.run(callbacks)
        self.model_ = state.model
        self._run = None  # partial_fit after fit starts a fresh optimizer
        self.history_ = state.history
        self.n_iter_ = len(state.history)
        self.loss_curve_ = list(state.history.avg_cost)
        _fit_hooks.end_fit(self, root, X, y, sample_weight)
        self._warn_unconverged(state, planned)
        return self

    @available_if(_stochastic)
    def partial_fit(self, X, y, classes=None, sample_weight=None) -> _SoftregClassifier:
        """One epoch of minibatch updates on X, y, from the current weights and optimizer state.

        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), labels among ``classes``
        classes : array-like of shape (n_classes,), every label; required on the first call
        sample_weight : array-like of shape (n_samples,), optional relative weight of each sample

        With optimizer 'auto' or 'sgd': momentum SGD (its step set from the first call's data
        unless learning_rate is given); with 'adam', Adam (learning rate 0.003 unless given).
        Minibatches of n/50 rows of the first call (16 to 512) unless batch_size is given. No
        weight averaging: the weights after a call are the model. Returns self.
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
        self._fit_rows = None
        rows = self._tensor(X)
        wt = None if weights is None else torch.tensor(weights / weights.mean(), dtype=torch.float32)
        run = getattr(self, "_run", None)
        if run is None:  # the run every later call continues: its optimizer state carries over
            if self.alpha == "auto":
                raise ValueError("alpha='auto' chooses the penalty by refitting on a validation split, which "
                                 "partial_fit cannot do; give alpha a number (or use fit).")
            config, _ = self._settings(X, len(codes), self._seed(), partial=True)
            run = self._run = prepare(self._dataset(X, codes, rows), config, Runtime(device=self.device),
                                      model=None if first else self.model_)
            if first:
                self.model_ = run.state.model
                self.history_, self.n_iter_, self.loss_curve_ = History(), 0, []
        run.epoch(run.rows(rows, torch.from_numpy(codes), wt))
        state = run.state
        state.model.eval()
        row = state.history.rows[-1]
        cost, accuracy = row["avg_cost"], row["accuracy"]
        self.n_iter_ += 1
        self.history_.append(epoch=self.n_iter_, avg_cost=cost, accuracy=accuracy)
        self.loss_curve_.append(cost)
        return self

    # ------------------------------------------------------------------ scoring

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
        """The network's float64 scores for raw X (sparse rows stay sparse): (n, C), or (n,) logits
        for a one-output head."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=DTYPES, reset=False)
        model = self.model_
        device = next(model.parameters()).device
        state = {name: t.detach().double() for name, t in [*model.named_parameters(), *model.named_buffers()]}
        chunks = []
        with torch.no_grad():
            for start in range(0, X.shape[0], CHUNK_ROWS):  # host rows (NumPy or SciPy), a chunk at a time
                xb = X[start : start + CHUNK_ROWS]
                xb = (from_scipy(xb, torch.float64, device) if sp.issparse(xb)
                      else torch.tensor(xb, dtype=torch.float64, device=device))
                chunks.append(functional_call(model, state, (xb,)))
        return torch.cat(chunks)

    # ------------------------------------------------------------------ the fit's settings

    def _settings(self, X, n_samples: int, seed: int, *, partial: bool) -> tuple[TrainConfig, int]:
        """(the TrainConfig of a fit or of partial_fit's calls, the epochs its plan asks for).

        Every setting is given, so the trainer's defaults (tuned for the command line) do not leak in.
        """
        l1, l2 = self._penalties()
        optimizer = self._optimizer_for(X, n_samples, partial)
        if l1 > 0 and optimizer == "lbfgs":
            raise ValueError(
                f"penalty={self.penalty!r} has an L1 part, which optimizer='lbfgs' cannot minimise (it is not "
                "smooth). Use optimizer='sgd' or 'adam' (L1 is then applied as a soft-threshold step after "
                "each update), or penalty='l2'."
            )
        self.optimizer_ = optimizer
        full = optimizer == "lbfgs"
        batch = auto_batch_size(n_samples) if partial and self.batch_size == "auto" else self._batch(n_samples, X)
        self.batch_size_ = n_samples if full else min(batch, n_samples)
        self.learning_rate_ = self._learning_rate(X, optimizer, self.batch_size_, l2)
        if partial and optimizer == "adam" and self.learning_rate == "auto":
            self.learning_rate_ = ADAM_ONLINE_LEARNING_RATE
        share = self._average_share()
        averaged = not (full or partial or self.early_stopping) and share > 0 and not l1
        hidden, activation = self._architecture()
        settings = dict(
            model=self._kind, hidden=hidden, activation=activation, bias=True, init="default",
            preprocess="none", epochs=10**7 if partial else int(self.max_iter),
            batch_size=0 if full else self.batch_size_, lr=self.learning_rate_, optimizer=optimizer,
            momentum=float(self.momentum), l2=l2, l1=l1, schedule="constant" if full or partial else self.schedule,
            average=share if averaged else 0.0,
            validation_fraction=float(self.validation_fraction) if self.early_stopping else 0.0,
            early_stopping=bool(self.early_stopping), stall_stop=not (self.early_stopping or averaged),
            patience=int(self.n_iter_no_change), tol=float(self.tol), shuffle=True, drop_last=False, seed=seed,
        )
        planned = int(self.max_iter)
        if averaged:  # the recipe's plan: about 700 updates, at most max_iter epochs
            planned = make_plan(config_from_flat({**settings, "epochs": None}), n_samples, 1).epochs
            settings["epochs"] = min(planned, int(self.max_iter))
        return config_from_flat(settings), planned

    def _optimizer_for(self, X, n_samples: int, partial: bool) -> str:
        if self.optimizer != "auto":
            return self.optimizer
        if partial:
            return "sgd"
        outputs = 1 if self._kind == "logistic" else len(self.classes_)
        return _auto.choose_optimizer(n_samples, (X.shape[1] + 1) * outputs)

    def _learning_rate(self, X, optimizer: str, batch_size: int, l2: float) -> float:
        if self.learning_rate != "auto":
            return float(self.learning_rate)
        if optimizer == "lbfgs":
            return LBFGS_LEARNING_RATE
        if optimizer == "adam":
            return ADAM_LEARNING_RATE
        head = 4.0 if self._kind == "logistic" else float(len(self.classes_))
        return _auto.sgd_learning_rate(X, head, batch_size, sp.issparse(X), l2=l2)

    def _average_share(self) -> float:
        """average='auto': the recipe's 0.75 when optimizer='auto' chose SGD, else 0 (plain SGD / Adam)."""
        if self.average != "auto":
            return float(self.average)
        return AVERAGE if self.optimizer == "auto" else 0.0

    def _batch(self, n_samples: int, X) -> int:
        """batch_size='auto': n/50 as a power of two in [16, 512], as the command line's plan;
        for sparse rows at least F / (2 x non-zeros per row) (softreg.training.auto.sparse_batch)."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        batch = auto_batch_size(n_samples)
        if sp.issparse(X):
            batch = max(batch, _auto.sparse_batch(n_samples, X.shape[1], X.nnz))
        return batch

    def _choose_alpha(self, data: Dataset, config: TrainConfig, runtime: Runtime, w, X) -> TrainConfig:
        """alpha='auto': the penalty of a regularisation path on a stratified validation split of the
        training rows, warm-started from the strongest (softreg.training.l2path, as ``--l2 auto``);
        the fit then uses every row, with learning_rate='auto' set for the chosen penalty. Sets
        ``alpha_`` (and ``l2_path_``, the path's points)."""
        if self.alpha != "auto":
            self.alpha_ = float(self.alpha)
            return config
        from softreg.training.config import with_settings
        from softreg.training.l2path import choose_l2

        choice = choose_l2(data, config, runtime=runtime, sample_weight=w)
        self.alpha_, self.l2_path_ = choice.l2, choice.to_dict()
        self.learning_rate_ = self._learning_rate(X, config.optim.optimizer, self.batch_size_, choice.l2)
        return with_settings(config, l2=choice.l2, lr=self.learning_rate_)

    def _penalties(self) -> tuple[float, float]:
        """(l1, l2) strengths for TrainConfig (alpha='auto' starts at 1e-4; fit replaces the l2)."""
        if self.alpha == "auto" and self.penalty in ("l1", "elasticnet"):
            raise ValueError(f"alpha='auto' walks an L2 path; penalty={self.penalty!r} has an L1 part. Give alpha a "
                             "number, or use penalty='l2'.")
        alpha = 1e-4 if self.alpha == "auto" else float(self.alpha)
        if self.penalty is None:
            return 0.0, 0.0
        ratio = {"l1": 1.0, "l2": 0.0, "elasticnet": float(self.l1_ratio)}[self.penalty]
        return alpha * ratio, alpha * (1.0 - ratio)

    def _architecture(self) -> tuple[list[int], str]:
        return [100], "relu"  # unused by the linear models

    def _warn_unconverged(self, state, planned: int) -> None:
        """ConvergenceWarning when max_iter ended a fit its stopping rule (or plan) had not ended."""
        if state.config.stop.stall_stop or state.config.stop.early_stopping:
            if len(state.history) < int(self.max_iter):
                return
            watched = "validation" if self.early_stopping else "training"
            message = f"the {watched} cost was still improving by more than tol={self.tol}; raise max_iter (or tol)"
        elif planned <= int(self.max_iter):
            return
        else:
            message = f"the averaged plan asks for {planned} epochs; raise max_iter"
        warnings.warn(f"{type(self).__name__} ran max_iter={self.max_iter} epochs and {message} to let it converge.",
                      ConvergenceWarning)

    # ------------------------------------------------------------------ data

    @staticmethod
    def _tensor(X) -> torch.Tensor:
        """Rows as a float32 tensor: CSR when X is sparse."""
        return from_scipy(X) if sp.issparse(X) else torch.as_tensor(np.asarray(X, dtype=np.float32))

    def _dataset(self, X, codes: np.ndarray, rows: torch.Tensor | None = None) -> Dataset:
        rows = self._tensor(X) if rows is None else rows
        return Dataset(name=type(self).__name__, train=Split(rows, torch.as_tensor(codes)), test=None,
                       classes=[str(c) for c in self.classes_], index_base=0 if rows.layout == torch.sparse_csr else None)

    def _hold_out(self, data: Dataset, w: torch.Tensor | None, seed: int):
        """Split off validation_fraction of the rows: (training Dataset, validation Split, training weights)."""
        # split_validation splits any rows: splitting row numbers gives indices for X and w alike
        numbered = Dataset(data.name, Split(torch.arange(len(data.train))[:, None], data.train.y), None, data.classes)
        kept, held = split_validation(numbered, self.validation_fraction, seed)
        train_rows, held_rows = kept.train.X[:, 0], held.X[:, 0]
        validation = Split(take_rows(data.train.X, held_rows), data.train.y[held_rows])
        training = Dataset(data.name, Split(take_rows(data.train.X, train_rows), data.train.y[train_rows]), None,
                           data.classes, index_base=data.index_base)
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

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))


class _LinearCoefficients:
    """coef_ and intercept_ read from the linear layer, in scikit-learn's shapes; summary()."""

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_fit_rows", None)
        return state

    def summary(self, X=None, y=None, sample_weight=None, *, alpha: float = 0.05, reference="first",
                cov_type: str = "nonrobust", terms: list[str] | None = None):
        """The coefficient table: a pandas DataFrame with columns coef, std_err, z, p_value, ci_lower,
        ci_upper (and odds_ratio for the logistic model), the ``intercept`` row first, then the features
        by name (``feature_names_in_``, else x0, x1, ...).

        Computed at the exact optimum of the fit's objective: Newton's method in float64 from the
        fitted weights, on the data of the last ``fit`` unless X, y (and sample_weight, frequency
        weights) are given. The covariance is the inverse observed Fisher information
        (``cov_type='nonrobust'``) or the sandwich (``'HC0'``, ``'HC1'``); with a penalty it is the
        penalised information's inverse, an approximation. Softmax regression: rows indexed by
        (class, term) against ``reference`` ('first', a class label, or None for every class's own
        coefficients, which needs a penalty). ``terms``: only these terms' rows. Warns
        (softreg.inference.coefficients.CoefficientWarning) naming the terms whose standard errors
        are NaN (perfect separation; constant, duplicated or collinear columns). ``attrs`` records
        the iterations, the final gradient and whether Newton's method converged.
        """
        from softreg.inference.coefficients import summarize

        check_is_fitted(self)
        if X is None:
            if getattr(self, "_fit_rows", None) is None:
                raise ValueError("summary() needs the training data: pass X and y (the fit's rows are not kept "
                                 "across pickling or partial_fit).")
            X, codes, weights = self._fit_rows
        else:
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=DTYPES, reset=False)
            unknown = np.setdiff1d(y, self.classes_)
            if unknown.size:
                raise ValueError(f"y contains label(s) {unknown.tolist()} not in classes_ {self.classes_.tolist()}.")
            codes = np.searchsorted(self.classes_, y).astype(np.int64)
            weights = self._row_weights(X, y, codes, sample_weight, partial=False)
        l1, l2 = self._penalties()
        if l1 > 0:
            raise ValueError(f"summary() needs a smooth objective; penalty={self.penalty!r} has an L1 part. "
                             "Fit with penalty='l2' or None.")
        if self.alpha == "auto" and self.penalty is not None:
            l2 = float(self.alpha_) * (1.0 - (float(self.l1_ratio) if self.penalty == "elasticnet" else 0.0))
        linear = self.model_.net.linear
        W = linear.weight.detach().double().cpu().numpy()
        b = linear.bias.detach().double().cpu().numpy()
        names = getattr(self, "feature_names_in_", None)
        names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(self.n_features_in_)]
        return summarize(X, codes, weights, W, b, classes=list(self.classes_), terms=names,
                         logistic=self._kind == "logistic", l2=l2, reference=reference, cov_type=cov_type,
                         alpha=alpha, select=terms)

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
        return np.ascontiguousarray(W), b


class SoftmaxRegressionClassifier(_LinearCoefficients, _SoftregClassifier):
    __doc__ = """Multinomial logistic (softmax) regression: one weight row per class.
    """ + LINEAR_DOC + PARAMETERS_DOC + """    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Two classes give two outputs; coef_ then holds their difference.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    """


class LogisticRegressionClassifier(_LinearCoefficients, _SoftregClassifier):
    __doc__ = """Binary logistic regression: one logit, sigmoid(logit) = P(classes_[1]).

    Exactly two classes; use SoftmaxRegressionClassifier for more.
    """ + LINEAR_DOC + PARAMETERS_DOC + """    coef_ : ndarray of shape (1, n_features)
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
    __doc__ = MLP_DOC + PARAMETERS_DOC

    _kind = "mlp"
    _parameter_constraints: dict = {
        **_SoftregClassifier._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": _from_setting("activation", "logistic"),
    }

    def __init__(self, hidden_layer_sizes: tuple[int, ...] | int = (100,), activation: str = "relu", *,
                 penalty: str | None = "l2", alpha: float | str = 1e-4, l1_ratio: float = 0.15,
                 class_weight: dict | str | None = None, optimizer: str = "adam",
                 learning_rate: float | str = "auto", schedule: str = "constant", average: float | str = "auto",
                 momentum: float = 0.9, batch_size: int | str = "auto", max_iter: int = 200, tol: float = 1e-4,
                 n_iter_no_change: int = 10, early_stopping: bool = False, validation_fraction: float = 0.1,
                 warm_start: bool = False, random_state: int | np.random.RandomState | None = None,
                 device: str = "cpu", verbose: int = 0):
        super().__init__(
            penalty=penalty, alpha=alpha, l1_ratio=l1_ratio, class_weight=class_weight, optimizer=optimizer,
            learning_rate=learning_rate, schedule=schedule, average=average, momentum=momentum,
            batch_size=batch_size, max_iter=max_iter, tol=tol, n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping, validation_fraction=validation_fraction, warm_start=warm_start,
            random_state=random_state, device=device, verbose=verbose,
        )
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation

    def _optimizer_for(self, X, n_samples: int, partial: bool) -> str:
        return "adam" if self.optimizer == "auto" else self.optimizer

    def _learning_rate(self, X, optimizer: str, batch_size: int, l2: float) -> float:
        if self.learning_rate == "auto" and optimizer == "sgd":
            return 0.01  # a network's curvature is not the data's: scikit-learn's MLP default
        return super()._learning_rate(X, optimizer, batch_size, l2)

    def _batch(self, n_samples: int, X) -> int:
        """batch_size='auto': min(200, n_samples), as scikit-learn's MLPClassifier."""
        return 200 if self.batch_size == "auto" else int(self.batch_size)

    def _architecture(self) -> tuple[list[int], str]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if np.iterable(sizes) else [sizes]
        if not sizes or not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in sizes):
            raise ValueError(
                f"The 'hidden_layer_sizes' parameter of MLPClassifier must be a tuple of positive "
                f"integers (units per hidden layer). Got {self.hidden_layer_sizes!r} instead. "
                "Example: hidden_layer_sizes=(100,)."
            )
        return [int(h) for h in sizes], ALIASES.get(self.activation, self.activation)


__all__ = ["SoftmaxRegressionClassifier", "LogisticRegressionClassifier", "MLPClassifier"]
