"""The run folder's files as declared data (one declaration per format version) and their validator.

A run's ``config.json`` says which layout it follows in ``"format"`` (absent in runs
written before formats were numbered: those are format 1). Each version is one
:class:`RunFormat` in :data:`FORMATS`: the specs of ``config.json`` and ``metrics.json``,
the columns ``history.csv`` needs, the rules that tie fields together, and, once a newer
format exists, an ``upgrade`` that turns a validated document into the next layout.
Adding a format is adding a declaration: ``FORMATS[2] = RunFormat(2, ...)`` and either
``FORMATS[1].upgrade`` (older runs are read) or none (older runs are refused, naming the
softreg version that wrote them).

:mod:`softreg.runs.files` reads a run's files (bounded in size and nesting) and checks them
here before they size an allocation or build a model.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

MAX_DEPTH = 16  # JSON nesting; softreg writes at most 3 levels


class SchemaError(Exception):
    """A value that breaks its declared rule; ``field`` is its dotted path (``model.hidden[0]``)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field


def shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------ specs: declared data


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int

    def rule(self) -> str:
        return f"an integer in [{self.lo}, {self.hi}]"

    def ok(self, v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and self.lo <= v <= self.hi


@dataclass(frozen=True)
class Real:
    lo: float = -math.inf
    hi: float = math.inf
    finite: bool = True  # False admits NaN and infinities (a diverged run's metrics)
    open_lo: bool = False  # True: lo itself is excluded

    def rule(self) -> str:
        if self.lo == -math.inf and self.hi == math.inf:
            return "a finite number" if self.finite else "a number"
        if self.hi == math.inf:
            return f"a{' finite' if self.finite else ''} number {'>' if self.open_lo else '>='} {self.lo:g}"
        return f"a number in {'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}]"

    def ok(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if not math.isfinite(v):
            return not self.finite
        return self.lo <= v <= self.hi and not (self.open_lo and v == self.lo)


@dataclass(frozen=True)
class Bool:
    def rule(self) -> str:
        return "true or false"

    def ok(self, v: Any) -> bool:
        return isinstance(v, bool)


@dataclass(frozen=True)
class Str:
    choices: tuple[str, ...] = ()
    max_len: int = 4096

    def rule(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return f"a string of at most {self.max_len} characters without NUL"

    def ok(self, v: Any) -> bool:
        if not isinstance(v, str):
            return False
        if self.choices:
            return v in self.choices
        return len(v) <= self.max_len and "\x00" not in v


@dataclass(frozen=True)
class List:
    item: Any
    min_len: int = 0
    max_len: int = 1_000_000
    unique: bool = False

    def rule(self) -> str:
        return f"a list of {self.min_len} to {self.max_len} items{', all different' if self.unique else ''}"


@dataclass(frozen=True)
class Obj:
    fields: dict
    required: tuple[str, ...] = ()
    extra: Any = None  # spec of fields not declared; None: they are an error
    noun: str = "field"

    def rule(self) -> str:
        return "an object"


@dataclass(frozen=True)
class Nullable:
    spec: Any


@dataclass(frozen=True)
class AnyJSON:
    """Any JSON value, nested at most ``depth`` levels (free-form extras)."""

    depth: int = 4


def check(value: Any, spec: Any, where: str) -> Any:
    """Return ``value`` when it follows ``spec``; raise SchemaError naming the first bad field."""
    if isinstance(spec, Nullable):
        return None if value is None else check(value, spec.spec, where)
    if isinstance(spec, AnyJSON):
        check_depth(value, spec.depth, where)
        return value
    if isinstance(spec, Obj):
        if not isinstance(value, dict):
            raise SchemaError(where, f"must be an object; got {shown(value)}")
        for key in spec.required:
            if key not in value:
                raise SchemaError(f"{where}.{key}".lstrip("."), "is missing")
        for key, item in value.items():
            sub = f"{where}.{key}".lstrip(".")
            if key in spec.fields:
                check(item, spec.fields[key], sub)
            elif spec.extra is None:
                known = ", ".join(sorted(spec.fields))
                raise SchemaError(sub, f"is an unknown {spec.noun} (known: {known})")
            else:
                check(item, spec.extra, sub)
        return value
    if isinstance(spec, List):
        if not isinstance(value, list) or not spec.min_len <= len(value) <= spec.max_len:
            got = f"{len(value)} items" if isinstance(value, list) else shown(value)
            raise SchemaError(where, f"must be {spec.rule()}; got {got}")
        for i, item in enumerate(value):
            check(item, spec.item, f"{where}[{i}]")
        if spec.unique and len(set(map(json.dumps, value))) != len(value):
            seen: set = set()
            twice = next(v for v in value if json.dumps(v) in seen or seen.add(json.dumps(v)))
            raise SchemaError(where, f"must list each item once; {shown(twice)} appears twice")
        return value
    if not spec.ok(value):
        raise SchemaError(where, f"must be {spec.rule()}; got {shown(value)}")
    return value


def check_depth(value: Any, depth: int, where: str) -> None:
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            if d >= depth:
                raise SchemaError(where, f"is nested more than {depth} levels deep")
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))


# ------------------------------------------------------------------ format 1


MODELS = ("softmax", "logistic", "mlp")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("default", "zeros")
MAX_LAYERS = 64
MAX_UNITS = 100_000_000
NUMBER = Real(finite=False)
TEXT = Str()

MODEL_V1 = Obj({
    "kind": Str(MODELS),
    "n_features": Int(1, 1_000_000_000),
    "n_classes": Int(2, 1_000_000),
    "hidden": List(Int(1, MAX_UNITS), 0, MAX_LAYERS),
    "activation": Str(ACTIVATIONS),
    "bias": Bool(),
    "init": Str(INITS),
}, required=("kind", "n_features", "n_classes"), noun="model field")

TRAIN_V1 = Obj({  # what any softreg 0.1 could have saved (new runs are held to softreg.system.limits' tighter bounds)
    "model": Str(MODELS),
    "hidden": List(Int(1, MAX_UNITS), 1, MAX_LAYERS),
    "activation": Str(ACTIVATIONS),
    "bias": Bool(),
    "init": Str(INITS),
    "preprocess": Str(("auto", "none", "pixels", "standardize")),
    "epochs": Nullable(Int(1, 2**62)),
    "batch_size": Nullable(Int(0, 2**62)),
    "lr": Real(0, math.inf, open_lo=True),
    "optimizer": Str(("sgd", "adam", "lbfgs")),
    "momentum": Real(0, 1),
    "l2": Real(0, math.inf),
    "l1": Real(0, math.inf),
    "schedule": Str(("constant", "cosine")),
    "average": Real(0, 1),
    "validation_fraction": Real(0, 1),
    "early_stopping": Bool(),
    "patience": Int(1, 2**62),
    "tol": Real(0, math.inf),
    "threads": Int(0, 2**31 - 1),
    "shuffle": Bool(),
    "drop_last": Bool(),
    "seed": Int(0, 2**64 - 1),  # torch's range; NumPy got seed % 2**32
    "device": Str(max_len=64),
    "log_every": Int(0, 2**62),
    "recipe": Str(max_len=64),
}, noun="training setting")

DATA_V1 = Obj({
    "spec": TEXT,
    "name": TEXT,
    "source": TEXT,
    "label": Nullable(TEXT),
    "classes": List(Str(max_len=1000), 2, 1_000_000, unique=True),
    "image_shape": Nullable(List(Int(1, 65_535), 1, 3)),
    "pixel_max": Nullable(Real(0, 1e30, open_lo=True)),
    "feature_names": Nullable(List(TEXT, 1, 1_000_000_000)),
    "n_train": Int(0, 2**40),
    "n_test": Int(0, 2**40),
}, required=("spec", "classes", "image_shape", "pixel_max"), noun="data field")

CONFIG_V1 = Obj({
    "format": Int(1, 1),
    "softreg_version": Str(max_len=64),
    "model": MODEL_V1,
    "preprocess": Str(("none", "pixels", "standardize")),
    "train": TRAIN_V1,
    "data": DATA_V1,
}, required=("model", "preprocess", "train", "data"))

METRICS_V1 = Obj({
    **{f"{split}_{name}": NUMBER for split in ("train", "val", "test") for name in ("loss", "accuracy")},
    "train_seconds": Real(0, 1e12),
    "epochs": Int(0, 10**7),
    "best_epoch": Int(0, 10**7),
    "world_size": Int(1, 1_000_000),
}, extra=AnyJSON(4))


def check_spec(spec: str, field: str = "data.spec") -> None:
    """The rule for ``data.spec``, so a tampered run cannot point ``evaluate`` anywhere.

    A spec is a dataset name softreg knows (downloads only ever fetch those, from the
    catalogue's own mirrors into the user's cache, as ``train --data NAME`` does), an
    absolute path or a URL. ``load_dataset`` reads a path only as a table with a supported suffix
    or as a folder of IDX files by their standard names; any other file is refused
    unread. A URL (a table in object storage or on a web server) is read as a table.
    """
    from softreg.data.names import BUILTIN, NAMED_IDX
    from softreg.system.storage import is_url

    if spec in BUILTIN + NAMED_IDX or os.path.isabs(spec) or is_url(spec):
        return
    raise SchemaError(field, f"must be a dataset name ({', '.join(BUILTIN + NAMED_IDX)}), an "
                      f"absolute path or a URL; got {shown(spec)}")


def _agree_v1(doc: dict) -> None:
    """Rules between fields of a format-1 config.json."""
    _agree_model_data(doc)
    check_spec(doc["data"]["spec"])


def _agree_model_data(doc: dict) -> None:
    """What every format requires of the model and the data it describes."""
    model, data = doc["model"], doc["data"]
    n_features, n_classes = model["n_features"], model["n_classes"]
    if len(data["classes"]) != n_classes:
        raise SchemaError("data.classes", f"must list model.n_classes = {n_classes} names; got {len(data['classes'])}")
    if model["kind"] == "logistic" and n_classes != 2:
        raise SchemaError("model.n_classes", f"must be 2 for a logistic model; got {n_classes}")
    if model["kind"] == "mlp" and not model.get("hidden"):
        raise SchemaError("model.hidden", "must list at least one layer size for an MLP; got []")
    shape = data["image_shape"]
    if shape is not None:
        if math.prod(shape) != n_features:
            raise SchemaError("data.image_shape", f"must multiply to model.n_features = {n_features}; got {shape}")
        if data["pixel_max"] is None:
            raise SchemaError("data.pixel_max", "must be a positive number for image data; got null")
    names = data.get("feature_names")
    if names is not None and len(names) != n_features:
        raise SchemaError("data.feature_names", f"must list model.n_features = {n_features} names; got {len(names)}")


# ------------------------------------------------------------------ format 2 (softreg 0.2)

PREPROCESS_KINDS = ("none", "pixels", "standardize", "scale")
MODEL_V2 = Obj({
    **MODEL_V1.fields,
    "index_base": Nullable(Int(0, 1)),  # sparse (svmlight) input: the file's first feature index
}, required=MODEL_V1.required, noun="model field")
TRAIN_V2 = Obj({
    "model": Obj({
        "kind": Str(MODELS),
        "hidden": List(Int(1, MAX_UNITS), 1, MAX_LAYERS),
        "activation": Str(ACTIVATIONS),
        "bias": Bool(),
        "init": Str(INITS),
    }, required=("kind",), noun="model setting"),
    "optim": Obj({
        "optimizer": Str(("sgd", "adam", "lbfgs")),
        "lr": Real(0, 1e6, open_lo=True),
        "momentum": Real(0, 1),
        "l2": Real(0, math.inf),
        "l1": Real(0, math.inf),
        "schedule": Str(("constant", "cosine")),
        "average": Real(0, 1),
        "epochs": Nullable(Int(1, 10**7)),
        "batch_size": Nullable(Int(0, 2**31)),
        "shuffle": Bool(),
        "drop_last": Bool(),
        "dtype": Str(("float32", "float64")),
    }, noun="optim setting"),
    "stop": Obj({
        "validation_fraction": Real(0, 1),
        "early_stopping": Bool(),
        "patience": Int(1, 2**62),
        "tol": Real(0, math.inf),
        "stall_stop": Bool(),
    }, noun="stop setting"),
    "data": Obj({
        "preprocess": Str(("auto", *PREPROCESS_KINDS)),
        "impute": Str(("none", "mean", "median", "zero")),
    }, noun="data setting"),
    "seed": Int(0, 2**63 - 1),
    "recipe": Str(max_len=64),
}, required=("model", "optim", "stop", "data"), noun="training setting")

TABLE_COLUMN = Obj({
    "name": Str(max_len=1000),
    "kind": Str(("numeric", "categorical")),
    "type": Str(max_len=200),
    "categories": Nullable(List(Str(max_len=10_000), 0, 1_000_000, unique=True)),
    "fill": Nullable(Real()),
}, required=("name", "kind", "type"), noun="column field")

DATA_V2 = Obj({
    **DATA_V1.fields,
    "options": Obj({
        "test": Nullable(TEXT),
        "drop": List(Str(max_len=1000), 0, 100_000),
        "columns": Nullable(List(Str(max_len=1000), 0, 100_000)),
        "header": Nullable(Bool()),
        "sep": Nullable(Str(max_len=1)),
        "stream": Bool(),
    }, noun="data option"),
    "schema": Nullable(Obj({
        "label": Str(max_len=1000),
        "columns": List(TABLE_COLUMN, 1, 1_000_000),
        "impute": Str(("none", "mean", "median", "zero")),
    }, required=("label", "columns"), noun="schema field")),
}, required=DATA_V1.required, noun="data field")

CONFIG_V2 = Obj({
    "format": Int(2, 2),
    "softreg_version": Str(max_len=64),
    "model": MODEL_V2,
    "preprocess": Str(PREPROCESS_KINDS),
    "dtype": Str(("float32", "float64")),
    "train": TRAIN_V2,
    "data": DATA_V2,
}, required=("format", "model", "preprocess", "train", "data"))


def _agree_v2(doc: dict) -> None:
    """Format 1's rules, plus: a table schema encodes to model.n_features values."""
    _agree_v1(doc)
    _agree_table(doc)


def _agree_table(doc: dict) -> None:
    """A table schema encodes to model.n_features values; the training settings name the same model."""
    table = doc["data"].get("schema")
    if table:
        width = sum(len(c.get("categories") or []) if c["kind"] == "categorical" else 1 for c in table["columns"])
        if width != doc["model"]["n_features"]:
            raise SchemaError("data.schema.columns", f"must encode to model.n_features = "
                              f"{doc['model']['n_features']} features; they encode to {width}")
    if doc["train"]["model"]["kind"] != doc["model"]["kind"]:
        raise SchemaError("train.model.kind", f"must equal model.kind = {doc['model']['kind']!r}; got "
                          f"{doc['train']['model']['kind']!r}")


RUNTIME_KEYS_V1 = ("device", "threads", "log_every")  # format 1 kept these beside the settings


def _upgrade_v1(doc: dict) -> dict:
    """A format-1 config.json (softreg 0.1) in format 2's layout: nested training settings."""
    from softreg.training.config import config_from_flat

    flat = {k: v for k, v in doc["train"].items() if k not in RUNTIME_KEYS_V1}
    recipe = flat.pop("recipe", "default")
    if recipe not in ("default", "default-mlp", "lesson", "lesson-table"):
        recipe = "default"
    flat["lr"] = min(flat.get("lr", 0.1), 1e6)
    flat["seed"] = min(flat.get("seed", 0), 2**63 - 1)
    train = config_from_flat(flat, recipe).to_dict()
    train["data"]["impute"] = "none"  # format 2 kept it here (format 1 read no tables)
    data = {**doc["data"], "options": {"test": None, "drop": [], "columns": None, "header": None, "sep": None,
                                       "stream": False}, "schema": None}
    return {**doc, "format": 2, "dtype": "float32", "train": train, "data": data}


# ------------------------------------------------------------------ format 3 (softreg 0.3)


@dataclass(frozen=True)
class Declared:
    """A value of training setting ``name``, checked against softreg.settings when checked (so the
    format's allowed values are the declaration's, not a copy)."""

    name: str

    def rule(self) -> str:
        from softreg.settings import SETTINGS

        return SETTINGS[self.name].kind.rule()

    def ok(self, v: Any) -> bool:
        from softreg.settings import SETTINGS

        return SETTINGS[self.name].kind.ok(v)


def _declared_section(section: str, noun: str, required: tuple[str, ...] = ()) -> Obj:
    from softreg.settings import in_section

    return Obj({s.field: Declared(s.name) for s in in_section(section) if s.name != "data_dir"}, required=required,
               noun=noun)


TRAIN_V3 = Obj({
    **{section: _declared_section(section, f"{section} setting") for section in ("model", "optim", "stop", "data")},
    "seed": Declared("seed"),
    "recipe": Declared("recipe"),
}, required=("model", "optim", "stop", "data"), noun="training setting")
TRAIN_V3.fields["model"] = Obj(TRAIN_V3.fields["model"].fields, required=("kind",), noun="model setting")

DATA_V3 = Obj({
    **{k: v for k, v in DATA_V2.fields.items() if k not in ("spec", "options", "label", "source")},
    "origin": TEXT,
    "source": _declared_section("source", "data source option", required=("spec",)),
}, required=("source", "classes", "image_shape", "pixel_max"), noun="data field")

CONFIG_V3 = Obj({**CONFIG_V2.fields, "format": Int(3, 3), "train": TRAIN_V3, "data": DATA_V3},
                required=CONFIG_V2.required)

METRICS_V3 = Obj({
    **METRICS_V1.fields,
    "plan": Obj({  # the numbers the run followed (softreg.training.plan.Plan)
        "n_samples": Int(1, 2**40), "n_features": Int(1, 10**9), "batch_size": Int(1, 2**40),
        "epochs": Int(1, 10**7), "steps_per_epoch": Int(1, 2**40), "average_from": Nullable(Int(1, 2**62)),
        "threads": Int(0, 4096), "lr": Real(0, 1e6, open_lo=True), "schedule": Declared("schedule"),
    }, required=("n_samples", "n_features", "batch_size", "epochs", "steps_per_epoch", "average_from", "threads",
                 "lr", "schedule"), noun="plan field"),
}, extra=AnyJSON(4))


def _agree_v3(doc: dict) -> None:
    """Rules between fields of a format-3 config.json: as format 2's, with the data source's spec and
    test set held to the rule for a spec."""
    _agree_model_data(doc)
    _agree_table(doc)
    source = doc["data"]["source"]
    check_spec(source["spec"], "data.source.spec")
    if source.get("test") is not None:
        check_spec(source["test"], "data.source.test")


def _upgrade_v2(doc: dict) -> dict:
    """A format-2 config.json (softreg 0.2) in format 3's layout: the data source recorded whole (the
    table options, the label column and the imputation, which format 2 kept with the training settings)."""
    train = {**doc["train"], "data": dict(doc["train"]["data"])}
    impute = train["data"].pop("impute", "none")
    data = dict(doc["data"])
    options = data.pop("options", None) or {}
    data["origin"] = data.pop("source", "") or ""
    source = {"spec": data.pop("spec"), "test": options.get("test"), "label": data.pop("label", None),
              "drop": list(options.get("drop") or []), "columns": options.get("columns"),
              "header": options.get("header"), "sep": options.get("sep"), "impute": impute,
              "stream": bool(options.get("stream", False))}
    return {**doc, "format": 3, "train": train, "data": {**data, "source": source}}


@dataclass(frozen=True)
class RunFormat:
    """One version of the run folder's layout."""

    version: int
    config: Obj  # config.json
    metrics: Obj  # metrics.json
    history_columns: tuple[str, ...]  # columns history.csv must have (every value numeric or empty)
    agree: Callable[[dict], None]  # rules between config.json's fields
    upgrade: Callable[[dict], dict] | None = None  # config.json -> the next format's layout
    notes: str = field(default="")


FORMATS: dict[int, RunFormat] = {
    1: RunFormat(1, CONFIG_V1, METRICS_V1, ("epoch", "avg_cost"), _agree_v1, upgrade=_upgrade_v1,
                 notes="softreg 0.1: flat train settings"),
    2: RunFormat(2, CONFIG_V2, METRICS_V1, ("epoch", "avg_cost"), _agree_v2, upgrade=_upgrade_v2,
                 notes="softreg 0.2: nested training settings, dtype, table schema and options, sparse input"),
    3: RunFormat(3, CONFIG_V3, METRICS_V3, ("epoch", "avg_cost"), _agree_v3,
                 notes="softreg 0.3: the data source recorded whole; settings checked against softreg.settings"),
}
FORMAT = max(FORMATS)  # the format this softreg writes


__all__ = ["FORMAT", "FORMATS", "AnyJSON", "Bool", "Int", "List", "Nullable", "Obj", "Real", "RunFormat",
           "SchemaError", "Str", "check", "check_depth", "check_spec"]
