"""Maximum likelihood inference for the linear heads: the exact optimum by Newton's method in float64,
the observed Fisher information in one chunked pass, its inverse by Cholesky, sandwich covariances.

The model: scores ``eta = x~ Theta^T`` for the free classes (x~ = [1, x]: the intercept first),
and a score of 0 for the reference class when there is one; ``p = softmax(eta)``. The logistic
head is the case of two classes with class 0 as the reference; statsmodels' ``MNLogit`` is the
case of any number of classes with a reference; the full softmax (no reference) is identifiable
only with a penalty. The objective is the weighted log-likelihood
``sum_i w_i log p_i[y_i]`` minus ``sum(w) / 2 * sum_j l2_j theta_j^2`` (no penalty on
intercepts), so it is the estimators' mean cost times ``sum(w)``.

For free classes k, l the information block is ``sum_i w_i p_ik (delta_kl - p_il) x~_i x~_i^T``,
accumulated a chunk of rows at a time (at most ``CHUNK_VALUES`` values in a chunk's products).
A parameter whose information is zero (a column that is 0 on every row), or that the pivoted
Cholesky factorisation of the diagonally scaled information finds dependent on others (a
duplicated or constant column), is not identified: it and the parameters it depends on get NaN
variances. When Newton's method does not settle (perfect or quasi-perfect separation: some
coefficients grow without bound), the parameters that were still moving get NaN variances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from softreg.errors import UserInputError

CHUNK_VALUES = 1 << 24  # rows x parameters in one chunk's products (128 MiB of float64)
PIVOT_TOL = 1e-10  # pivoted Cholesky: a residual variance below this share of a parameter's own is dependence
MAX_PARAMETERS = 40_000  # the information is (q, q) float64: 12.8 GB at this size, with its factor twice that
MAX_NEWTON = 100  # Newton iterations
STEP_TOL = 1e-10  # converged once no parameter moves by more than this (relative to 1 + |theta|)


@dataclass
class Problem:
    """The data and the model's shape. ``X``: (n, F) rows (dense tensor, CSR tensor or NumPy);
    ``y``: (n,) class codes in [0, n_classes); ``w``: (n,) frequency weights or None; ``free``:
    the classes with their own parameters; ``reference``: the class whose scores are 0, or None;
    ``l2``: (F,) the penalty on each feature's weights (0 = none)."""

    X: object
    y: np.ndarray
    w: np.ndarray | None
    n_classes: int
    free: list[int]
    reference: int | None
    l2: np.ndarray

    @property
    def n_terms(self) -> int:
        return self.X.shape[1] + 1

    @property
    def n_parameters(self) -> int:
        return len(self.free) * self.n_terms


@dataclass
class Inference:
    """The optimum and its covariance, parameters ordered (free class, term), the intercept first."""

    theta: np.ndarray  # (K', p)
    cov: np.ndarray  # (K' p, K' p); NaN rows and columns for parameters not identified
    iterations: int
    gradient_norm: float  # max |gradient of the objective| at the end, per unit of weight
    converged: bool
    unidentified: list[int] = field(default_factory=list)  # flat parameter indices with NaN variance
    moving: list[int] = field(default_factory=list)  # parameters still growing when Newton stopped


def check_size(problem: Problem) -> None:
    q = problem.n_parameters
    if q > MAX_PARAMETERS:
        raise UserInputError(
            f"the coefficient table needs the inverse of a {q:,} x {q:,} information matrix "
            f"({8 * q * q / 1e9:.1f} GB in float64), more than the {MAX_PARAMETERS:,} parameters this limit allows; "
            "ask for a block with terms=[...] (--terms NAME,NAME on the command line): its covariance is "
            "then the diagonal approximation, labelled as such"
        )


def _chunks(problem: Problem, rows: int):
    """(x~ (m, p) float64 with the leading 1, codes (m,), weights (m,)) a chunk at a time."""
    X, n = problem.X, problem.X.shape[0]
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        part = X[start:stop]
        if isinstance(part, torch.Tensor):
            part = part.to_dense() if part.layout != torch.strided else part
            part = part.to(torch.float64)
        else:
            part = torch.as_tensor(np.asarray(part.todense() if hasattr(part, "todense") else part, dtype=np.float64))
        part = part.reshape(stop - start, -1)
        ones = torch.ones(stop - start, 1, dtype=torch.float64)
        y = torch.as_tensor(problem.y[start:stop], dtype=torch.int64)
        w = torch.ones(stop - start, dtype=torch.float64) if problem.w is None else \
            torch.as_tensor(problem.w[start:stop], dtype=torch.float64)
        yield torch.cat([ones, part], dim=1), y, w


