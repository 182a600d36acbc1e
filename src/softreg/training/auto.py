"""The estimators' automatic choices: which solver a fit uses, and minibatch SGD's learning rate.

Measured on this project's machine (BENCHMARKS.md, "Estimators"): on small problems full-batch
L-BFGS reaches the optimum of the penalised cost in a fraction of a second, where the averaged
SGD recipe stops 10-30% above it; from about ten thousand samples the averaged recipe reaches
the optimum's test accuracy many times sooner (Fashion-MNIST: under a second against minutes).
L-BFGS also keeps 2 x 20 vectors of the parameters' size, so wide models go to SGD.

SGD's step follows the data's scale and the batch size: lr = STEP * min(1, B / 512) / (lambda / K + l2),
with lambda the largest eigenvalue of E[[x, 1] [x, 1]^T] (estimated by power iteration on a
sample of rows), K the curvature factor of the head (the number of classes for softmax, 4 for
a logistic head: the cost's curvature at the start is lambda / K, and the L2 penalty adds l2)
and B the batch size (smaller batches are noisier and want smaller steps). Features scaled by
10 get a step 100 times smaller, so the recipe neither diverges on raw features nor crawls on
l2-normalised text; a strong penalty shortens the step as the cost's curvature grows with it.
"""

from __future__ import annotations

import math

import numpy as np

LBFGS_MAX_SAMPLES = 10_000  # "auto" uses L-BFGS below this many samples ...
LBFGS_MAX_PARAMETERS = 1_000_000  # ... and this many parameters (its history: 40 vectors of this size)
# lr = STEP * K / lambda * min(1, B / FULL_BATCH). Dense: standardised Fashion-MNIST's best at batch
# 512 (0.1 = 1.7 K / lambda) rounded down; sparse: the synthetic 20 newsgroups TF-IDF's best at
# batch 256 (10 = 0.53 K / lambda); 1.5 K / lambda diverged there. BENCHMARKS.md has the sweeps.
STEP = {"dense": 1.5, "sparse": 1.0}
FULL_BATCH = 512
PROBE_ROWS = 2048  # rows sampled to estimate lambda
POWER_STEPS = 30


def sparse_batch(n_samples: int, n_features: int, nnz: int) -> int:
    """The smallest batch for sparse rows: F / (2 x non-zeros per row) as a power of two, at most
    16384 and n/8. Each update also costs a few passes over the K x F weights whatever the batch;
    with 2^20 hashed features and a few hundred non-zeros per row, batches of n/50 would spend
    nearly all their time there (BENCHMARKS.md)."""
    per_row = max(1.0, nnz / max(1, n_samples))
    wanted = 2 ** int(round(math.log2(max(1.0, n_features / (2 * per_row)))))
    return int(max(16, min(wanted, 16384, max(16, n_samples // 8))))


def choose_optimizer(n_samples: int, n_parameters: int) -> str:
    """What optimizer='auto' means for a fit of this size: 'lbfgs' or 'sgd'."""
    if n_samples < LBFGS_MAX_SAMPLES and n_parameters <= LBFGS_MAX_PARAMETERS:
        return "lbfgs"
    return "sgd"


def curvature(X, seed: int = 0) -> float:
    """The largest eigenvalue of E[[x, 1] [x, 1]^T] over the rows of X (dense array or SciPy CSR),
    from up to PROBE_ROWS rows drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    if n > PROBE_ROWS:
        X = X[np.sort(rng.choice(n, PROBE_ROWS, replace=False))]
    m = X.shape[0]
    v = np.ones(X.shape[1] + 1) / np.sqrt(X.shape[1] + 1)
    value = 1.0
    for _ in range(POWER_STEPS):
        u = np.asarray(X @ v[:-1]).ravel() + v[-1]  # (m,): [x, 1] . v for each row
        w = np.append(np.asarray(X.T @ u).ravel(), u.sum()) / m
        value = float(np.linalg.norm(w))
        if value == 0.0:
            return 1.0
        v = w / value
    return value


def sgd_learning_rate(X, head_factor: float, batch_size: int, sparse: bool, seed: int = 0, l2: float = 0.0) -> float:
    """learning_rate='auto' for momentum SGD with mean-cost L2 penalty ``l2`` (module docstring)."""
    step = STEP["sparse" if sparse else "dense"] * min(1.0, batch_size / FULL_BATCH)
    return step / (curvature(X, seed) / head_factor + l2)
