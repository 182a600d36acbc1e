"""Training: the configuration, seeding, device choice and the loop (train_step, run_epoch, fit).

The whole training split is preprocessed once into one float32 tensor on the
device; minibatches are gathered by index from a per-epoch permutation, so no
per-sample Python runs inside the loop.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import numpy as np
import torch

from softreg.data.base import Dataset, Split
from softreg.errors import UserInputError
from softreg.models import (
    ACTIVATIONS,
    INITS,
    MODELS,
    PREPROCESS,
    Classifier,
    ModelConfig,
    Preprocess,
    build_model,
    loss_from_scores,
    scores_to_labels,
)

OPTIMIZERS = ("sgd", "adam", "lbfgs")


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved in the run's config.json."""

    model: str = "softmax"  # softmax | logistic | mlp
    hidden: list[int] = field(default_factory=lambda: [100])  # mlp: units per hidden layer
    activation: str = "relu"  # mlp: sigmoid | tanh | relu
    bias: bool = True  # False drops every bias term (the lessons' frozen shared bias)
    init: str = "default"  # default (PyTorch's uniform init) | zeros
    preprocess: str = "auto"  # auto: pixels for images, standardize for tables, none for lesson tables
    epochs: int = 20  # passes over the training set
    batch_size: int = 128  # samples per update; 0 = the whole training set
    lr: float = 0.1  # learning rate
    optimizer: str = "sgd"  # sgd | adam | lbfgs (full batch)
    momentum: float = 0.9  # sgd only
    l2: float = 0.0  # adds l2/2 * ||W||^2 (weights, not biases) to the mean cost
    shuffle: bool = True  # new sample order every epoch
    drop_last: bool = False  # skip the last, smaller minibatch
    seed: int = 0  # fixes Python, NumPy and torch (CPU and CUDA) random numbers
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N
    log_every: int = 0  # print the cost every N epochs; 0 = about ten lines per run
    recipe: str = "default"  # the named defaults this config started from

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(
                f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        return cls(**values).validate()

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> "TrainConfig":
        """Raise UserInputError naming the first setting out of range."""

        def need(ok: bool, name: str, rule: str, fix: str) -> None:
            if not ok:
                value = getattr(self, name)
                raise UserInputError(f"{name} must be {rule}; got {value!r}. {fix}")

        need(self.model in MODELS, "model", f"one of {', '.join(MODELS)}", "Example: --model softmax.")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}", "Example: --optimizer sgd.")
        need(self.activation in ACTIVATIONS, "activation", f"one of {', '.join(ACTIVATIONS)}", "Example: --activation relu.")
        need(self.init in INITS, "init", f"one of {', '.join(INITS)}", "Example: --init default.")
        need(self.preprocess in PREPROCESS, "preprocess", f"one of {', '.join(PREPROCESS)}", "Example: --preprocess auto.")
        need(_is_real(self.lr) and self.lr > 0, "lr", "a positive finite number", "Example: --lr 0.1.")
        need(_is_int(self.epochs) and self.epochs >= 1, "epochs", "an integer >= 1", "Example: --epochs 10.")
        need(_is_int(self.batch_size) and self.batch_size >= 0, "batch_size", "an integer >= 0 (0 = whole set)", "Example: --batch-size 100.")
        need(_is_real(self.momentum) and 0 <= self.momentum < 1, "momentum", "in [0, 1)", "Example: --momentum 0.9.")
        need(_is_real(self.l2) and self.l2 >= 0, "l2", "a finite number >= 0", "Example: --l2 0.0001.")
        need(_is_int(self.log_every) and self.log_every >= 0, "log_every", "an integer >= 0", "Example: --log-every 100.")
        need(_is_int(self.seed) and self.seed >= 0, "seed", "an integer >= 0", "Example: --seed 0.")
        need(
            isinstance(self.hidden, (list, tuple)) and len(self.hidden) > 0 and all(_is_int(h) and h >= 1 for h in self.hidden),
            "hidden", "a list of positive layer sizes", "Example: --hidden 100,100.",
        )
        self.hidden = [int(h) for h in self.hidden]
        need(isinstance(self.device, str), "device", "a device name", "Example: --device cpu.")
        return self


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# Named defaults. Values given explicitly (CLI options, keyword arguments) override them.
RECIPES: dict[str, dict] = {
    # General use: minibatch SGD with momentum.
    "default": {},
    # The lessons' MNIST settings: seed 777, batch 100, shuffle, drop_last, plain SGD lr 0.1, 15 epochs.
    "lesson": dict(seed=777, batch_size=100, shuffle=True, drop_last=True, optimizer="sgd",
                   lr=0.1, momentum=0.0, epochs=15, log_every=1),
    # The lessons' small tables: full-batch plain SGD, lr 0.1, 1000 updates, raw features.
    "lesson-table": dict(batch_size=0, optimizer="sgd", lr=0.1, momentum=0.0, epochs=1000,
                         preprocess="none", log_every=100),
}


