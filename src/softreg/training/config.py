"""Training settings as nested dataclasses (model, optimisation, data), the named recipes, and
the runtime settings that do not change the result (device, threads, logging, checkpoints)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from softreg.errors import UserInputError

MODELS = ("softmax", "logistic", "mlp")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("default", "zeros")
PREPROCESS = ("auto", "none", "pixels", "standardize", "scale")
IMPUTE = ("none", "mean", "median", "zero")
OPTIMIZERS = ("sgd", "adam", "lbfgs")
SCHEDULES = ("constant", "cosine")
DTYPES = ("float32", "float64")
MAX_SEED = 2**32 - 1  # NumPy's and scikit-learn's seeds are 32-bit (softreg.system.limits.SETTINGS)


@dataclass
class ModelSpec:
    """The network to build; the sizes of its input and output come from the data."""

    kind: str = "softmax"  # softmax | logistic | mlp
    hidden: list[int] = field(default_factory=lambda: [256])  # mlp only: units per hidden layer
    activation: str = "relu"  # mlp only: sigmoid | tanh | relu
    bias: bool = True  # False drops every bias term (the lessons' frozen shared bias)
    init: str = "default"  # default (PyTorch's uniform init) | zeros


@dataclass
class OptimSpec:
    """How the weights are fitted."""

    optimizer: str = "sgd"  # sgd | adam | lbfgs (full batch)
    lr: float = 0.1  # learning rate
    momentum: float = 0.9  # sgd only
    l2: float | str = 1e-3  # adds l2/2 * ||W||^2 (weights, not biases) to the mean cost; "auto": chosen on
    # a validation split by a regularisation path (softreg.training.l2path), then refitted on every row
    l1: float = 0.0  # adds l1 * |W|_1, applied as a proximal (soft-threshold) step after each update
    schedule: str = "constant"  # learning rate over the run: constant | cosine (to 0 at the end)
    average: float = 0.75  # average the weights over this final share of the updates (0 = off)
    epochs: int | None = None  # passes over the data; None = about 700 updates (5..100 epochs)
    batch_size: int | None = None  # samples per update; 0 = all; None = n/50 as 2^k in [16, 512]
    shuffle: bool = True  # new sample order every epoch
    drop_last: bool = False  # skip the last, smaller minibatch
    dtype: str = "float32"  # float32 | float64 (the lessons' tables: exact on every CPU)


@dataclass
class StopSpec:
    """When training ends before its last epoch."""

    validation_fraction: float = 0.0  # share of the training split held out to score each epoch
    early_stopping: bool = False  # stop when the validation cost stops improving; keep the best epoch
    patience: int = 5  # epochs without improvement (by more than tol) before stopping
    tol: float = 1e-4  # smallest cost decrease that counts as improvement
    stall_stop: bool = False  # also stop once the training cost stalls (patience, tol): the estimators' rule


@dataclass
class DataSpec:
    """How features are prepared; fitted on the training split and stored with the model."""

    preprocess: str = "standardize"  # auto (pixels for images) | none | pixels | standardize | scale
    impute: str = "none"  # missing table values: none (an error) | mean | median | zero


@dataclass
class TrainConfig:
    """Everything that decides a training run's result; saved in the run's config.json."""

    model: ModelSpec = field(default_factory=ModelSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    stop: StopSpec = field(default_factory=StopSpec)
    data: DataSpec = field(default_factory=DataSpec)
    seed: int = 0  # fixes the initial weights, the sample order and the validation split
    recipe: str = "default"  # the named defaults this config started from

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Rebuild from ``to_dict()`` output; unknown keys are an error."""
        if not isinstance(values, dict):
            raise UserInputError(f"training settings must be a mapping; got {type(values).__name__}.")
        _reject_unknown(values, cls, "training setting")
        sections = {}
        for name, kind in SECTIONS.items():
            part = values.get(name, {})
            if not isinstance(part, dict):
                raise UserInputError(f"training settings: {name} must be a mapping; got {part!r}.")
            _reject_unknown(part, kind, f"{name} setting")
            sections[name] = kind(**part)
        rest = {k: v for k, v in values.items() if k not in SECTIONS}
        return cls(**sections, **rest).validate()

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.model.kind != "mlp":  # settings a linear model does not use are not recorded
            del d["model"]["hidden"], d["model"]["activation"]
        return d

    def validate(self) -> "TrainConfig":
        """Raise UserInputError naming the first setting out of range."""
        m, o, s, d = self.model, self.optim, self.stop, self.data

        def need(ok: bool, name: str, value: object, rule: str, fix: str) -> None:
            if not ok:
                raise UserInputError(f"{name} must be {rule}; got {value!r}. {fix}")

        need(m.kind in MODELS, "model", m.kind, f"one of {', '.join(MODELS)}", "Example: --model softmax.")
        need(m.activation in ACTIVATIONS, "activation", m.activation, f"one of {', '.join(ACTIVATIONS)}",
             "Example: --activation relu.")
        need(m.init in INITS, "init", m.init, f"one of {', '.join(INITS)}", "Example: --init default.")
        need(isinstance(m.hidden, (list, tuple)) and len(m.hidden) > 0
             and all(_is_int(h) and 1 <= h for h in m.hidden),
             "hidden", m.hidden, "a list of positive layer sizes", "Example: --hidden 100,100.")
        m.hidden = [int(h) for h in m.hidden]
        need(isinstance(m.bias, bool), "bias", m.bias, "true or false", "Use --no-bias to drop biases.")
        need(o.optimizer in OPTIMIZERS, "optimizer", o.optimizer, f"one of {', '.join(OPTIMIZERS)}",
             "Example: --optimizer sgd.")
        need(_is_real(o.lr) and 0 < o.lr <= 1e6, "lr", o.lr, "a positive finite number up to 1e6",
             "Example: --lr 0.1.")
        need(_is_real(o.momentum) and 0 <= o.momentum < 1, "momentum", o.momentum, "in [0, 1)",
             "Example: --momentum 0.9.")
        need(o.l2 == "auto" or (_is_real(o.l2) and 0 <= o.l2 <= 1e6), "l2", o.l2, "a number in [0, 1e6] or auto",
             "Example: --l2 0.0001 or --l2 auto.")
        need(_is_real(o.l1) and 0 <= o.l1 <= 1e6, "l1", o.l1, "a number in [0, 1e6]", "Example: --l1 0.0001.")
        need(not (o.l1 > 0 and o.optimizer == "lbfgs"), "l1", o.l1,
             "0 with --optimizer lbfgs (L1 is not smooth)", "Use --optimizer sgd or adam with --l1.")
        need(o.schedule in SCHEDULES, "schedule", o.schedule, f"one of {', '.join(SCHEDULES)}",
             "Example: --schedule cosine.")
        need(_is_real(o.average) and 0 <= o.average <= 1, "average", o.average, "in [0, 1]",
             "Example: --average 0.5.")
        need(o.epochs is None or (_is_int(o.epochs) and 1 <= o.epochs <= 10**7), "epochs", o.epochs,
             "an integer from 1 to 10000000", "Example: --epochs 10.")
        need(o.batch_size is None or (_is_int(o.batch_size) and 0 <= o.batch_size <= 2**40),
             "batch_size", o.batch_size, "an integer >= 0 (0 = whole set)", "Example: --batch-size 100.")
        need(isinstance(o.shuffle, bool), "shuffle", o.shuffle, "true or false", "Use --shuffle or --no-shuffle.")
        need(isinstance(o.drop_last, bool), "drop_last", o.drop_last, "true or false", "Use --drop-last.")
        need(o.dtype in DTYPES, "dtype", o.dtype, f"one of {', '.join(DTYPES)}", "Example: float32.")
        need(_is_real(s.validation_fraction) and 0 <= s.validation_fraction < 1, "validation_fraction",
             s.validation_fraction, "in [0, 1)", "Example: --validation-fraction 0.1.")
        need(isinstance(s.early_stopping, bool), "early_stopping", s.early_stopping, "true or false",
             "Use --early-stopping.")
        need(not s.early_stopping or s.validation_fraction > 0, "early_stopping", s.early_stopping,
             "used with a validation split", "Add --validation-fraction 0.1.")
        need(_is_int(s.patience) and s.patience >= 1, "patience", s.patience, "an integer >= 1",
             "Example: --patience 5.")
        need(isinstance(s.stall_stop, bool), "stall_stop", s.stall_stop, "true or false", "")
        need(_is_real(s.tol) and s.tol >= 0, "tol", s.tol, "a finite number >= 0", "Example: --tol 0.0001.")
        need(d.preprocess in PREPROCESS, "preprocess", d.preprocess, f"one of {', '.join(PREPROCESS)}",
             "Example: --preprocess auto.")
        need(d.impute in IMPUTE, "impute", d.impute, f"one of {', '.join(IMPUTE)}", "Example: --impute mean.")
        need(_is_int(self.seed) and 0 <= self.seed <= MAX_SEED, "seed", self.seed,
             f"an integer from 0 to {MAX_SEED}", "Example: --seed 0.")
        need(isinstance(self.recipe, str) and self.recipe in RECIPES, "recipe", self.recipe,
             f"one of {', '.join(RECIPES)}", "Example: --recipe default.")
        return self


