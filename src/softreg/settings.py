"""Every training setting declared once: name, section, type, allowed values, default, help.

The command line's options (their metavars, help and checks), ``TrainConfig``'s defaults and
validation, the run folder's schema, and the estimators' parameter constraints are all derived
from :data:`SETTINGS`, so a new optimizer or a new bound is one edit here. This module imports
nothing heavy (the command line's ``--help`` reads it without torch).

A setting's value is checked by ``check(name, value, shown)``: ``shown`` is how the caller
spells it, the parameter name for library users (``lr``) or the flag on the command line
(``--lr``), and the message names it, the rule, the value received and an example. Messages
anywhere in the library name parameters through ``spell``: ``stream=True`` for Python users,
``--stream`` while the command line runs (``flag_spelling``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from typing import Any, Iterator

from softreg.errors import UserInputError


# --------------------------------------------------------------------------- value kinds


@dataclass(frozen=True)
class Choice:
    """One of a few names."""

    choices: tuple[str, ...]

    def rule(self) -> str:
        return "one of " + ", ".join(self.choices)

    def ok(self, v: Any) -> bool:
        return isinstance(v, str) and v in self.choices


@dataclass(frozen=True)
class Number:
    """An integer (``integer=True``) or a finite real in [lo, hi], either end open."""

    lo: float
    hi: float
    integer: bool = False
    open_lo: bool = False
    open_hi: bool = False

    def rule(self) -> str:
        if self.integer:
            return f"an integer in [{self.lo}, {_number(self.hi)}]"
        if self.hi == math.inf:
            return f"a finite number {'>' if self.open_lo else '>='} {_number(self.lo)}"
        return (f"a number in {'(' if self.open_lo else '['}{_number(self.lo)}, {_number(self.hi)}"
                f"{')' if self.open_hi else ']'}")

    def ok(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if self.integer and not isinstance(v, int):
            return False
        if not self.integer and not math.isfinite(v):
            return False
        return (self.lo < v if self.open_lo else self.lo <= v) and (v < self.hi if self.open_hi else v <= self.hi)


@dataclass(frozen=True)
class Flag:
    """True or false."""

    def rule(self) -> str:
        return "true or false"

    def ok(self, v: Any) -> bool:
        return isinstance(v, bool)


@dataclass(frozen=True)
class Sizes:
    """A non-empty list of positive integers (layer sizes)."""

    hi: int = 100_000_000

    def rule(self) -> str:
        return "a list of positive layer sizes"

    def ok(self, v: Any) -> bool:
        return (isinstance(v, (list, tuple)) and len(v) > 0
                and all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= self.hi for h in v))


@dataclass(frozen=True)
class Text:
    """A non-empty string of at most ``max_len`` characters, without NUL."""

    max_len: int = 64

    def rule(self) -> str:
        return "one character" if self.max_len == 1 else f"a name of 1 to {self.max_len} characters"

    def ok(self, v: Any) -> bool:
        return isinstance(v, str) and 0 < len(v) <= self.max_len and "\x00" not in v


@dataclass(frozen=True)
class Names:
    """A list of column names (each a non-empty string)."""

    max_len: int = 100_000

    def rule(self) -> str:
        return "a list of column names"

    def ok(self, v: Any) -> bool:
        return (isinstance(v, (list, tuple)) and len(v) <= self.max_len
                and all(isinstance(n, str) and 0 < len(n) <= 1000 for n in v))


@dataclass(frozen=True)
class OrWord:
    """A value of ``kind``, or the word ``word`` (``l2="auto"``)."""

    kind: Any
    word: str

    def rule(self) -> str:
        return f"{self.kind.rule()} or {self.word}"

    def ok(self, v: Any) -> bool:
        return v == self.word or self.kind.ok(v)


@dataclass(frozen=True)
class Optional:
    """A value of ``kind``, or None (``meaning``: what None stands for)."""

    kind: Any
    meaning: str

    def rule(self) -> str:
        return f"{self.kind.rule()}, or unset ({self.meaning})"

    def ok(self, v: Any) -> bool:
        return v is None or self.kind.ok(v)


def _number(x: float) -> str:
    """1e6 rather than 1e+06; 2**40 rather than 1099511627776."""
    if isinstance(x, int) and x >= 2**20 and (x & (x - 1)) == 0:
        return f"2**{x.bit_length() - 1}"
    return f"{x:g}".replace("e+0", "e").replace("e+", "e") if isinstance(x, float) else str(x)


# --------------------------------------------------------------------------- the declaration


@dataclass(frozen=True)
class Setting:
    """One setting.

    section : where it lives: ``model``, ``optim``, ``stop``, ``data`` (TrainConfig's sections),
        ``config`` (TrainConfig itself) or ``runtime`` (never changes the result)
    key : its field in that section (default: the name)
    example : a value shown in messages
    flag : the command-line spelling (default ``--name-with-dashes``)
    """

    name: str
    section: str
    kind: Any
    default: Any
    help: str
    example: str
    key: str = ""
    flag: str = ""

    @property
    def field(self) -> str:
        return self.key or self.name

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def choices(self) -> tuple[str, ...]:
        kind = self.kind.kind if isinstance(self.kind, (OrWord, Optional)) else self.kind
        return kind.choices if isinstance(kind, Choice) else ()


_DECLARED = [
    # the network
    Setting("model", "model", Choice(("softmax", "logistic", "mlp")), "softmax",
            "the classifier", "softmax", key="kind"),
    Setting("hidden", "model", Sizes(), [256], "MLP hidden layer sizes, e.g. 100,100", "100,100"),
    Setting("activation", "model", Choice(("sigmoid", "tanh", "relu")), "relu", "MLP activation", "relu"),
    Setting("bias", "model", Flag(), True, "a bias term in every layer (--no-bias drops them)", "true",
            flag="--no-bias"),
    Setting("init", "model", Choice(("default", "zeros")), "default",
            "initial weights: PyTorch's default, or zeros", "default"),
    # how the weights are fitted
    Setting("optimizer", "optim", Choice(("sgd", "adam", "lbfgs")), "sgd",
            "update rule (lbfgs: full-batch L-BFGS)", "sgd"),
    Setting("lr", "optim", Number(0.0, 1e6, open_lo=True), 0.1, "learning rate", "0.1"),
    Setting("momentum", "optim", Number(0.0, 1.0, open_hi=True), 0.9, "SGD momentum", "0.9"),
    Setting("l2", "optim", OrWord(Number(0.0, 1e6), "auto"), 1e-3,
            "L2 penalty on the weights (l2/2 ||W||^2 added to the mean cost); auto: the best of a "
            "regularisation path on a validation split", "0.001"),
    Setting("l1", "optim", Number(0.0, 1e6), 0.0, "L1 penalty on the weights (sparse models)", "0.0001"),
    Setting("schedule", "optim", Choice(("constant", "cosine")), "constant",
            "learning rate over the run (cosine: to 0 at the end)", "cosine"),
    Setting("average", "optim", Number(0.0, 1.0), 0.75,
            "average the weights over this final share of the updates (0 = off)", "0.5"),
    Setting("epochs", "optim", Optional(Number(1, 10**7, integer=True), "about 700 updates"), None,
            "passes over the training set", "10"),
    Setting("batch_size", "optim", Optional(Number(0, 2**40, integer=True), "n/50 as 2^k in [16, 512]"), None,
            "samples per update; 0 = the whole set", "100"),
    Setting("shuffle", "optim", Flag(), True, "a new sample order every epoch", "true",
            flag="--shuffle/--no-shuffle"),
    Setting("drop_last", "optim", Flag(), False, "skip the last, smaller batch", "true",
            flag="--drop-last/--keep-last"),
    Setting("dtype", "optim", Choice(("float32", "float64")), "float32", "floating-point type of the weights",
            "float32"),
    # when training ends early
    Setting("validation_fraction", "stop", Number(0.0, 1.0, open_hi=True), 0.0,
            "share of the training set held out to score each epoch", "0.1"),
    Setting("early_stopping", "stop", Flag(), False,
            "stop when the validation cost stops improving; keep the best epoch", "true",
            flag="--early-stopping/--no-early-stopping"),
    Setting("patience", "stop", Number(1, 10**7, integer=True), 5,
            "epochs without improvement before stopping", "5"),
    Setting("tol", "stop", Number(0.0, math.inf), 1e-4, "smallest cost decrease that counts as improvement",
            "0.0001"),
    Setting("stall_stop", "stop", Flag(), False, "also stop once the training cost stalls (the estimators' rule)",
            "true"),
    # features
    Setting("preprocess", "data", Choice(("auto", "none", "pixels", "standardize", "scale")), "standardize",
            "feature scaling (auto: pixels for images, none for the lessons' tables and svmlight files; scale: "
            "each column divided by its spread, not centred)", "auto"),
    # where the data comes from and how it is read (softreg.data.DataSource)
    Setting("data", "source", Text(4096), "digits",
            "digits (bundled, default), mnist, fashion-mnist, kmnist, toy, toy-binary, xor, a folder of IDX "
            "files, a .csv / .parquet table, or an svmlight file (.svm)", "digits", key="spec"),
    Setting("test", "source", Optional(Text(4096), "a stratified share of the data"), None,
            "a separate test set: a table, a folder of shards or of IDX files, an svmlight file", "test.csv"),
    Setting("label", "source", Optional(Text(1000), "label, target, class or y, else the last column"), None,
            "label column of a table", "species"),
    Setting("drop", "source", Names(), (), "table columns to leave out, comma-separated", "id,name"),
    Setting("columns", "source", Optional(Names(), "every column but the label"), None,
            "the only table columns to use as features, comma-separated", "age,weight"),
    Setting("header", "source", Optional(Flag(), "detected"), None, "CSV: the first row is (not) a header",
            "false", flag="--header/--no-header"),
    Setting("sep", "source", Optional(Text(1), "detected"), None,
            "CSV field separator (a tab for .tsv)", "';'"),
    Setting("impute", "source", Choice(("none", "mean", "median", "zero")), "none",
            "missing table values: none (an error), or filled from the training rows", "mean"),
    Setting("stream", "source", Flag(), False, "read the training data from disk in bounded memory", "true"),
    Setting("data_dir", "source", Optional(Text(4096), "$SOFTREG_DATA, else ~/.cache/softreg"), None,
            "dataset cache folder", "/data/softreg"),
    # the run as a whole
    Setting("seed", "config", Number(0, 2**32 - 1, integer=True), 0,
            "random seed: initial weights, sample order, validation split", "0"),
    Setting("recipe", "config", Choice(("default", "default-mlp", "lesson", "lesson-table")), "default",
            "named defaults (default; default-mlp for --model mlp; lesson-table for toy, toy-binary, xor)",
            "default"),
    # where and how visibly training runs (never its result)
    Setting("device", "runtime", Text(), "auto", "auto (CUDA when available), cpu, cuda or cuda:N", "cpu"),
    Setting("threads", "runtime", Number(0, 4096, integer=True), 0, "CPU threads; 0 = chosen automatically", "1"),
    Setting("log_every", "runtime", Number(0, 10**7, integer=True), 0,
            "print the cost every N epochs; 0 = about ten lines", "1"),
    Setting("checkpoint_every", "runtime", Number(0, 10**7, integer=True), 0,
            "save a resumable checkpoint every N epochs (0 = never)", "1"),
    Setting("checkpoint_seconds", "runtime", Number(0.0, math.inf), 0.0,
            "also save one whenever this many seconds passed (0 = never)", "600"),
    # tracking (`softreg train`): where the run is also recorded; never changes the result
    Setting("mlflow", "track", Optional(Text(4096), "no MLflow run"), None,
            "also log the run to MLflow at this tracking URI (a bare --mlflow: sqlite:///mlruns.db)",
            "sqlite:///mlruns.db"),
    Setting("tensorboard", "track", Optional(Text(4096), "no TensorBoard events"), None,
            "also write TensorBoard events (scalars, hparams, weight images) to this folder", "runs/tb"),
    # ONNX export (`softreg export`, softreg.export.to_onnx)
    Setting("labels", "export", Choice(("index", "string")), "index",
            "label outputs: index (label_index int64, standard operators only) or string (adds the class "
            "names as label, needs ai.onnx.ml)", "string"),
    Setting("layout", "export", Choice(("softreg", "sklearn")), "softreg",
            "names and order: softreg (features -> probabilities, label_index) or sklearn (skl2onnx's: "
            "X -> label, probabilities)", "sklearn"),
    Setting("opset", "export", Number(13, 30, integer=True), 17, "the ai.onnx opset the file declares", "17"),
]

SETTINGS: dict[str, Setting] = {s.name: s for s in _DECLARED}
SECTIONS = ("model", "optim", "stop", "data")  # TrainConfig's sections, in order


def setting(name: str) -> Setting:
    return SETTINGS[name]


def default(name: str) -> Any:
    """The declared default (a fresh copy for lists)."""
    value = SETTINGS[name].default
    return list(value) if isinstance(value, list) else value


def in_section(section: str) -> list[Setting]:
    return [s for s in SETTINGS.values() if s.section == section]


def check(name: str, value: Any, shown: str | None = None) -> None:
    """Raise UserInputError unless ``value`` follows setting ``name``'s rule.

    shown : how the caller spelt the setting: its name (default), or its command-line flag.
    """
    s = SETTINGS[name]
    if s.kind.ok(value):
        return
    shown = shown or name
    example = f"{shown} {s.example}" if shown.startswith("-") else f"{shown}={s.example}"
    raise UserInputError(f"{shown} must be {s.kind.rule()}; got {value!r}. Example: {example}.")


def check_flags(values: dict[str, Any]) -> None:
    """Check values given on the command line (None = not given), each named by its flag."""
    for name, value in values.items():
        if value is not None:
            check(name, value, SETTINGS[name].option.split("/")[0])


# --------------------------------------------------------------------------- naming settings in messages

_FLAGS = contextvars.ContextVar("softreg_flags", default=False)  # True while the command line runs
_UNSET = object()


@contextlib.contextmanager
def flag_spelling() -> Iterator[None]:
    """Within this block, messages name parameters by their command-line flags."""
    token = _FLAGS.set(True)
    try:
        yield
    finally:
        _FLAGS.reset(token)


def spell(name: str, value: Any = _UNSET) -> str:
    """Parameter ``name`` (with ``value``, when given) as the user spells it.

    Library users: ``name`` or ``name=value`` (``stream=True``, ``l2=0.001``). On the command line:
    the flag softreg.settings declares for it, else ``--name-with-dashes`` (``--stream``,
    ``--l2 0.001``, ``--no-header`` for ``header=False``).
    """
    if not _FLAGS.get():
        return name if value is _UNSET else f"{name}={value!r}"
    declared = SETTINGS.get(name)
    flag = declared.option if declared is not None else "--" + name.replace("_", "-")
    positive, _, negative = flag.partition("/")
    if value is _UNSET:
        return positive
    if isinstance(value, bool):
        if negative:
            return positive if value else negative
        if positive.startswith("--no-"):  # a flag that turns a setting off (--no-bias)
            return f"no {positive}" if value else positive
        return positive if value else f"no {positive}"
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    return f"{positive} {value}"


# --------------------------------------------------------------------------- recipes

# Named defaults, as flat settings. Values given explicitly (options, keyword arguments) override them.
RECIPES: dict[str, dict] = {
    # Linear models: momentum SGD on standardised features, L2 1e-3, weights averaged over the
    # last 75% of the updates; batch size and epochs scale with the data (training/plan.py).
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

__all__ = ["SETTINGS", "SECTIONS", "RECIPES", "spell", "flag_spelling", "Setting", "Choice", "Number", "Flag", "Sizes", "Text", "Names", "OrWord",
           "Optional", "setting", "default", "in_section", "check", "check_flags"]
