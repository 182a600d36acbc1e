"""Training: seeding, device choice and the loop (train_step, run_epoch, fit, train).

The whole training split is preprocessed once into one float32 tensor on the
device; minibatches are gathered by index from a per-epoch permutation, so no
per-sample Python runs inside the loop. Linear models take a fused step (the
gradient in closed form, no autograd graph); MLPs use autograd.
"""

from __future__ import annotations

import copy
import math
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from softreg.config import RECIPES, TrainConfig, make_config
from softreg.data.base import Dataset, Split
from softreg.errors import UserInputError
from softreg.evaluate import evaluate
from softreg.models import (
    Classifier,
    LogisticRegression,
    ModelConfig,
    Preprocess,
    SoftmaxRegression,
    build_model,
    loss_from_scores,
    scores_to_labels,
)

EpochCallback = Callable[[dict], "bool | None"]
DIVERGED = 1e6  # a mean cross-entropy this large means the updates blew up (uniform guessing costs log C)


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else CPU; a named device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(
                f"device {name!r} is not available: this PyTorch sees no CUDA GPU; use --device cpu or auto."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserInputError(
                f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s) found; use cuda:0."
            )
        return device
    raise UserInputError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N.")


def seed_everything(seed: int) -> None:
    """Fix Python's, NumPy's and torch's random numbers (torch seeds CUDA too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_order(n: int, shuffle: bool) -> torch.Tensor | None:
    """This epoch's sample order, drawn from torch's global RNG; None keeps the stored order.

    The draws mirror a ``DataLoader(shuffle=True)`` over a map-style dataset (one
    draw for the loader's base seed, one to seed the sampler's generator, then
    randperm), so a seeded run visits samples in the same order as the lessons'
    DataLoader loop.
    """
    if not shuffle:
        return None
    torch.empty((), dtype=torch.int64).random_()  # the loader's base seed, unused here
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def batch_slices(n: int, batch_size: int, drop_last: bool) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch; batch_size 0 means one batch of all n samples."""
    size = batch_size or n
    slices = [(start, min(start + size, n)) for start in range(0, n, size)]
    if drop_last and slices[-1][1] - slices[-1][0] < size:
        slices.pop()
    return slices


@dataclass
class History:
    """One row per epoch: mean minibatch cost, running accuracy, validation scores, seconds."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None  # the epoch whose weights were kept (early stopping)

    def append(self, **row) -> None:
        self.rows.append(row)

    @property
    def avg_cost(self) -> list[float]:
        return [r["avg_cost"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def _weights(net: torch.nn.Module) -> list[torch.Tensor]:
    """The parameters that penalties apply to: weight matrices, not biases."""
    return [p for name, p in net.named_parameters() if name.endswith("weight")]


def l2_penalty(net: torch.nn.Module, l2: float) -> torch.Tensor | float:
    """l2/2 times the squared norm of every weight matrix."""
    if l2 == 0:
        return 0.0
    return 0.5 * l2 * sum((w * w).sum() for w in _weights(net))


def _weighted_mean(losses: torch.Tensor, wb: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-sample losses; sample weights scale each term as if it were repeated."""
    return losses.mean() if wb is None else (losses * wb).mean()


