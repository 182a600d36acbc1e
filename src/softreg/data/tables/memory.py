"""Load a table into memory as a Dataset, to train on (fitting its schema) or to score with a
model's stored schema; see softreg.data.tables.reader for the reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from softreg.data.base import Dataset, Split
from softreg.data.tables.columns import TableSchema, fill_missing
from softreg.data.tables.columns import ID_ROWS, check_text_columns, fit_categories, infer_schema
from softreg.data.split import stratified_split
from softreg.data.tables.labels import classes_and_codes, label_arrow
from softreg.data.tables.reader import TableReader
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.system.storage import locate

def load_table(
    path: str | Path,
    label: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    test: str | Path | None = None,
    drop: list[str] | None = None,
    columns: list[str] | None = None,
    header: bool | None = None,
    sep: str | None = None,
    impute: str = "none",
) -> Dataset:
    """Read a CSV / Parquet table (or folder of shards) to train on.

    The label column is ``label`` when given, else the first column named label, target, class
    or y, else the last one. Labels may be any text or numbers; classes are their sorted distinct
    values. The test split is the table ``test`` when given (its columns matched by name), else a
    stratified ``test_fraction`` of the rows, fixed by ``seed``.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise UserInputError(f"test fraction must be in [0, 1); got {test_fraction}.")
    path = locate(path)
    reader = TableReader(path, header=header, sep=sep)
    schema = infer_schema(reader, label, drop, columns, impute)
    where = str(path)
    _check_size(reader, schema, where)
    small = _first_pass(reader, schema)
    classes, codes = classes_and_codes(label_arrow(small.column(schema.label), where), where)
    if test is None:
        train_rows, test_rows = stratified_split(codes, test_fraction, seed)
    else:
        train_rows, test_rows = np.arange(len(codes)), np.arange(0)
    check_text_columns(schema, small, where)
    fit_categories(schema, small.take(train_rows) if len(test_rows) else small, where)
    notes: list[str] = []
    X = _features(reader, schema, train_rows, test_rows, where)
    n_train = len(train_rows)
    fill_missing(X, schema, n_train, where)
    notes += _numeric_id_notes(schema, X, where)
    y = torch.from_numpy(np.concatenate([codes[train_rows], codes[test_rows]]))
    Xt = torch.from_numpy(X)
    test_split = Split(Xt[n_train:], y[n_train:]) if len(test_rows) else None
    data = Dataset(name=path.name, train=Split(Xt[:n_train], y[:n_train]), test=test_split, classes=classes,
                   origin=path.absolute(), feature_names=schema.feature_names(), schema=schema, notes=notes)
    if test is not None:
        data.test = load_scoring_table(test, schema, classes, header=header, sep=sep).test
        data.notes += [f"test split: {test}"]
    return data.validate()


def load_scoring_table(path: str | Path, schema: TableSchema, classes: list[str], *, header: bool | None = None,
                       sep: str | None = None, labelled: bool = True) -> Dataset:
    """A whole table encoded with a model's schema (columns matched by name, extra columns ignored
    with a note); every row is in the ``test`` split. Without ``labelled``, labels are optional."""
    path = locate(path)
    reader = TableReader(path, header=header, sep=sep)
    where = str(path)
    extra = schema.check_columns(reader.names, where)
    notes = [f"{where}: column(s) {', '.join(extra[:10])}{', ...' if len(extra) > 10 else ''} not used by the "
             "model: ignored"] if extra else []
    has_label = schema.label in reader.names
    if labelled and not has_label:
        raise UserInputError(f"{where}: no label column {schema.label!r}; give a table with the labels to score it.")
    _check_size(reader, schema, where)
    if has_label:
        labels = label_arrow(_concat(reader.batches([schema.label]), [schema.label]).column(schema.label), where)
        codes = classes_and_codes(labels, where, list(classes))[1]
    else:
        codes = np.zeros(reader.count_rows(), dtype=np.int64)
    X = _features(reader, schema, np.arange(len(codes)), np.arange(0), where)
    fill_missing(X, schema, 0, where)
    Xt, y = torch.from_numpy(X), torch.from_numpy(codes)
    return Dataset(name=path.name, train=Split(Xt[:0], y[:0]), test=Split(Xt, y), classes=list(classes),
                   origin=path.absolute(), feature_names=schema.feature_names(), schema=schema, notes=notes)


