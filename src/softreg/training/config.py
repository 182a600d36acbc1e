"""Training settings as nested dataclasses (model, optimisation, stopping, data), and the runtime
settings that do not change the result (device, threads, logging, checkpoints).

Every field's type, allowed values, default and help are declared once, in softreg.settings;
the dataclasses take their defaults from there and ``validate`` checks each field against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from softreg import settings as S
from softreg.errors import UserInputError
from softreg.settings import RECIPES


def _declared(name: str):
    """A dataclass field with the declared default of setting ``name``."""
    value = S.default(name)
    return field(default_factory=lambda: S.default(name)) if isinstance(value, list) else field(default=value)

@dataclass
class ModelSpec:
    """The network to build; the sizes of its input and output come from the data."""

    kind: str = _declared("model")
    hidden: list[int] = _declared("hidden")  # mlp only
    activation: str = _declared("activation")  # mlp only
    bias: bool = _declared("bias")  # False drops every bias term (the lessons' frozen shared bias)
    init: str = _declared("init")


@dataclass
class OptimSpec:
    """How the weights are fitted."""

    optimizer: str = _declared("optimizer")
    lr: float = _declared("lr")
    momentum: float = _declared("momentum")  # sgd only
    l2: float | str = _declared("l2")  # weights, not biases; "auto": softreg.training.l2path
    l1: float = _declared("l1")  # applied as a proximal (soft-threshold) step after each update
    schedule: str = _declared("schedule")
    average: float = _declared("average")
    epochs: int | None = _declared("epochs")  # None: about 700 updates (5..100 epochs)
    batch_size: int | None = _declared("batch_size")  # 0: all rows; None: n/50 as 2^k in [16, 512]
    shuffle: bool = _declared("shuffle")
    drop_last: bool = _declared("drop_last")
    dtype: str = _declared("dtype")  # float64: the lessons' tables come out the same on every CPU


@dataclass
class StopSpec:
    """When training ends before its last epoch."""

    validation_fraction: float = _declared("validation_fraction")
    early_stopping: bool = _declared("early_stopping")
    patience: int = _declared("patience")
    tol: float = _declared("tol")
    stall_stop: bool = _declared("stall_stop")


@dataclass
class DataSpec:
    """How features are prepared; fitted on the training split and stored with the model (how the data
    is read: softreg.data.DataSource)."""

    preprocess: str = _declared("preprocess")


@dataclass
class TrainConfig:
    """Everything that decides a training run's result; saved in the run's config.json."""

    model: ModelSpec = field(default_factory=ModelSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    stop: StopSpec = field(default_factory=StopSpec)
    data: DataSpec = field(default_factory=DataSpec)
    seed: int = _declared("seed")
    recipe: str = _declared("recipe")  # the named defaults this config started from

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
        """Raise UserInputError naming the first setting that breaks its declared rule (softreg.settings),
        then the rules between settings."""
        for setting in S.SETTINGS.values():
            if setting.section in SECTIONS:
                S.check(setting.name, getattr(getattr(self, setting.section), setting.field))
            elif setting.section == "config":
                S.check(setting.name, getattr(self, setting.field))
        o, s = self.optim, self.stop
        self.model.hidden = [int(h) for h in self.model.hidden]
        if o.l1 > 0 and o.optimizer == "lbfgs":
            raise UserInputError(f"l1 must be 0 with optimizer lbfgs (L1 is not smooth); got {o.l1!r}. "
                                 "Use optimizer sgd or adam with l1.")
        if s.early_stopping and s.validation_fraction <= 0:
            raise UserInputError("early_stopping needs a validation split; got validation_fraction 0. "
                                 "Add validation_fraction=0.1.")
        return self


SECTIONS = {"model": ModelSpec, "optim": OptimSpec, "stop": StopSpec, "data": DataSpec}
# every flat setting name (as the command line and make_config spell it) -> (section, field)
FLAT = {s.name: (s.section, s.field) for s in S.SETTINGS.values() if s.section in SECTIONS}


@dataclass
class Runtime:
    """Settings that change where and how visibly training runs, never its result."""

    device: str = _declared("device")
    threads: int = _declared("threads")
    log_every: int = _declared("log_every")
    checkpoint_every: int = _declared("checkpoint_every")
    checkpoint_seconds: float = _declared("checkpoint_seconds")

    def validate(self) -> "Runtime":
        for f in fields(self):
            S.check(f.name, getattr(self, f.name))
        return self


def _reject_unknown(values: dict, kind: type, what: str) -> None:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserInputError(f"unknown {what}(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}.")


from softreg.data.names import LESSON_TABLES  # noqa: E402  (the lessons' tables get their own recipe)


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