def autograd_step(net, optimizer, xb, yb, wb, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """One update through autograd; returns the detached cost and the count of correct predictions."""
    scores = net(xb)
    cost = _weighted_mean(loss_from_scores(scores, yb, reduction="none"), wb)
    objective = cost + l2_penalty(net, config.l2)
    optimizer.zero_grad(set_to_none=True)
    objective.backward()
    optimizer.step()
    return cost.detach(), (scores_to_labels(scores.detach()) == yb).sum()


@torch.no_grad()
def linear_gradients(net, xb, yb, wb, l2: float):
    """Cost, correct count and closed-form gradients of a linear model on one batch (no autograd).

    For softmax regression, with P = softmax(X W^T + b) and Y the one-hot labels:
        dW = (P - Y)^T X / B,   db = sum over rows of (P - Y) / B
    and the same with sigmoid and one output for logistic regression. Tests
    check this against autograd through ``softreg.functional.cross_entropy``.
    The log-softmax here is torch's fused kernel: on minibatches of 100 it is
    ten times faster than the version built from primitives.

    Returns (cost, correct, [(parameter, gradient), ...]).
    """
    linear = net.linear
    B = xb.shape[0]
    # Scores are handled as (C, B). On real minibatches they are computed as W @ X^T, about
    # 20% faster on one CPU thread than X @ W^T (measured, BENCHMARKS.md); tiny batches keep
    # X @ W^T, so the lessons' small tables give autograd's float32 results to the last digit.
    if B >= 64:
        scores = torch.mm(linear.weight, xb.t())  # (C, F) @ (F, B) -> (C, B)
    else:
        scores = torch.mm(xb, linear.weight.t()).t()  # (B, C) computed, viewed as (C, B)
    if linear.bias is not None:
        scores += linear.bias.unsqueeze(1)
    if isinstance(net, LogisticRegression):
        z = scores[0]  # (B,)
        target = yb.to(z.dtype)
        losses = torch.nn.functional.softplus(z) - target * z  # -log P(y | z), stable
        residual = (torch.sigmoid(z) - target).unsqueeze(0)  # (1, B)
        correct = ((z >= 0).long() == yb).sum()
    else:
        logp = torch.log_softmax(scores, dim=0)  # (C, B)
        losses = -logp.gather(0, yb.unsqueeze(0)).squeeze(0)
        residual = logp.exp_()  # P, reusing logp's memory: (C, B)
        residual[yb, torch.arange(B, device=xb.device)] -= 1.0  # P - Y
        correct = (scores.argmax(dim=0) == yb).sum()
    cost = _weighted_mean(losses, wb)
    if wb is not None:
        residual.mul_(wb.unsqueeze(0))
    residual.div_(B)
    grad_w = residual @ xb  # (C, B) @ (B, F) -> (C, F)
    if l2:
        grad_w.add_(linear.weight, alpha=l2)
    grads = [(linear.weight, grad_w)]
    if linear.bias is not None:
        grads.append((linear.bias, residual.sum(dim=1)))
    return cost, correct, grads


@torch.no_grad()
def linear_step(net, optimizer, xb, yb, wb, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """One update of a linear model from its closed-form gradient."""
    cost, correct, grads = linear_gradients(net, xb, yb, wb, config.l2)
    apply_gradients(optimizer, grads)
    return cost, correct


def apply_gradients(optimizer: torch.optim.Optimizer, grads) -> None:
    """Update parameters from (parameter, gradient) pairs.

    Plain SGD (with momentum) is done here in place, the same arithmetic as
    ``torch.optim.SGD`` without its per-call overhead, which dominates on small
    minibatches; other optimizers get the gradients and take their own step.
    """
    if type(optimizer) is torch.optim.SGD:
        group = optimizer.param_groups[0]
        lr, momentum = group["lr"], group["momentum"]
        for param, grad in grads:
            if momentum:
                state = optimizer.state[param]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = grad.clone()
                else:
                    buf.mul_(momentum).add_(grad)
                grad = buf
            param.sub_(grad, alpha=lr)
        return
    for param, grad in grads:
        param.grad = grad
    optimizer.step()


def lbfgs_step(net, optimizer, X, y, w, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """One L-BFGS step (up to 20 function evaluations with a line search) on the full batch.

    Linear models evaluate cost and gradient in closed form; MLPs go through autograd.
    """
    first: dict = {}
    linear = isinstance(net, (SoftmaxRegression, LogisticRegression))

    def closure():
        optimizer.zero_grad(set_to_none=True)
        if linear:
            cost, correct, grads = linear_gradients(net, X, y, w, config.l2)
            for param, grad in grads:
                param.grad = grad
            with torch.no_grad():
                objective = cost + l2_penalty(net, config.l2)
        else:
            scores = net(X)
            cost = _weighted_mean(loss_from_scores(scores, y, reduction="none"), w)
            correct = (scores_to_labels(scores.detach()) == y).sum()
            objective = cost + l2_penalty(net, config.l2)
            objective.backward()
        first.setdefault("cost", cost.detach())
        first.setdefault("correct", correct)
        return objective

    optimizer.step(closure)
    return first["cost"], first["correct"]


@torch.no_grad()
def l1_prox(net: torch.nn.Module, threshold: float) -> None:
    """Soft-threshold the weights: the proximal step of an L1 penalty (exact zeros appear)."""
    for w in _weights(net):
        w.copy_(w.sign() * (w.abs() - threshold).clamp_(min=0))


def choose_step(net: torch.nn.Module):
    return linear_step if isinstance(net, (SoftmaxRegression, LogisticRegression)) else autograd_step


class WeightAverage:
    """Running mean of the parameters over the final updates (Polyak-Ruppert averaging).

    SGD's last iterate jitters around the optimum; the mean of the iterates sits
    closer to it. ``start`` is the update from which iterates are averaged.
    """

    def __init__(self, net: torch.nn.Module, start: int):
        self.net = net
        self.start = start
        self.k = 0
        self.count = 0
        self.mean = [p.detach().clone() for p in net.parameters()]

    @torch.no_grad()
    def update(self) -> None:
        self.k += 1
        if self.k < self.start:
            return
        self.count += 1
        for mean, p in zip(self.mean, self.net.parameters()):
            mean.lerp_(p, 1.0 / self.count)

    @torch.no_grad()
    def apply(self) -> None:
        if self.count:
            for mean, p in zip(self.mean, self.net.parameters()):
                p.copy_(mean)


def run_epoch(net, optimizer, X, y, w, config: TrainConfig, scheduler=None,
              average: WeightAverage | None = None) -> tuple[float, float]:
    """One pass over (X, y) with optional sample weights w; returns (mean minibatch cost, accuracy)."""
    n = X.shape[0]
    if config.optimizer == "lbfgs":
        cost, correct = lbfgs_step(net, optimizer, X, y, w, config)
        return float(cost), float(correct) / n
    step = choose_step(net)
    order = epoch_order(n, config.shuffle)
    slices = batch_slices(n, config.batch_size, config.drop_last)
    whole = len(slices) == 1 and slices[0] == (0, n)
    if order is not None and not whole:
        order = order.to(X.device)
    total_cost = torch.zeros((), device=X.device)
    total_correct = torch.zeros((), dtype=torch.int64, device=X.device)
    seen = 0
    for start, stop in slices:
        if whole or order is None:
            xb, yb = X[start:stop], y[start:stop]  # views: no copy
            wb = None if w is None else w[start:stop]
        else:
            idx = order[start:stop]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            wb = None if w is None else w.index_select(0, idx)
        cost, correct = step(net, optimizer, xb, yb, wb, config)
        if config.l1:
            l1_prox(net, optimizer.param_groups[0]["lr"] * config.l1)
        if scheduler is not None:
            scheduler.step()
        if average is not None:
            average.update()
        total_cost += cost
        total_correct += correct
        seen += stop - start
    # one synchronisation per epoch, not per batch
    return float(total_cost) / len(slices), float(total_correct) / seen


def make_optimizer(net: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = list(net.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    return torch.optim.LBFGS(params, lr=config.lr, max_iter=20, history_size=20,
                             line_search_fn="strong_wolfe")


class CosineSchedule:
    """Per-update learning rate: cosine decay from ``lr`` to 0 over the whole run.

    Set directly on the optimizer (the fused SGD update reads it from there too).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int):
        self.optimizer = optimizer
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.total = max(1, total_steps)
        self.k = 0

    def step(self) -> None:
        self.k = min(self.k + 1, self.total)
        factor = 0.5 * (1.0 + math.cos(math.pi * self.k / self.total))
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * factor


def make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int) -> CosineSchedule | None:
    if config.schedule == "constant" or config.optimizer == "lbfgs":
        return None
    return CosineSchedule(optimizer, config.epochs * steps_per_epoch)


@contextmanager
def cpu_threads(config: TrainConfig, device: torch.device, batch_size: int, n_features: int):
    """Minibatches run faster on one thread: splitting small matmuls costs more than it saves."""
    before = torch.get_num_threads()
    wanted = config.threads or (1 if batch_size * n_features <= THREAD_THRESHOLD else before)
    if device.type == "cpu" and wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


# Batch x features below which training runs on one thread. Measured on 2 cores (BENCHMARKS.md):
# one thread was faster for every minibatch size tried, and two threads were up to 40 times
# slower when another process kept a core busy; only full-batch work gets every thread.
THREAD_THRESHOLD = 4096 * 784


def fit(
    model: Classifier,
    data: Dataset,
    config: TrainConfig,
    *,
    validation: Split | None = None,
    sample_weight: torch.Tensor | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` in place on ``data.train``; returns the per-epoch History.

    validation : optional Split scored after every epoch (val_loss, val_accuracy);
        with ``config.early_stopping`` training stops once it stops improving and
        the best epoch's weights are restored.
    sample_weight : optional tensor of shape (n_train,) scaling each sample's cost.
    on_epoch : called with each epoch's row; returning True ends training after that epoch.

    The random draws follow the seed set by the caller (see ``train``).
    """
    device = resolve_device(config.device)
    model.to(device)
    n = len(data.train)
    config = config.resolved(n)
    if config.drop_last and config.batch_size > n:
        raise UserInputError(
            f"batch size {config.batch_size} with drop_last leaves no full batch of the {n} "
            "training samples; lower --batch-size or drop --drop-last."
        )
    with torch.no_grad():
        X = model.preprocess(data.train.X.to(device))  # (N, F) float32, computed once
        val = None if validation is None else Split(model.preprocess(validation.X.to(device)),
                                                     validation.y.to(device))
    y = data.train.y.to(device)
    w = sample_weight.to(device=device, dtype=X.dtype) if sample_weight is not None else None
    net = model.net
    net.train()
    optimizer = make_optimizer(net, config)
    steps = len(batch_slices(n, config.batch_size, config.drop_last))
    scheduler = make_scheduler(optimizer, config, steps)
    average = None
    if config.average > 0 and config.optimizer != "lbfgs" and not config.l1:  # a mean of sparse iterates is not sparse
        total = config.epochs * steps
        average = WeightAverage(net, start=total - int(config.average * total) + 1)
    history = History()
    best = (math.inf, None, 0)  # (val cost, weights, epoch)
    stale = 0
    bar = _progress_bar(config.epochs) if progress else None
    elapsed = 0.0  # the training loop alone: scoring, callbacks and the progress bar are not counted
    try:
        with cpu_threads(config, device, config.batch_size or n, X.shape[1]):
            for epoch in range(1, config.epochs + 1):
                tic = time.perf_counter()
                avg_cost, accuracy = run_epoch(net, optimizer, X, y, w, config, scheduler, average)
                elapsed += time.perf_counter() - tic  # run_epoch ends with a device sync
                if not math.isfinite(avg_cost) or avg_cost > DIVERGED:
                    raise UserInputError(
                        f"training diverged at epoch {epoch} (cost {avg_cost:.3g}); lower the learning "
                        f"rate (now {config.lr}) or standardize the features."
                    )
                row = dict(epoch=epoch, avg_cost=avg_cost, accuracy=accuracy)
                row["seconds"] = elapsed
                if val is not None:
                    scores = evaluate(net, val)
                    row["val_loss"], row["val_accuracy"] = scores["loss"], scores["accuracy"]
                history.append(**row)
                stop = on_epoch(row) is True if on_epoch is not None else False
                if bar is not None:
                    bar[0].update(bar[1], advance=1, description=f"cost {avg_cost:.4f}")
                if stop:
                    break
                if val is not None and config.early_stopping:
                    if row["val_loss"] < best[0] - config.tol:
                        best, stale = (row["val_loss"], copy.deepcopy(net.state_dict()), epoch), 0
                    else:
                        stale += 1
                        if stale >= config.patience:
                            break
    finally:
        if bar is not None:
            bar[0].stop()
    if average is not None:
        average.apply()
    if best[1] is not None:
        net.load_state_dict(best[1])
        history.best_epoch = best[2]
    net.eval()
    return history


def _progress_bar(total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), transient=True)
    task = progress.add_task("training", total=total)
    progress.start()
    return progress, task


def build_classifier(data: Dataset, config: TrainConfig) -> Classifier:
    """Fit the preprocessing on the training split and create the network (seed first)."""
    kind = config.preprocess
    if kind == "auto":
        if data.pixel_max:
            kind = "pixels"
        elif data.name in ("toy", "toy-binary", "xor"):
            kind = "none"
        else:
            kind = "standardize"
    preprocess = Preprocess.fit(kind, data.train.X, data.pixel_max)
    return Classifier(build_model(model_config_for(data, config)), preprocess, data.n_classes)


def model_config_for(data: Dataset, config: TrainConfig) -> ModelConfig:
    return ModelConfig(kind=config.model, n_features=data.n_features, n_classes=data.n_classes,
                       hidden=list(config.hidden), activation=config.activation,
                       bias=config.bias, init=config.init)


def split_validation(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Split | None]:
    """Hold out ``fraction`` of the training split (stratified when possible, fixed by ``seed``)."""
    if fraction <= 0:
        return data, None
    from sklearn.model_selection import train_test_split

    y = data.train.y.numpy()
    n_val = max(1, int(round(len(y) * fraction)))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() else None
    if len(y) - n_val < 1:
        raise UserInputError(f"validation fraction {fraction} leaves no training samples; lower it.")
    tr, va = train_test_split(np.arange(len(y)), test_size=n_val, random_state=seed, stratify=stratify)
    tr, va = torch.from_numpy(np.sort(tr)), torch.from_numpy(np.sort(va))
    kept = Dataset(**{**data.__dict__, "train": Split(data.train.X[tr], data.train.y[tr])})
    return kept, Split(data.train.X[va], data.train.y[va])


@dataclass
class TrainResult:
    model: Classifier
    history: History
    metrics: dict
    config: TrainConfig


def train(
    data: Dataset,
    config: TrainConfig,
    *,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
) -> TrainResult:
    """Seed, hold out a validation split if asked, build the classifier, fit it, and score it."""
    data.validate()
    config.validate()
    seed_everything(config.seed)
    data, validation = split_validation(data, config.validation_fraction, config.seed)
    config = config.resolved(len(data.train))
    model = build_classifier(data, config)
    history = fit(model, data, config, validation=validation, on_epoch=on_epoch, progress=progress)
    metrics: dict = {"train_seconds": history.rows[-1]["seconds"], "epochs": len(history)}
    if history.best_epoch is not None:
        metrics["best_epoch"] = history.best_epoch
    for split_name, split in (("train", data.train), ("val", validation), ("test", data.test)):
        if split is not None:
            scores = evaluate(model, split)
            metrics[f"{split_name}_loss"] = scores["loss"]
            metrics[f"{split_name}_accuracy"] = scores["accuracy"]
    return TrainResult(model, history, metrics, config)


__all__ = [
    "TrainConfig", "RECIPES", "make_config", "resolve_device", "seed_everything", "epoch_order",
    "batch_slices", "History", "autograd_step", "linear_step", "run_epoch", "fit", "train",
    "build_classifier", "split_validation", "TrainResult",
]
