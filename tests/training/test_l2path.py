"""--l2 auto: the stratified split, the regularisation path against scikit-learn, the refit, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import assert_user_error

from softreg.data.base import Dataset, Split
from softreg.training import make_config, train, with_settings
from softreg.training import l2path
from softreg.training.l2path import DEFAULT_GRID, PATIENCE, choose_l2, held_out_rows


def _noisy(n: int = 300, seed: int = 0) -> Dataset:
    """Three classes, 20 features of which 5 informative, 10% of the labels flipped: a penalty matters."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=20, n_informative=5, n_redundant=5, n_classes=3,
                               flip_y=0.1, random_state=seed)
    X = X * np.linspace(0.5, 20, 20) + np.linspace(-3, 3, 20)  # scales and offsets for the standardisation
    return Dataset(name="noisy", train=Split(torch.tensor(X, dtype=torch.float32), torch.tensor(y)), test=None,
                   classes=["a", "b", "c"])


def test_exact_path_matches_scikit_learn_at_every_penalty():
    """Each point's validation log loss is that of scikit-learn's converged model at the same penalty
    (C = 1 / (l2 * n_fit)) on the fitting rows, standardised with their own statistics."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    data = _noisy()
    choice = choose_l2(data, make_config())
    fit, val = held_out_rows(data.train.y, 0.2, seed=0)
    X, y = data.train.X.double().numpy(), data.train.y.numpy()
    mean, std = X[fit].mean(0), X[fit].std(0)
    Z = (X - mean) / std
    losses = []
    for point in choice.points:
        ref = LogisticRegression(C=1 / (point.l2 * len(fit)), tol=1e-10, max_iter=10000).fit(Z[fit], y[fit])
        losses.append(log_loss(y[val], ref.predict_proba(Z[val]), labels=[0, 1, 2]))
        assert point.val_loss == pytest.approx(losses[-1], rel=1e-4, abs=1e-6), point
    assert choice.path_l2 == choice.points[int(np.argmin(losses))].l2
    assert choice.l2 == pytest.approx(choice.path_l2 * len(fit) / len(y))
    assert (choice.n_fit, choice.n_val) == (len(fit), len(val))


def test_path_runs_strongest_first_and_stops_after_patience():
    choice = choose_l2(_noisy(), make_config())
    l2s = [p.l2 for p in choice.points]
    assert l2s == list(DEFAULT_GRID[: len(l2s)])
    if len(l2s) < len(DEFAULT_GRID):  # stopped early: the last PATIENCE penalties improved neither score
        points = choice.points
        improved = [p.val_loss < min(q.val_loss for q in points[:i]) or
                    p.val_accuracy > max(q.val_accuracy for q in points[:i]) for i, p in enumerate(points) if i]
        assert not any(improved[-PATIENCE:]) and (len(improved) == PATIENCE or improved[-PATIENCE - 1])


def test_minibatch_path_on_large_problems(monkeypatch):
    """Above EXACT_PATH_VALUES the path uses the run's own optimizer, a share of its epochs per penalty,
    and still lands near the exact path's best validation loss."""
    data = _noisy(1000)
    exact = choose_l2(data, make_config())
    monkeypatch.setattr(l2path, "EXACT_PATH_VALUES", 0)
    config = make_config()
    sgd = choose_l2(data, config)
    from softreg.training.plan import make_plan

    full = make_plan(with_settings(config, l2=0.0), sgd.n_fit, 20)
    assert {p.epochs for p in sgd.points} == {math.ceil(full.epochs * l2path.STAGE_SHARE)}
    exact_at = {p.l2: p.val_loss for p in exact.points}
    best = min(exact_at.values())
    assert sgd.path_l2 in exact_at and exact_at[sgd.path_l2] <= best * 1.05