def _scores(problem: Problem, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(m, C) scores: the free classes' x~ theta^T, 0 for the reference."""
    out = torch.zeros(x.shape[0], problem.n_classes, dtype=torch.float64)
    out[:, problem.free] = x @ theta.T
    return out


def evaluate(problem: Problem, theta: np.ndarray, information: bool = True, meat: bool = False):
    """One pass: (objective, gradient (K' p,), information (K' p, K' p) or None, meat or None).
    The meat is sum_i s_i s_i^T over the rows' score vectors s_i (weights as frequencies)."""
    K, p = len(problem.free), problem.n_terms
    q = K * p
    th = torch.as_tensor(theta, dtype=torch.float64)
    rows = max(1, CHUNK_VALUES // max(q, p * 8))
    value = 0.0
    grad = torch.zeros(K, p, dtype=torch.float64)
    info = torch.zeros(q, q, dtype=torch.float64) if information else None
    outer = torch.zeros(q, q, dtype=torch.float64) if meat else None
    free = torch.as_tensor(problem.free)
    total = 0.0
    for x, y, w in _chunks(problem, rows):
        logp = torch.log_softmax(_scores(problem, x, th), dim=1)  # (m, C)
        value += float((w * logp.gather(1, y[:, None])[:, 0]).sum())
        total += float(w.sum())
        mu = logp.exp()[:, free]  # (m, K')
        resid = (y[:, None] == free[None, :]).to(torch.float64) - mu  # (m, K')
        grad += (resid * w[:, None]).T @ x
        if information:
            root = (mu * w[:, None].sqrt())[:, :, None] * x[:, None, :]  # (m, K', p)
            info -= root.reshape(-1, q).T @ root.reshape(-1, q)
            for k in range(K):
                block = slice(k * p, (k + 1) * p)
                info[block, block] += (x * (w * mu[:, k])[:, None]).T @ x
        if meat:
            score = ((resid * w[:, None])[:, :, None] * x[:, None, :]).reshape(-1, q)  # (m, K' p)
            # frequency weights: a row of weight w stands for w rows, each with score s / w
            outer += (score / w[:, None].sqrt().clamp_min(1e-300)).T @ (score / w[:, None].sqrt().clamp_min(1e-300))
    penalty = np.concatenate([[0.0], np.asarray(problem.l2, dtype=np.float64)]) * total  # (p,)
    value -= 0.5 * float((penalty[None, :] * np.asarray(theta) ** 2).sum())
    g = grad.numpy() - penalty[None, :] * np.asarray(theta)
    out_info = None
    if information:
        out_info = info.numpy()
        out_info[np.diag_indices(q)] += np.tile(penalty, K)
    return value, g.reshape(-1), out_info, None if outer is None else outer.numpy(), total


def _identified(info: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(the parameters kept, in order; the unidentified ones and those they depend on)."""
    from scipy.linalg import lapack

    q = info.shape[0]
    diag = np.diag(info).copy()
    scale = np.abs(diag).max() if q else 1.0
    alive = np.flatnonzero(diag > 1e-14 * max(scale, 1e-300))
    if alive.size == 0:
        return alive, list(range(q))
    d = 1.0 / np.sqrt(diag[alive])
    scaled = info[np.ix_(alive, alive)] * d[:, None] * d[None, :]
    factor, piv, rank, _ = lapack.dpstrf(scaled, lower=1, tol=PIVOT_TOL)
    piv = piv - 1
    bad = set(range(q)) - set(alive.tolist())
    if rank < alive.size:
        kept_local, dep_local = np.sort(piv[:rank]), piv[rank:]
        core = scaled[np.ix_(kept_local, kept_local)]
        coupling = np.linalg.solve(core, scaled[np.ix_(kept_local, dep_local)])  # (rank, dependent)
        involved = kept_local[np.abs(coupling).max(axis=1) > 1e-6]
        bad |= set(alive[dep_local].tolist()) | set(alive[involved].tolist())
        keep = np.sort(alive[kept_local])
    else:
        keep = alive
    return keep, sorted(bad)


def _inverse(info: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The inverse of info on ``keep`` by Cholesky, NaN elsewhere: (q, q)."""
    import scipy.linalg

    q = info.shape[0]
    cov = np.full((q, q), np.nan)
    if keep.size:
        block = info[np.ix_(keep, keep)]
        factor = scipy.linalg.cho_factor(block, lower=True)
        cov[np.ix_(keep, keep)] = scipy.linalg.cho_solve(factor, np.eye(keep.size))
    return cov


def fit(problem: Problem, theta0: np.ndarray, cov_type: str = "nonrobust") -> Inference:
    """Newton's method from ``theta0`` (K', p) to the optimum, then the covariance there:
    ``nonrobust`` the inverse information, ``HC0`` the sandwich I^-1 M I^-1, ``HC1`` that times
    n / (n - q) with n the total weight."""
    import scipy.linalg

    check_size(problem)
    if cov_type not in ("nonrobust", "HC0", "HC1"):
        raise UserInputError(f"cov_type must be 'nonrobust', 'HC0' or 'HC1'; got {cov_type!r}")
    theta = np.array(theta0, dtype=np.float64).reshape(len(problem.free), problem.n_terms)
    value, g, info, _, total = evaluate(problem, theta)
    converged, iterations, step = False, 0, np.zeros_like(theta)
    for iterations in range(1, MAX_NEWTON + 1):
        keep, _ = _identified(info)
        step = np.zeros(theta.size)
        if keep.size:
            factor = scipy.linalg.cho_factor(info[np.ix_(keep, keep)], lower=True)
            step[keep] = scipy.linalg.cho_solve(factor, g[keep])
        step = step.reshape(theta.shape)
        t = 1.0
        for _ in range(40):  # halve until the objective does not fall
            trial = theta + t * step
            new_value, new_g, new_info, _, _ = evaluate(problem, trial)
            if new_value >= value - 1e-12 * abs(value):
                break
            t /= 2
        moved = np.abs(t * step).max() if step.size else 0.0
        theta, value, g, info = trial, new_value, new_g, new_info
        if np.all(np.abs(t * step) <= STEP_TOL * (1 + np.abs(theta))) or moved == 0.0:
            converged = True
            break
    keep, bad = _identified(info)
    moving: list[int] = []
    if not converged:
        last = np.abs(step).reshape(-1)
        moving = np.flatnonzero(last > 0.1 * last.max()).tolist() if last.max() > 0 else []
        keep = np.setdiff1d(keep, moving)
        bad = sorted(set(bad) | set(moving))
    cov = _inverse(info, keep)
    if cov_type != "nonrobust":
        _, _, _, meat, _ = evaluate(problem, theta, information=False, meat=True)
        cov = cov @ np.nan_to_num(meat) @ cov
        if cov_type == "HC1":
            cov = cov * total / max(total - theta.size, 1.0)
    cov[bad, :] = np.nan
    cov[:, bad] = np.nan
    return Inference(theta=theta, cov=cov, iterations=iterations, gradient_norm=float(np.abs(g).max() / max(total, 1.0)),
                     converged=converged, unidentified=bad, moving=moving)


def to_reference(theta: np.ndarray, cov: np.ndarray, reference: int) -> tuple[np.ndarray, np.ndarray]:
    """The full softmax (C, p) and its covariance as differences against class ``reference``:
    ((C - 1, p), ((C - 1) p, (C - 1) p)), by the delta method (a linear map)."""
    C, p = theta.shape
    diff = theta - theta[reference]
    c = cov.reshape(C, p, C, p)
    c = c - c[:, :, reference : reference + 1, :] - c[reference : reference + 1] \
        + c[reference : reference + 1, :, reference : reference + 1, :]
    others = [k for k in range(C) if k != reference]
    c = c[others][:, :, others]
    q = (C - 1) * p
    return diff[others], c.reshape(q, q)
