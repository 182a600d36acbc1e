"""The run folder's files as declared data (one declaration per format version) and their validator.

A run's ``config.json`` says which layout it follows in ``"format"`` (absent in runs
written before formats were numbered: those are format 1). Each version is one
:class:`RunFormat` in :data:`FORMATS`: the specs of ``config.json`` and ``metrics.json``,
the columns ``history.csv`` needs, the rules that tie fields together, and, once a newer
format exists, an ``upgrade`` that turns a validated document into the next layout.
Adding a format is adding a declaration: ``FORMATS[2] = RunFormat(2, ...)`` and either
``FORMATS[1].upgrade`` (older runs are read) or none (older runs are refused, naming the
softreg version that wrote them).

Everything read from disk is checked here before it sizes an allocation or builds a
model: types, ranges, lengths, nesting depth and file sizes are all bounded.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from softreg.errors import UserInputError
from softreg.limits import read_at_most

MAX_JSON_BYTES = 64 << 20  # config.json with a million class names is about 10 MB
MAX_HISTORY_BYTES = 256 << 20
MAX_HEADER_BYTES = 16 << 20  # a safetensors header: about 100 bytes per tensor
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
        _check_depth(value, spec.depth, where)
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


def _check_depth(value: Any, depth: int, where: str) -> None:
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

TRAIN_V1 = Obj({
    "model": Str(MODELS),
    "hidden": List(Int(1, MAX_UNITS), 1, MAX_LAYERS),
    "activation": Str(ACTIVATIONS),
    "bias": Bool(),
    "init": Str(INITS),
    "preprocess": Str(("auto", "none", "pixels", "standardize")),
    "epochs": Nullable(Int(1, 10**7)),
    "batch_size": Nullable(Int(0, 2**40)),
    "lr": Real(0, 1e6, open_lo=True),
    "optimizer": Str(("sgd", "adam", "lbfgs")),
    "momentum": Real(0, 1),
    "l2": Real(0, 1e6),
    "l1": Real(0, 1e6),
    "schedule": Str(("constant", "cosine")),
    "average": Real(0, 1),
    "validation_fraction": Real(0, 1),
    "early_stopping": Bool(),
    "patience": Int(1, 10**7),
    "tol": Real(0, 1e6),
    "threads": Int(0, 4096),
    "shuffle": Bool(),
    "drop_last": Bool(),
    "seed": Int(0, 2**32 - 1),
    "device": Str(max_len=64),
    "log_every": Int(0, 10**7),
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


def check_spec(spec: str) -> None:
    """The rule for ``data.spec``, so a tampered run cannot point ``evaluate`` anywhere.

    A spec is a dataset name softreg knows (downloads only ever fetch those, from the
    catalogue's own mirrors into the user's cache, as ``train --data NAME`` does) or an
    absolute path. ``load_dataset`` reads a path only as a table with a supported suffix
    or as a folder of IDX files by their standard names; any other file is refused
    unread.
    """
    from softreg.data import BUILTIN, NAMED_IDX

    if spec in BUILTIN + NAMED_IDX or os.path.isabs(spec):
        return
    raise SchemaError("data.spec", f"must be a dataset name ({', '.join(BUILTIN + NAMED_IDX)}) or an "
                      f"absolute path; got {shown(spec)}")


def _agree_v1(doc: dict) -> None:
    """Rules between fields of a format-1 config.json."""
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
    check_spec(data["spec"])


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
    1: RunFormat(1, CONFIG_V1, METRICS_V1, ("epoch", "avg_cost"), _agree_v1,
                 notes="softreg 0.1: flat train settings"),
}
FORMAT = max(FORMATS)  # the format this softreg writes


# ------------------------------------------------------------------ reading


def damaged(path: Path, detail: str) -> UserInputError:
    return UserInputError(f"{path} is damaged ({' '.join(detail.split())}); train the run again.")


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file of bounded size and nesting; UserInputError naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            raw = read_at_most(f, max_bytes)
    except OSError as exc:
        raise damaged(path, f"cannot read it: {exc.strerror or exc}") from None
    if raw is None:
        raise damaged(path, f"larger than {max_bytes >> 20} MB")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise damaged(path, f"nested more than {MAX_DEPTH} levels deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise damaged(path, f"not valid JSON: {exc}") from None
    try:
        _check_depth(doc, MAX_DEPTH, "the document")
    except SchemaError as exc:
        raise damaged(path, str(exc)) from None
    return doc


def load_config(path: Path, version: str) -> dict:
    """config.json, validated against its format and upgraded to :data:`FORMAT`.

    version : this softreg's version, for messages about runs it cannot read.
    """
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise damaged(path, f"it holds {type(doc).__name__ if doc is not None else 'null'}, not an object")
    fmt = doc.get("format", 1)
    writer = doc.get("softreg_version")
    writer = f"softreg {writer}" if isinstance(writer, str) and len(writer) < 64 else "an unknown softreg"
    if not Int(1, 10**6).ok(fmt):
        raise damaged(path, f"format must be an integer >= 1; got {shown(fmt)}")
    if fmt > FORMAT:
        raise UserInputError(
            f"{path.parent} was written by {writer} (run format {fmt}); softreg {version} reads formats up to "
            f"{FORMAT}: upgrade softreg, or train the run again with this one."
        )
    if fmt not in FORMATS:
        raise UserInputError(
            f"{path.parent} was written by {writer} (run format {fmt}), which softreg {version} no longer "
            "reads; train the run again."
        )
    try:
        check(doc, FORMATS[fmt].config, "")
        FORMATS[fmt].agree(doc)
    except SchemaError as exc:
        raise damaged(path, str(exc)) from None
    while fmt < FORMAT:
        upgrade = FORMATS[fmt].upgrade
        if upgrade is None:
            raise UserInputError(
                f"{path.parent} was written by {writer} (run format {fmt}), which softreg {version} no longer "
                "reads; train the run again."
            )
        doc, fmt = upgrade(doc), fmt + 1
    return doc


def load_metrics(path: Path) -> dict:
    """metrics.json (an object of numbers and small extras), or {} when absent."""
    if not os.path.lexists(path):
        return {}
    doc = read_json(path)
    try:
        return check(doc, FORMATS[FORMAT].metrics, "metrics")
    except SchemaError as exc:
        raise damaged(path, str(exc)) from None


def load_history(path: Path) -> list[dict]:
    """history.csv as rows of numbers (None for empty cells), or [] when absent."""
    if not os.path.lexists(path):
        return []
    try:
        with open(path, "rb") as f:
            raw = read_at_most(f, MAX_HISTORY_BYTES)
        if raw is None:
            raise damaged(path, f"larger than {MAX_HISTORY_BYTES >> 20} MB")
        rows = list(csv.DictReader(_stdio.StringIO(raw.decode("utf-8"), newline="")))
    except OSError as exc:
        raise damaged(path, f"cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise damaged(path, f"not a CSV file: {exc}") from None
    if not rows:
        return []
    missing = [c for c in FORMATS[FORMAT].history_columns if c not in rows[0]]
    if missing:
        raise damaged(path, f"column {missing[0]} is missing")
    parsed = []
    for number, row in enumerate(rows, start=2):
        out: dict = {}
        for key, text in row.items():
            if key is None or text is None:
                raise damaged(path, f"line {number} has a different number of fields than the header")
            try:
                out[key] = float(text) if text.strip() else None
            except ValueError:
                raise damaged(path, f"line {number}, column {key}: {shown(text)} is not a number") from None
            if out[key] is None and key in FORMATS[FORMAT].history_columns:
                raise damaged(path, f"line {number}, column {key} is empty")
        parsed.append(out)
    return parsed


def read_weights_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's dtype and shape from a safetensors file's header; no tensor is loaded."""
    from safetensors import SafetensorError, safe_open

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
    except OSError as exc:
        raise damaged(path, f"cannot read it: {exc.strerror or exc}") from None
    n = int.from_bytes(head, "little") if len(head) == 8 else -1
    if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
        raise damaged(path, f"not a safetensors file: header of {n} bytes in a file of {size}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: (str(f.get_slice(name).get_dtype()), tuple(f.get_slice(name).get_shape()))
                    for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise damaged(path, str(exc)) from None


def check_weights(path: Path, header: dict, expected: dict[str, tuple[int, ...]], model: dict) -> None:
    """Compare the header's tensors with those ``model`` (config.json's section) implies.

    expected : tensor name -> shape, as the model built from config.json would hold.
    The message names the config field whose value does not fit the weights.
    """
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise UserInputError(f"{path.parent}: weights do not match config.json (size mismatch: {detail} in "
                             f"model.safetensors for model.kind {model['kind']}); train again.")
    for name, shape in expected.items():
        dtype, got = header[name]
        if dtype not in ("F32", "float32"):
            raise damaged(path, f"tensor {name} holds {dtype}, softreg writes float32")
        if tuple(got) != tuple(shape):
            fields = _fields_with(model, [a for a, b in zip(shape, got) if a != b] or list(shape))
            raise UserInputError(
                f"{path.parent}: weights do not match config.json (size mismatch: {fields or 'the model'} "
                f"implies {name} of shape {list(shape)}, model.safetensors holds {list(got)}); train again."
            )


def _fields_with(model: dict, values: list[int]) -> str:
    """The config.json fields whose value is one of ``values`` (to name the likely culprit)."""
    names = [f"model.{key} = {model[key]}" for key in ("n_features", "n_classes") if model.get(key) in values]
    names += [f"model.hidden[{i}] = {h}" for i, h in enumerate(model.get("hidden") or []) if h in values]
    return ", ".join(names)


__all__ = ["FORMAT", "FORMATS", "RunFormat", "SchemaError", "check", "check_spec", "check_weights",
           "load_config", "load_history", "load_metrics", "read_json", "read_weights_header"]