def test_train_with_l2_auto_is_the_refit_with_the_chosen_penalty():
    """A small problem's path is exact, and so is its refit: the converged optimum of the chosen
    penalty on every row (scikit-learn's at C = 1 / (l2 * n)), whatever the recipe's own solver."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    data = _noisy()
    auto = train(data, make_config(l2="auto"))
    chosen = auto.metrics["l2"]
    assert auto.config.optim.l2 == chosen == auto.metrics["l2_auto"]["l2"] and auto.metrics["l2_auto"]["exact"]
    assert auto.config.optim.optimizer == "lbfgs" and auto.config.optim.dtype == "float64"
    plain = train(data, make_config(l2=chosen, epochs=l2path.EXACT_REFIT_EPOCHS, **l2path.EXACT_SETTINGS))
    for a, b in zip(auto.model.state_dict().values(), plain.model.state_dict().values()):
        assert torch.equal(a, b)
    X, y = data.train.X.double().numpy(), data.train.y.numpy()
    X = (X - X.mean(0)) / X.std(0)
    reference = LogisticRegression(C=1 / (chosen * len(y)), tol=1e-10, max_iter=10_000).fit(X, y)
    assert auto.metrics["train_loss"] == pytest.approx(log_loss(y, reference.predict_proba(X)), rel=1e-5)
    # a large problem's path is approximate (minibatch stages): its refit keeps the recipe
    approximate = l2path.L2Choice(l2=1e-3, path_l2=1e-3, exact=False)
    assert l2path.refit_config(make_config(), approximate) == with_settings(make_config(), l2=1e-3)


def test_cli_l2_auto_records_and_prints_the_choice(run_cli, idx_dir, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", "--data", idx_dir, "--l2", "AUTO", "--out", out)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert f"l2 auto: chose {metrics['l2']:.3g}" in stdout
    # the choice is printed before the plan, which states the penalty the refit trains with
    assert stdout.index("l2 auto: chose") < stdout.index("plan: ") and f"L2 {metrics['l2']:g}" in stdout
    assert metrics["l2_auto"]["exact"] and f"Epoch  1/{l2path.EXACT_REFIT_EPOCHS}  Cost" in stdout  # the refit's count
    assert metrics["l2_auto"]["points"][0]["l2"] == DEFAULT_GRID[0]
    assert json.dumps(metrics["l2"]) in json.dumps(config)  # the penalty trained with, not "auto"


@pytest.mark.parametrize("args, words", [
    (["--l2", "lots"], ["--l2", "auto", "'lots'"]),
    (["--l2", "-1"], ["--l2", "[0, 1e6]", "-1", "example: --l2 0.001"]),
    (["--l2", "auto", "--stream"], ["--l2 auto", "--stream"]),
])
def test_cli_l2_mistakes_exit_2(run_cli, idx_dir, tmp_path, args, words):
    code, _, err = run_cli("train", "--data", idx_dir, *args, "--out", tmp_path / "run")
    assert_user_error(code, err, *words)


def _points(losses, accuracies):
    return [l2path.PathPoint(10.0 ** -i, loss, acc, 1, 0.0) for i, (loss, acc) in enumerate(zip(losses, accuracies))]


def test_select_penalty_keeps_log_loss_unless_accuracy_is_clearly_better():
    """McNemar's z of the best accuracy over the log-loss choice decides: a handful of rows is noise,
    a consistent margin over many disagreements is not."""
    n = 4000
    base = torch.zeros(n, dtype=torch.bool)
    base[:2000] = True  # the log-loss choice (point 1) is right on half the rows
    small = base.clone()
    small[2000:2010] = True  # point 0: 10 more rows right, nothing else different: z = 10 / sqrt(10) = 3.2
    mixed = base.clone()
    mixed[2000:2100] = True
    mixed[:80] = False  # point 2: 100 gained, 80 lost: z = 20 / sqrt(180) = 1.5
    points = _points([0.9, 0.8, 0.85], [0.5025, 0.5, 0.505])
    index, by, z = l2path.select_penalty(points, [small, base, mixed])
    assert (index, by) == (1, "log loss") and z == pytest.approx(20 / math.sqrt(180))  # best accuracy is point 2
    index, by, z = l2path.select_penalty(points[:2], [small, base])
    assert (index, by) == (0, "accuracy") and z == pytest.approx(10 / math.sqrt(10))
    assert l2path.select_penalty(points[:2], [small, base], z_min=4.0)[:2] == (1, "log loss")
    # weights: the same disagreements weighed 4x give the same z (a scale), a single heavy row does not
    assert l2path.select_penalty(points[:2], [small, base], torch.full((n,), 4.0))[2] == pytest.approx(math.sqrt(10))
    heavy = torch.ones(n)
    heavy[2000] = 100.0
    assert l2path.select_penalty(points[:2], [small, base], heavy)[1] == "log loss"
    # agreement, ties in accuracy (the lower loss wins) and a diverged point are no choice at all
    tied = _points([0.5, 0.4, math.inf], [0.9, 0.9, 0.95])
    assert l2path.select_penalty(tied, [base, base, small]) == (1, "log loss", 0.0)


def test_path_choice_is_recorded_and_described():
    """On the noisy table the choice follows the rule, and the line says what decided it."""
    choice = choose_l2(_noisy(), make_config())
    losses = [p.val_loss for p in choice.points]
    by_loss = choice.points[int(np.argmin(losses))]
    if choice.chosen_by == "log loss":
        assert choice.path_l2 == by_loss.l2 and choice.accuracy_z < l2path.ACCURACY_Z
    else:
        best = max(choice.points, key=lambda p: (p.val_accuracy, -p.val_loss))
        assert choice.path_l2 == best.l2 and choice.accuracy_z >= l2path.ACCURACY_Z
    line = l2path.describe_choice(choice.to_dict())
    assert line.startswith(f"l2 auto: chose {choice.l2:.3g} (") and f"{choice.n_val} held-out rows" in line
    forced = l2path.describe_choice(dict(choice.to_dict(), chosen_by="accuracy", accuracy_z=3.04))
    assert "validation accuracy" in forced and "(z 3.0)" in forced
