"""Training settings: the TrainConfig dataclass and the named recipes of defaults."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from softreg.errors import UserInputError
from softreg.models import ACTIVATIONS, INITS, MODELS, PREPROCESS

OPTIMIZERS = ("sgd", "adam", "lbfgs")
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved in the run's config.json."""

    model: str = "softmax"  # softmax | logistic | mlp
    hidden: list[int] = field(default_factory=lambda: [256])  # mlp: units per hidden layer
    activation: str = "relu"  # mlp: sigmoid | tanh | relu
    bias: bool = True  # False drops every bias term (the lessons' frozen shared bias)
    init: str = "default"  # default (PyTorch's uniform init) | zeros
    preprocess: str = "standardize"  # auto (pixels for images) | none | pixels | standardize
    epochs: int | None = None  # passes over the training set; None = about 700 updates (5..100 epochs)
    batch_size: int | None = None  # samples per update; 0 = whole set; None = n/50 rounded to 2^k in [16, 512]
    lr: float = 0.1  # learning rate
    optimizer: str = "sgd"  # sgd | adam | lbfgs (full batch)
    momentum: float = 0.9  # sgd only
    l2: float = 1e-3  # adds l2/2 * ||W||^2 (weights, not biases) to the mean cost
    l1: float = 0.0  # adds l1 * |W|_1, applied as a proximal (soft-threshold) step after each update
    schedule: str = "constant"  # learning rate over the run: constant | cosine (decays to 0 at the end)
    average: float = 0.75  # average the weights over this final share of the updates (0 = off)
    validation_fraction: float = 0.0  # share of the training split held out to score each epoch
    early_stopping: bool = False  # stop when the validation cost stops improving; keep the best epoch
    patience: int = 5  # epochs without improvement (by more than tol) before early stopping
    tol: float = 1e-4  # smallest validation-cost decrease that counts as improvement
    threads: int = 0  # CPU threads for training; 0 = chosen from the batch size
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

    def resolved(self, n_samples: int) -> "TrainConfig":
        """A copy with the automatic batch size and epoch count filled in for ``n_samples``.

        Measured on Fashion-MNIST and the digits (BENCHMARKS.md): a linear model
        trained with momentum SGD and weight averaging is at its best test
        accuracy after about 700 updates, with batches of about n/50 samples.
        """
        batch_size = self.batch_size
        if batch_size is None:
            batch_size = int(min(512, max(16, 2 ** round(math.log2(max(n_samples, 1) / 50)))))
        epochs = self.epochs
        if epochs is None:
            steps = math.ceil(n_samples / (batch_size or n_samples))
            epochs = int(min(100, max(5, math.ceil(700 / steps))))
        return replace(self, batch_size=batch_size, epochs=epochs)

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
        need(self.epochs is None or (_is_int(self.epochs) and self.epochs >= 1), "epochs", "an integer >= 1",
             "Example: --epochs 10.")
        need(self.batch_size is None or (_is_int(self.batch_size) and self.batch_size >= 0), "batch_size",
             "an integer >= 0 (0 = whole set)", "Example: --batch-size 100.")
        need(_is_real(self.momentum) and 0 <= self.momentum < 1, "momentum", "in [0, 1)", "Example: --momentum 0.9.")
        need(_is_real(self.l2) and self.l2 >= 0, "l2", "a finite number >= 0", "Example: --l2 0.0001.")
        need(_is_real(self.l1) and self.l1 >= 0, "l1", "a finite number >= 0", "Example: --l1 0.0001.")
        need(self.schedule in SCHEDULES, "schedule", f"one of {', '.join(SCHEDULES)}", "Example: --schedule cosine.")
        need(_is_real(self.average) and 0 <= self.average <= 1, "average", "in [0, 1]", "Example: --average 0.5.")
        need(_is_real(self.validation_fraction) and 0 <= self.validation_fraction < 1, "validation_fraction",
             "in [0, 1)", "Example: --validation-fraction 0.1.")
        need(not self.early_stopping or self.validation_fraction > 0, "early_stopping",
             "used with a validation split", "Add --validation-fraction 0.1.")
        need(_is_int(self.patience) and self.patience >= 1, "patience", "an integer >= 1", "Example: --patience 5.")
        need(_is_real(self.tol) and self.tol >= 0, "tol", "a finite number >= 0", "Example: --tol 0.0001.")
        need(_is_int(self.threads) and self.threads >= 0, "threads", "an integer >= 0 (0 = auto)", "Example: --threads 1.")
        need(not (self.l1 > 0 and self.optimizer == "lbfgs"), "l1", "0 with --optimizer lbfgs (L1 is not smooth)",
             "Use --optimizer sgd or adam with --l1.")
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
    # Linear models: momentum SGD on standardised features, L2 1e-3, weights averaged over the
    # last 75% of the updates; batch size and epochs scale with the data (TrainConfig.resolved).
    # Chosen by measurement on Fashion-MNIST and the digits: see BENCHMARKS.md.
    "default": {},
    # MLPs: Adam with a cosine decay; one hidden layer of 256 ReLU units unless --hidden says otherwise.
    "default-mlp": dict(optimizer="adam", lr=1e-3, batch_size=128, epochs=12, schedule="cosine",
                        average=0.0),
    # The lessons' MNIST settings: seed 777, batch 100, shuffle, drop_last, plain SGD lr 0.1,
    # 15 epochs, pixels scaled to [0, 1].
    "lesson": dict(seed=777, batch_size=100, shuffle=True, drop_last=True, optimizer="sgd",
                   lr=0.1, momentum=0.0, epochs=15, log_every=1, preprocess="pixels",
                   l2=0.0, average=0.0, schedule="constant"),
    # The lessons' small tables: full-batch plain SGD, lr 0.1, 1000 updates, raw features.
    "lesson-table": dict(batch_size=0, optimizer="sgd", lr=0.1, momentum=0.0, epochs=1000,
                         preprocess="none", l2=0.0, average=0.0, schedule="constant", log_every=100),
}

LESSON_TABLES = ("toy", "toy-binary", "xor")


def make_config(recipe: str | None = None, data_name: str | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from a recipe plus explicit settings (None values are ignored).

    Without a recipe, the lessons' tables (toy, toy-binary, xor) get ``lesson-table``,
    MLPs ``default-mlp`` and everything else ``default``.
    """
    if recipe is None:
        if data_name in LESSON_TABLES:
            recipe = "lesson-table"
        else:
            recipe = "default-mlp" if overrides.get("model") == "mlp" else "default"
    if recipe not in RECIPES:
        raise UserInputError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    values = {**RECIPES[recipe], "recipe": recipe}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)