SECTIONS = {"model": ModelSpec, "optim": OptimSpec, "stop": StopSpec, "data": DataSpec}
# every flat setting name (as the command line and make_config spell it) -> (section, field)
FLAT = {f.name: (section, f.name) for section, kind in SECTIONS.items() for f in fields(kind)}
FLAT["model"] = ("model", "kind")
del FLAT["kind"]


@dataclass
class Runtime:
    """Settings that change where and how visibly training runs, never its result."""

    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N
    threads: int = 0  # CPU threads for training; 0 = chosen from the batch size
    log_every: int = 0  # report the cost every N epochs; 0 = about ten lines per run
    checkpoint_every: int = 0  # write a checkpoint every N epochs (0 = never)
    checkpoint_seconds: float = 0.0  # also write one whenever this many seconds passed (0 = never)

    def validate(self) -> "Runtime":
        if not isinstance(self.device, str) or not self.device:
            raise UserInputError(f"device must be a device name; got {self.device!r}. Example: --device cpu.")
        for name, top in (("threads", 4096), ("log_every", 10**7), ("checkpoint_every", 10**7)):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value <= top:
                flag = "--" + name.replace("_", "-")
                raise UserInputError(f"{name} must be an integer from 0 to {top}; got {value!r}. "
                                     f"Example: {flag} 1.")
        if not _is_real(self.checkpoint_seconds) or self.checkpoint_seconds < 0:
            raise UserInputError(f"checkpoint_seconds must be a finite number >= 0; got "
                                 f"{self.checkpoint_seconds!r}. Example: --checkpoint-seconds 600.")
        return self


