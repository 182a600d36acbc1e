"""softreg.training.lbfgs: the optimum of convex costs (against a linear solve and SciPy's
L-BFGS-B), a state that resumes bit for bit, and no torch.optim import."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.datasets import load_digits

from softreg.training.lbfgs import LBFGSMethod


def _quadratic(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = M @ M.T / n + 0.5 * torch.eye(n, dtype=torch.float64)  # condition number about 10
    b = torch.randn(n, generator=g, dtype=torch.float64)
    return A, b


def test_reaches_the_minimiser_of_a_quadratic():
    A, b = _quadratic()
    x = torch.zeros(30, dtype=torch.float64)
    method = LBFGSMethod([x], max_iter=200, tolerance_grad=1e-12, tolerance_change=0.0)

    def closure():
        x.grad = A @ x - b
        return float(0.5 * x @ A @ x - b @ x)

    for _ in range(5):
        method.step(closure)
    torch.testing.assert_close(x, torch.linalg.solve(A, b), rtol=1e-7, atol=1e-9)


def test_reaches_scipys_optimum_of_softmax_regression():
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:400] / 16.0)
    y = torch.tensor(y[:400])
    l2 = 1e-2
    W = torch.zeros(10, 64, dtype=torch.float64)
    b = torch.zeros(10, dtype=torch.float64)

    def cost(W, b):
        return torch.nn.functional.cross_entropy(X @ W.T + b, y) + 0.5 * l2 * (W**2).sum()

    def closure():
        with torch.enable_grad():
            Wg, bg = W.clone().requires_grad_(), b.clone().requires_grad_()
            value = cost(Wg, bg)
            W.grad, b.grad = torch.autograd.grad(value, [Wg, bg])
        return float(value)

    method = LBFGSMethod([W, b], max_iter=100)
    for _ in range(10):
        method.step(closure)

    def fun(theta):
        t = torch.tensor(theta, requires_grad=True)
        value = cost(t[:640].reshape(10, 64), t[640:])
        (grad,) = torch.autograd.grad(value, t)
        return float(value.detach()), grad.numpy()

    best = minimize(fun, np.zeros(650), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 5000})
    assert float(cost(W, b)) == pytest.approx(best.fun, rel=1e-7)


def test_a_saved_state_continues_bit_for_bit():
    A, b = _quadratic(seed=1)

    def run(x, method, steps):
        def closure():
            x.grad = A @ x - b
            return float(0.5 * x @ A @ x - b @ x)

        for _ in range(steps):
            method.step(closure)

    x = torch.ones(30, dtype=torch.float64)
    run(x, LBFGSMethod([x], max_iter=3), 6)
    y = torch.ones(30, dtype=torch.float64)
    first = LBFGSMethod([y], max_iter=3)
    run(y, first, 3)
    saved = first.state_dict()
    restored = LBFGSMethod([y], max_iter=3)
    restored.load_state_dict({"state": {0: {k: (v.clone() if isinstance(v, torch.Tensor) else v)
                                            for k, v in saved["state"][0].items()}}})
    run(y, restored, 3)
    assert torch.equal(x, y)


def test_feature_major_parameters_move_in_their_own_layout():
    W = torch.zeros(64, 3).t()  # (3, 64), strides (1, 3)
    target = torch.arange(192.0).reshape(3, 64)

    def closure():
        W.grad = (W - target).t().contiguous().t()  # the gradient in the weight's layout
        return float(0.5 * ((W - target) ** 2).sum())

    LBFGSMethod([W], max_iter=50).step(closure)
    torch.testing.assert_close(W, target)
    assert W.stride() == (1, 3)