def make_config(recipe: str | None = None, data_name: str | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from a recipe plus explicit settings (None values are ignored).

    Without a recipe, the lessons' tables (toy, toy-binary, xor) get ``lesson-table``
    and everything else ``default``.
    """
    if recipe is None:
        recipe = "lesson-table" if data_name in ("toy", "toy-binary", "xor") else "default"
    if recipe not in RECIPES:
        raise UserInputError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    values = {**RECIPES[recipe], "recipe": recipe}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)


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
    """One row per epoch: the mean minibatch cost, running accuracy and elapsed seconds."""

    rows: list[dict] = field(default_factory=list)

    def append(self, **row) -> None:
        self.rows.append(row)

    @property
    def avg_cost(self) -> list[float]:
        return [r["avg_cost"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def l2_penalty(net: torch.nn.Module, l2: float) -> torch.Tensor | float:
    """l2/2 times the squared norm of every weight matrix (biases are not penalised)."""
    if l2 == 0:
        return 0.0
    return 0.5 * l2 * sum((p * p).sum() for name, p in net.named_parameters() if name.endswith("weight"))


def train_step(net, optimizer, xb, yb, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One update on a minibatch; returns the (detached) cost and the number of correct predictions."""
    scores = net(xb)
    cost = loss_from_scores(scores, yb)
    objective = cost + l2_penalty(net, l2)
    optimizer.zero_grad(set_to_none=True)
    objective.backward()
    optimizer.step()
    return cost.detach(), (scores_to_labels(scores.detach()) == yb).sum()


def lbfgs_step(net, optimizer, X, y, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One L-BFGS step (several function evaluations) on the full batch."""
    first: dict = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        scores = net(X)
        cost = loss_from_scores(scores, y)
        if not first:
            first["cost"] = cost.detach()
            first["correct"] = (scores_to_labels(scores.detach()) == y).sum()
        objective = cost + l2_penalty(net, l2)
        objective.backward()
        return objective

    optimizer.step(closure)
    return first["cost"], first["correct"]


def run_epoch(net, optimizer, X, y, config: TrainConfig) -> tuple[float, float]:
    """One pass over (X, y); returns (mean minibatch cost, running accuracy)."""
    n = X.shape[0]
    if config.optimizer == "lbfgs":
        cost, correct = lbfgs_step(net, optimizer, X, y, config.l2)
        return float(cost), float(correct) / n
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
        else:
            idx = order[start:stop]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
        cost, correct = train_step(net, optimizer, xb, yb, config.l2)
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


EpochCallback = Callable[[dict], None]


def fit(
    model: Classifier,
    data: Dataset,
    config: TrainConfig,
    *,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` in place on ``data.train``; returns the per-epoch History.

    The random draws follow the seed set by the caller (see ``train``).
    """
    device = resolve_device(config.device)
    model.to(device)
    n = len(data.train)
    if config.drop_last and config.batch_size > n:
        raise UserInputError(
            f"batch size {config.batch_size} with drop_last leaves no full batch of the {n} "
            "training samples; lower --batch-size or drop --drop-last."
        )
    with torch.no_grad():
        X = model.preprocess(data.train.X.to(device))  # (N, F) float32, computed once
    y = data.train.y.to(device)
    net = model.net
    net.train()
    optimizer = make_optimizer(net, config)
    history = History()
    start = time.perf_counter()
    bar = _progress_bar(config.epochs) if progress else None
    try:
        for epoch in range(1, config.epochs + 1):
            avg_cost, accuracy = run_epoch(net, optimizer, X, y, config)
            if not math.isfinite(avg_cost):
                raise UserInputError(
                    f"training diverged at epoch {epoch} (cost {avg_cost}); lower --lr "
                    f"(now {config.lr}) or standardize the features."
                )
            row = dict(epoch=epoch, avg_cost=avg_cost, accuracy=accuracy,
                       seconds=time.perf_counter() - start)
            history.append(**row)
            if on_epoch is not None:
                on_epoch(row)
            if bar is not None:
                bar[0].update(bar[1], advance=1, description=f"cost {avg_cost:.4f}")
    finally:
        if bar is not None:
            bar[0].stop()
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
    model_config = model_config_for(data, config)
    return Classifier(build_model(model_config), preprocess, data.n_classes)


def model_config_for(data: Dataset, config: TrainConfig) -> ModelConfig:
    return ModelConfig(kind=config.model, n_features=data.n_features, n_classes=data.n_classes,
                       hidden=list(config.hidden), activation=config.activation,
                       bias=config.bias, init=config.init)


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
    """Seed, build the classifier, fit it and score the final model on every split."""
    from softreg.evaluate import evaluate

    data.validate()
    config.validate()
    seed_everything(config.seed)
    model = build_classifier(data, config)
    history = fit(model, data, config, on_epoch=on_epoch, progress=progress)
    metrics: dict = {"train_seconds": history.rows[-1]["seconds"], "epochs": len(history)}
    for split_name, split in (("train", data.train), ("test", data.test)):
        if split is not None:
            scores = evaluate(model, split)
            metrics[f"{split_name}_loss"] = scores["loss"]
            metrics[f"{split_name}_accuracy"] = scores["accuracy"]
    return TrainResult(model, history, metrics, config)


__all__ = [
    "TrainConfig", "RECIPES", "make_config", "resolve_device", "seed_everything", "epoch_order",
    "History", "train_step", "run_epoch", "fit", "train", "build_classifier", "TrainResult", "Split",
]