def _reject_unknown(values: dict, kind: type, what: str) -> None:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserInputError(f"unknown {what}(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}.")


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# Named defaults, as flat settings. Values given explicitly (options, keyword arguments) override them.
RECIPES: dict[str, dict] = {
    # Linear models: momentum SGD on standardised features, L2 1e-3, weights averaged over the
    # last 75% of the updates; batch size and epochs scale with the data (see plan.py).
    # Chosen by measurement on Fashion-MNIST and the digits: see BENCHMARKS.md.
    "default": {},
    # MLPs: Adam with a cosine decay; one hidden layer of 256 ReLU units unless --hidden says otherwise.
    "default-mlp": dict(model="mlp", optimizer="adam", lr=1e-3, batch_size=128, epochs=12,
                        schedule="cosine", average=0.0),
    # The lessons' MNIST settings: seed 777, batch 100, shuffle, drop_last, plain SGD lr 0.1,
    # 15 epochs, pixels scaled to [0, 1].
    "lesson": dict(seed=777, batch_size=100, shuffle=True, drop_last=True, optimizer="sgd",
                   lr=0.1, momentum=0.0, epochs=15, preprocess="pixels", l2=0.0, average=0.0,
                   schedule="constant"),
    # The lessons' small tables: full-batch plain SGD, lr 0.1, 1000 updates, raw features, in
    # float64 so the lessons' figures come out the same on every CPU.
    "lesson-table": dict(batch_size=0, optimizer="sgd", lr=0.1, momentum=0.0, epochs=1000,
                         preprocess="none", l2=0.0, average=0.0, schedule="constant", dtype="float64"),
}

LESSON_TABLES = ("toy", "toy-binary", "xor")


def make_config(recipe: str | None = None, data_name: str | None = None, **settings) -> TrainConfig:
    """A TrainConfig from a recipe plus explicit flat settings (``lr=0.5``, ``hidden=[64]``);
    None values are ignored.

    Without a recipe, the lessons' tables (toy, toy-binary, xor) get ``lesson-table``,
    MLPs ``default-mlp`` and everything else ``default``.
    """
    if recipe is None:
        if data_name in LESSON_TABLES:
            recipe = "lesson-table"
        else:
            recipe = "default-mlp" if settings.get("model") == "mlp" else "default"
    if recipe not in RECIPES:
        raise UserInputError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    flat = {**RECIPES[recipe], **{k: v for k, v in settings.items() if v is not None}}
    return config_from_flat(flat, recipe)


def config_from_flat(flat: dict, recipe: str = "default") -> TrainConfig:
    """Place flat settings into their sections; an unknown name is an error."""
    config = TrainConfig(recipe=recipe)
    for name, value in flat.items():
        if name in ("seed", "recipe"):
            setattr(config, name, value)
        elif name in FLAT:
            section, key = FLAT[name]
            setattr(getattr(config, section), key, value)
        else:
            known = sorted([*FLAT, "seed"])
            raise UserInputError(f"unknown training setting {name!r}; known: {', '.join(known)}.")
    return config.validate()


def flat_settings(config: TrainConfig) -> dict:
    """The inverse of config_from_flat: every setting under its flat name."""
    flat = {name: getattr(getattr(config, section), key) for name, (section, key) in FLAT.items()}
    return {**flat, "seed": config.seed}


def with_settings(config: TrainConfig, **settings) -> TrainConfig:
    """A copy of ``config`` with some flat settings changed."""
    return config_from_flat({**flat_settings(config), **settings}, config.recipe)


__all__ = ["TrainConfig", "ModelSpec", "OptimSpec", "StopSpec", "DataSpec", "Runtime", "RECIPES",
           "LESSON_TABLES", "make_config", "config_from_flat", "flat_settings", "with_settings"]
