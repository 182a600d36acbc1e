"""``--l2 auto``: the L2 penalty chosen on a regularisation path over a validation split.

The training rows are split (stratified, fixed by the seed) into fitting rows and validation
rows. The model is fitted at each penalty of a grid, from the strongest down, each fit starting
from the weights of the previous one (a warm start: the optimum moves little from one penalty
to the next, so each needs a fraction of a full run). The penalty whose model has the lowest
validation log loss wins, unless another penalty's model classifies the validation rows
clearly better: when the best validation accuracy beats the log-loss choice's by a paired
(McNemar) z statistic of at least ``ACCURACY_Z``, that penalty wins. Log loss and accuracy
usually agree; where classes overlap heavily they need not (a mis-specified linear model: the
penalty with the best probabilities is not the one with the best decisions), and a user of a
classifier reads its accuracy. The path stops once ``PATIENCE`` weaker penalties in a row have
improved neither. The caller then refits on every training row with the chosen penalty.

As in scikit-learn's ``LogisticRegressionCV``, the penalty carried over to the refit keeps the
penalty per sample summed over the data fixed (sklearn's ``C``): the mean-cost penalty softreg
uses, ``l2``, becomes ``l2 * n_fit / n_all`` for the refit on all ``n_all`` rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch

from softreg.data.base import Dataset, Split
from softreg.data.split import stratified_split
from softreg.models.sparse import row_chunks, take_rows
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.models import Classifier, loss_from_scores, scores_to_labels
from softreg.training.config import Runtime, TrainConfig, with_settings

# Penalties tried, strongest first: 1 down to 1e-6 in half-decade steps (mean-cost penalty on
# standardised features; 1 leaves the weights near zero, 1e-6 is nearly unpenalised).
DEFAULT_GRID: tuple[float, ...] = tuple(10.0 ** (-k / 2) for k in range(13))
VALIDATION_FRACTION = 0.2  # share of the training rows held out to score each penalty
PATIENCE = 2  # weaker penalties in a row with neither a better validation loss nor accuracy: the path stops
# The best validation accuracy replaces the log-loss choice when its paired gain is at least this
# many standard errors (McNemar's z over the rows the two models classify differently). The best
# of up to 13 penalties is picked after the fact, so the bar is above the usual 2.
ACCURACY_Z = 2.5
STAGE_SHARE = 0.125  # each penalty gets this share of a full run's epochs (at least one epoch)
# Up to this many values (rows x features) a linear model's path is fitted to the optimum of each
# penalty by full-batch L-BFGS in float64: cheap at that size, and exact, so the choice does not
# depend on how close minibatch updates came (on the digits they shifted it by a grid step).
EXACT_PATH_VALUES = 2**22
EXACT_STAGE_EPOCHS = 25  # L-BFGS epochs of up to 20 steps; a converged stage stops early
EXACT_REFIT_EPOCHS = 50  # the exact refit starts from scratch: more room, and it stops once converged
EXACT_SETTINGS = dict(optimizer="lbfgs", lr=1.0, batch_size=0, average=0.0, schedule="constant", dtype="float64",
                      stall_stop=True, patience=1, tol=1e-9)


@dataclass
class PathPoint:
    """One penalty of the path: its validation log loss and accuracy, epochs run, seconds taken."""

    l2: float
    val_loss: float
    val_accuracy: float
    epochs: int
    seconds: float


@dataclass
class L2Choice:
    """The outcome of ``choose_l2``.

    l2 : the penalty to refit with on all training rows (``path_l2 * n_fit / n_all``)
    path_l2 : the grid penalty chosen: the lowest validation log loss, or the best validation
        accuracy where it is clearly better (``chosen_by``)
    chosen_by : "log loss" or "accuracy"
    accuracy_z : McNemar's z of the best validation accuracy over the log-loss choice's (0 when
        they are the same penalty)
    points : every penalty tried, strongest first (the path may stop before the grid's end)
    n_fit, n_val : rows the path fitted on and scored on
    seconds : the whole path, wall clock
    exact : whether each penalty was fitted to its optimum (full-batch L-BFGS, float64)
    """

    l2: float
    path_l2: float
    chosen_by: str = "log loss"
    accuracy_z: float = 0.0
    points: list[PathPoint] = field(default_factory=list)
    n_fit: int = 0
    n_val: int = 0
    seconds: float = 0.0
    exact: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def describe_choice(choice: dict) -> str:
    """One line for the command line about an ``L2Choice.to_dict()``."""
    point = next(p for p in choice["points"] if p["l2"] == choice["path_l2"])
    if choice.get("chosen_by") == "accuracy":
        why = (f"validation accuracy {point['val_accuracy']:.4f} at {choice['path_l2']:.3g}, clearly above the "
               f"lowest log loss's (z {choice['accuracy_z']:.1f})")
    else:
        why = f"validation log loss {point['val_loss']:.4f} at {choice['path_l2']:.3g}"
    return (f"l2 auto: chose {choice['l2']:.3g} ({why} on {choice['n_val']} held-out rows; "
            f"{len(choice['points'])} penalties in {choice['seconds']:.2f} s)"
            + ("; refitted exactly (L-BFGS, float64)" if choice.get("exact") else ""))


def held_out_rows(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fitting rows, validation rows) of labels y (n,): softreg.data.split's stratified split."""
    fit, val = stratified_split(y.cpu().numpy(), fraction, seed, minimum=1)
    if len(val) == 0 or len(fit) == 0:
        raise UserInputError(f"l2 auto could not hold out validation rows from {len(y)} training rows. "
                             f"Give {spell('l2')} a number instead.")
    return torch.from_numpy(fit), torch.from_numpy(val)


def choose_l2(data: Dataset, config: TrainConfig, *, runtime: Runtime | None = None,
              sample_weight: torch.Tensor | None = None, grid: Sequence[float] | None = None,
              validation_fraction: float = VALIDATION_FRACTION,
              split: tuple[torch.Tensor, torch.Tensor] | None = None,
              stage_epochs: int | None = None) -> L2Choice:
    """Choose the L2 penalty for training ``config`` on ``data.train`` by a regularisation path.

    data : the rows to choose on, ``data.train`` (X (n, *sample_shape) raw, y (n,) class indices);
        its test split is never looked at
    config : the training settings; its own ``l2`` is ignored (it may be "auto"). Each penalty
        is fitted with this optimizer, batch size and preprocessing, for ``stage_epochs`` epochs
    runtime : device and threads, as for ``train``
    sample_weight : optional (n,) weights of the rows, used in fitting and in the validation loss
    grid : penalties to try (mean-cost L2, as ``TrainConfig.optim.l2``); sorted strongest first.
        Default ``DEFAULT_GRID``
    validation_fraction : share of the rows held out, stratified by class, fixed by ``config.seed``
    split : (fit rows, validation rows) index tensors to use instead of drawing a split
    stage_epochs : epochs per penalty; default an eighth of the epochs a full run of ``config``
        would take on the fitting rows, at least one

    Returns an ``L2Choice``; its ``l2`` is the penalty for a refit on all ``n`` rows.
    """
    from softreg.system.device import resolve_device
    from softreg.training.fitting import prepare
    from softreg.training.loop import cpu_threads
    from softreg.training.plan import make_plan

    tic = time.perf_counter()
    runtime = runtime or Runtime()
    grid = sorted({float(v) for v in (grid if grid is not None else DEFAULT_GRID)}, reverse=True)
    if not grid or any(not math.isfinite(v) or v < 0 for v in grid):
        raise UserInputError(f"the l2 grid must hold finite numbers >= 0; got {grid}.")
    n = len(data.train)
    fit_rows, val_rows = split if split is not None else held_out_rows(data.train.y, validation_fraction,
                                                                           config.seed)
    fitting = data.with_train(Split(take_rows(data.train.X, fit_rows), data.train.y[fit_rows]))
    base = with_settings(config, l2=grid[0], validation_fraction=0.0, early_stopping=False)
    exact = _exact_path(base, len(fit_rows) * data.n_features) and stage_epochs is None
    if exact:
        base = with_settings(base, **EXACT_SETTINGS)
        stage_epochs = EXACT_STAGE_EPOCHS
    if stage_epochs is None:
        full = make_plan(base, len(fit_rows), data.n_features, runtime)
        stage_epochs = max(1, math.ceil(full.epochs * STAGE_SHARE))
    device = resolve_device(runtime.device)
    w = None if sample_weight is None else sample_weight.to(torch.float64)
    val_X, val_y = take_rows(data.train.X, val_rows), data.train.y[val_rows]  # gathered once for every penalty
    val_w = None if w is None else w[val_rows]
    points: list[PathPoint] = []
    right: list[torch.Tensor] = []  # per point: which validation rows its model classifies correctly
    model: Classifier | None = None
    best_loss, best_accuracy, stale = math.inf, -math.inf, 0
    for l2 in grid:
        started = time.perf_counter()
        stage = with_settings(base, l2=l2, epochs=stage_epochs, lr=stage_rate(base, l2))
        run = prepare(fitting, stage, runtime, sample_weight=None if w is None else w[fit_rows], model=model)
        state = run.run()
        model = state.model
        with cpu_threads(state.plan.threads, device):
            loss, accuracy, correct = _scores(model, val_X, val_y, val_w, device)
        points.append(PathPoint(l2, loss, accuracy, len(state.history), time.perf_counter() - started))
        right.append(correct)
        if not math.isfinite(loss):
            break  # a weaker penalty will not bring it back
        if loss < best_loss or accuracy > best_accuracy:
            stale = 0
        else:
            stale += 1
            if stale >= PATIENCE:
                break
        best_loss, best_accuracy = min(best_loss, loss), max(best_accuracy, accuracy)
    index, chosen_by, z = select_penalty(points, right, val_w)
    chosen = points[index]
    return L2Choice(l2=chosen.l2 * len(fit_rows) / n, path_l2=chosen.l2, chosen_by=chosen_by, accuracy_z=z,
                    points=points, n_fit=len(fit_rows), n_val=len(val_rows), seconds=time.perf_counter() - tic,
                    exact=exact)


def select_penalty(points: Sequence[PathPoint], right: Sequence[torch.Tensor],
                   weight: torch.Tensor | None = None, z_min: float | None = None) -> tuple[int, str, float]:
    """(index of the chosen point, "log loss" or "accuracy", McNemar's z) for a path's points.

    right : per point, a bool (n_val,) tensor of the validation rows its model classifies correctly
    weight : optional (n_val,) row weights (the z statistic then weighs each disagreement)
    z_min : the bar for accuracy to overrule log loss; default ``ACCURACY_Z``

    The lowest finite validation log loss is the choice unless the point with the best accuracy
    (ties: the lower log loss) gains at least ``z_min`` standard errors of the paired difference
    ``sum(w * (right_best - right_loss)) / sqrt(sum((w * (right_best - right_loss)) ** 2))``.
    """
    z_min = ACCURACY_Z if z_min is None else z_min
    finite = [i for i, p in enumerate(points) if math.isfinite(p.val_loss)] or list(range(len(points)))
    by_loss = min(finite, key=lambda i: points[i].val_loss)
    by_accuracy = max(finite, key=lambda i: (points[i].val_accuracy, -points[i].val_loss))
    if by_accuracy == by_loss:
        return by_loss, "log loss", 0.0
    gain = right[by_accuracy].double() - right[by_loss].double()
    if weight is not None:
        gain = gain * weight.double()
    spread = float(gain.square().sum().sqrt())
    z = float(gain.sum()) / spread if spread > 0 else 0.0
    return (by_accuracy, "accuracy", z) if z >= z_min else (by_loss, "log loss", z)


def stage_rate(config: TrainConfig, l2: float) -> float:
    """The learning rate of a path stage at penalty ``l2``: SGD's ``lr / (1 + lr * l2)``, so that
    the penalty's own curvature (``l2``) cannot make a step set for a weak penalty diverge at the
    path's strong end (a step of 10, right for l2-normalised text, times a penalty of 1). Weak
    penalties keep the step as it is; other optimizers set their own step sizes."""
    lr = config.optim.lr
    return lr / (1.0 + lr * l2) if config.optim.optimizer == "sgd" else lr


def refit_config(config: TrainConfig, choice: L2Choice) -> TrainConfig:
    """The settings of the refit on every row: ``config`` with the chosen penalty; when the path
    was fitted exactly (a small linear problem), the refit is exact too (full-batch L-BFGS in
    float64, to convergence), so the model is the optimum of the penalty the path chose rather
    than wherever the minibatch recipe's fixed number of updates ends."""
    if not choice.exact:
        return with_settings(config, l2=choice.l2)
    return with_settings(config, l2=choice.l2, epochs=EXACT_REFIT_EPOCHS, **EXACT_SETTINGS)


def _exact_path(config: TrainConfig, values: int) -> bool:
    """Whether the path is fitted exactly (full-batch L-BFGS): small linear problems without L1."""
    return config.model.kind != "mlp" and not config.optim.l1 and values <= EXACT_PATH_VALUES


@torch.no_grad()
def _scores(model: Classifier, X: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None,
            device: torch.device) -> tuple[float, float, torch.Tensor]:
    """(weighted mean log loss, weighted accuracy, bool (n,) rows classified correctly) of ``model``
    on raw rows X (n, ...), in chunks."""
    was_training = model.training
    model.eval()
    loss_sum = correct_sum = weight_sum = 0.0
    right = torch.empty(X.shape[0], dtype=torch.bool)
    start = 0
    for chunk in row_chunks(X):
        stop = start + chunk.shape[0]
        scores = model(chunk.to(device))
        yb = y[start:stop].to(device)
        wb = torch.ones(yb.shape[0], dtype=torch.float64, device=device) if w is None else w[start:stop].to(device)
        losses = loss_from_scores(scores, yb, reduction="none").double()
        loss_sum += float((losses * wb).sum())
        correct = scores_to_labels(scores) == yb
        right[start:stop] = correct.cpu()
        correct_sum += float((correct.double() * wb).sum())
        weight_sum += float(wb.sum())
        start = stop
    model.train(was_training)
    weight_sum = max(weight_sum, 1e-300)
    return loss_sum / weight_sum, correct_sum / weight_sum, right