def _concat(batches, columns):
    import pyarrow as pa

    batches = list(batches)
    return pa.Table.from_batches(batches) if batches else pa.table({c: [] for c in columns})


def _first_pass(reader: TableReader, schema: TableSchema):
    """The label and text columns of every row (cheap: no numeric parsing of the features)."""
    names = [schema.label] + [c.name for c in schema.columns if c.kind == "categorical"]
    table = _concat(reader.batches(names), names)
    if table.num_rows == 0:
        raise UserInputError(f"{reader.path}: the table has no rows; give at least one.")
    return table


def _check_size(reader: TableReader, schema: TableSchema, where: str) -> None:
    """Refuse a table too large for memory before reading it (Parquet knows its rows up front)."""
    from softreg.system.limits import check_allocation

    if reader.format == "parquet":
        n = reader.count_rows()
        per_row = len(schema.columns) * schema.input_dtype().itemsize + 24  # features, label, split index
        check_allocation(n * per_row, f"the {n}-row table {where}",
                         f"train with {spell('stream', True)} (bounded memory), or use fewer rows or columns")


def _features(reader: TableReader, schema: TableSchema, train_rows: np.ndarray, test_rows: np.ndarray,
              where: str) -> np.ndarray:
    """The (R, F) feature matrix, training rows first, filled one record batch at a time."""
    from softreg.system.limits import check_allocation

    n = len(train_rows) + len(test_rows)
    dtype = schema.input_dtype()
    check_allocation(n * schema.n_features * dtype.itemsize, f"the {n} x {schema.n_features} feature matrix of "
                     f"{where}", f"use {spell('stream', True)} to train from disk, or fewer columns ({spell('columns')} / {spell('drop')})")
    X = np.empty((n, schema.n_features), dtype=dtype)
    dest = np.empty(n, dtype=np.int64)
    dest[train_rows] = np.arange(len(train_rows))
    dest[test_rows] = len(train_rows) + np.arange(len(test_rows))
    in_place = bool((dest == np.arange(n)).all())
    names = [c.name for c in schema.columns]
    pending: tuple[int, np.ndarray] | None = None  # the rows being filled (parts may bring a few columns each)
    end = 0  # rows covered so far

    def finish(offset: int, block: np.ndarray) -> None:
        if schema.impute == "none":
            _no_missing(block, schema, where, offset)
        if not in_place:
            X[dest[offset : offset + len(block)]] = block

    for offset, part in reader.blocks(names):
        m = part.num_rows
        if offset + m > n:
            raise UserInputError(f"{where}: the table changed while it was read; read it again.")
        if pending is None or pending[0] != offset:
            if pending is not None:
                finish(*pending)
            pending = (offset, X[offset : offset + m] if in_place else np.empty((m, schema.n_features), dtype=dtype))
        schema.encode(part, out=pending[1], where=where, first_row=offset)
        end = offset + m
    if pending is not None:
        finish(*pending)
    if end != n:
        raise UserInputError(f"{where}: the table changed while it was read; read it again.")
    return X


def _no_missing(block: np.ndarray, schema: TableSchema, where: str, first_row: int) -> None:
    """Without imputation, a missing value is an error naming its column and row."""
    if block.dtype.kind != "f":
        return
    bad = np.isnan(block)
    if bad.any():
        r, j = np.argwhere(bad)[0]
        name = schema.feature_names()[j]
        raise UserInputError(f"{where}: column {name!r} has missing values (first in data row {first_row + r + 1}); "
                             f"fill them, drop the rows, or add {spell('impute', 'mean')} (or median, zero).")


def _numeric_id_notes(schema: TableSchema, X: np.ndarray, where: str) -> list[str]:
    """Integer columns with one distinct value per row are probably identifiers: say so."""
    notes, at = [], 0
    if X.shape[0] >= ID_ROWS:
        for c in schema.columns:
            if c.kind == "numeric" and c.type.startswith(("int", "uint")) and c.type not in ("uint8", "int8"):
                if np.unique(X[:, at]).size == X.shape[0]:
                    notes.append(f"note: column {c.name!r} has a different value in every row (an identifier?); "
                                 f"it is used as a feature; {spell('drop', [c.name])} leaves it out.")
            at += c.width
    return notes
