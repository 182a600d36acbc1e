"""Reading a run folder's files, bounded in size and nesting, checked against :mod:`softreg.runs.schema`.

Nothing read here sizes an allocation before it is checked: JSON files are read in
chunks up to a size limit and parsed with their nesting bounded, ``history.csv`` must be
numbers, and the weights are compared with config.json through the safetensors header
alone (no tensor is loaded).
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import os
from pathlib import Path
from typing import Any

from softreg.runs import schema
from softreg.errors import UserInputError
from softreg.system.limits import read_at_most

MAX_JSON_BYTES = 64 << 20  # config.json with a million class names is about 10 MB
MAX_HISTORY_BYTES = 256 << 20
MAX_HEADER_BYTES = 16 << 20  # a safetensors header: about 100 bytes per tensor


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
        raise damaged(path, f"nested more than {schema.MAX_DEPTH} levels deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise damaged(path, f"not valid JSON: {exc}") from None
    try:
        schema.check_depth(doc, schema.MAX_DEPTH, "the document")
    except schema.SchemaError as exc:
        raise damaged(path, str(exc)) from None
    return doc


def load_config(path: Path, version: str) -> dict:
    """config.json, validated against its format and upgraded to :data:`schema.FORMAT`.

    version : this softreg's version, for messages about runs it cannot read.
    """
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise damaged(path, f"it holds {type(doc).__name__ if doc is not None else 'null'}, not an object")
    fmt = doc.get("format", 1)
    writer = doc.get("softreg_version")
    writer = f"softreg {writer}" if isinstance(writer, str) and len(writer) < 64 else "an unknown softreg"
    if not schema.Int(1, 10**6).ok(fmt):
        raise damaged(path, f"format must be an integer >= 1; got {schema.shown(fmt)}")
    if fmt > schema.FORMAT:
        raise UserInputError(
            f"{path.parent} was written by {writer} (run format {fmt}); softreg {version} reads formats up to "
            f"{schema.FORMAT}: upgrade softreg, or train the run again with this one."
        )
    if fmt not in schema.FORMATS:
        raise UserInputError(
            f"{path.parent} was written by {writer} (run format {fmt}), which softreg {version} no longer "
            "reads; train the run again."
        )
    try:
        schema.check(doc, schema.FORMATS[fmt].config, "")
        schema.FORMATS[fmt].agree(doc)
    except schema.SchemaError as exc:
        raise damaged(path, str(exc)) from None
    while fmt < schema.FORMAT:
        upgrade = schema.FORMATS[fmt].upgrade
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
        return schema.check(doc, schema.FORMATS[schema.FORMAT].metrics, "metrics")
    except schema.SchemaError as exc:
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
    missing = [c for c in schema.FORMATS[schema.FORMAT].history_columns if c not in rows[0]]
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
                raise damaged(path, f"line {number}, column {key}: {schema.shown(text)} is not a number") from None
            if out[key] is None and key in schema.FORMATS[schema.FORMAT].history_columns:
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


def check_weights(path: Path, header: dict, expected: dict[str, tuple[int, ...]], model: dict,
                  dtype: str = "float32") -> None:
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
        stored, got = header[name]
        if stored.lower() not in ({"F32", "float32"} if dtype == "float32" else {"F64", "float64"}) and \
                stored.upper() != {"float32": "F32", "float64": "F64"}[dtype]:
            raise damaged(path, f"tensor {name} holds {stored}, config.json says the run is {dtype}")
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
