"""The plan: a config and the data's size turned into the numbers training follows (batch size,
epochs, updates, averaging window, learning rate per update, threads), and the lines that say so."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from softreg.data.sources import steps_for
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.training.config import Runtime, TrainConfig

# Batch x features up to which minibatch training runs on one CPU thread. Measured on 2 cores
# (BENCHMARKS.md): one thread was faster for every minibatch size tried, and two threads were up
# to 40 times slower when another process kept a core busy; only full-batch work gets every thread.
THREAD_THRESHOLD = 4096 * 784
TARGET_UPDATES = 700  # the default recipe's budget: about this many updates (see BENCHMARKS.md)


@dataclass(frozen=True)
class Plan:
    """What one training run will do.

    n_samples : training rows (all processes together)
    batch_size : rows per update (all processes together); n_samples for full batch
    steps_per_epoch, epochs, total_steps : updates per pass, passes, and their product
    average_from : first update (1-based) whose weights enter the running mean; None = no averaging
    threads : CPU threads for the loop (0 = leave torch's setting)
    """

    n_samples: int
    n_features: int
    batch_size: int
    epochs: int
    steps_per_epoch: int
    average_from: int | None
    threads: int
    lr: float
    schedule: str

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict:
        """The numbers as a run's metrics.json records them (``Plan(**d)`` reads them back)."""
        return asdict(self)

    @property
    def full_batch(self) -> bool:
        return self.batch_size >= self.n_samples

    def lr_at(self, step: int) -> float:
        """Learning rate of update ``step`` (0-based): constant, or a cosine decay that reaches
        0 after the last update."""
        if self.schedule == "constant":
            return self.lr
        done = min(step + 1, self.total_steps) / max(1, self.total_steps)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * done))


def auto_batch_size(n_samples: int) -> int:
    """n/50 rounded to a power of two in [16, 512]: measured on Fashion-MNIST and the digits."""
    return int(min(512, max(16, 2 ** round(math.log2(max(n_samples, 1) / 50)))))


def make_plan(config: TrainConfig, n_samples: int, n_features: int, runtime: Runtime | None = None,
              device_type: str = "cpu") -> Plan:
    """Resolve the automatic settings of ``config`` for ``n_samples`` training rows."""
    runtime = runtime or Runtime()
    o = config.optim
    if n_samples < 1:
        raise UserInputError("the training split is empty; give at least one sample.")
    if o.optimizer == "lbfgs":
        batch = n_samples  # L-BFGS takes full-batch steps
    elif o.batch_size is None:
        batch = auto_batch_size(n_samples)
    else:
        batch = o.batch_size or n_samples
    batch = min(batch, n_samples) if not o.drop_last else batch
    if o.drop_last and batch > n_samples:
        raise UserInputError(
            f"batch size {batch} with drop_last leaves no full batch of the {n_samples} training "
            f"samples; lower {spell('batch_size')} or drop {spell('drop_last', True)}."
        )
    steps = steps_for(n_samples, batch, o.drop_last)
    epochs = o.epochs
    if epochs is None:
        epochs = int(min(100, max(5, math.ceil(TARGET_UPDATES / steps))))
    total = epochs * steps
    average_from = None
    if o.average > 0 and o.optimizer != "lbfgs" and not o.l1:  # a mean of sparse iterates is not sparse
        average_from = total - int(o.average * total) + 1
    threads = runtime.threads
    if not threads and device_type == "cpu" and batch * n_features <= THREAD_THRESHOLD:
        threads = 1
    return Plan(n_samples=n_samples, n_features=n_features, batch_size=batch, epochs=epochs,
                steps_per_epoch=steps, average_from=average_from, threads=threads, lr=o.lr,
                schedule=o.schedule if o.optimizer != "lbfgs" else "constant")


def describe(config: TrainConfig, plan: Plan, preprocess: str, device: str, world_size: int = 1) -> list[str]:
    """The plan as the command line prints it before training."""
    m, o = config.model, config.optim
    model = m.kind if m.kind != "mlp" else f"mlp {','.join(map(str, m.hidden))} {m.activation}"
    if o.optimizer == "sgd":
        method = f"SGD lr {o.lr:g}" + (f" momentum {o.momentum:g}" if o.momentum else "")
    elif o.optimizer == "adam":
        method = f"Adam lr {o.lr:g}"
    else:
        method = f"L-BFGS lr {o.lr:g} (full batch, up to 20 line-searched steps per epoch)"
    if plan.schedule == "cosine":
        method += " cosine decay"
    l2 = f"L2 {o.l2:g}" if o.l2 else ""  # "auto" is resolved before a plan is made
    penalty = ", ".join(p for p in (l2, f"L1 {o.l1:g}" if o.l1 else "") if p)
    batch = "all rows" if plan.full_batch else f"batch {plan.batch_size}"
    lines = [
        f"model: {model}{'' if m.bias else ' (no bias)'}  init {m.init}  features: {preprocess}"
        f"  {plan.n_features} in  dtype {o.dtype}",
        f"plan: {method}{', ' + penalty if penalty else ''}; {batch}, {plan.steps_per_epoch} updates per epoch"
        f" x {plan.epochs} epochs = {plan.total_steps} updates",
    ]
    extras = []
    if plan.average_from is not None:
        extras.append(f"weights averaged from update {plan.average_from}")
    if o.shuffle:
        extras.append("shuffled each epoch")
    if o.drop_last:
        extras.append("last partial batch dropped")
    extras.append(f"seed {config.seed}")
    where = device + (f" x {world_size} processes" if world_size > 1 else "")
    where += f", {plan.threads} thread{'s' if plan.threads != 1 else ''}" if plan.threads else ""
    extras.append(where)
    extras.append(f"recipe {config.recipe}")
    lines.append("      " + ", ".join(extras))
    return lines
