"""A table streamed from disk (``--stream``): one label pass, one fitting pass, then shuffled pieces.

``open_table_stream`` never holds the training split. It reads the label column once (the classes
and, without a separate test table, the stratified hold-out), then one pass over the training rows
fits everything the model stores (categories, imputation values, standardisation statistics).
Training and scoring then read batches from disk through ``StreamSource`` (a shuffled piece order
and a bounded shuffle buffer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from softreg.data.base import StreamData
from softreg.data.shuffle import StreamSource
from softreg.data.split import stratified_split
from softreg.data.tables.columns import (ID_ROWS, MAX_CATEGORIES, TableSchema, arrow_numpy, as_text,
                                         check_text_columns, infer_schema, numeric_values)
from softreg.data.tables.labels import classes_and_codes, label_arrow
from softreg.data.tables.reader import TableReader
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.system.storage import locate
from softreg.models.preprocess import Moments, Preprocess
from softreg.system.processes import SINGLE, Comm

RESERVOIR_ROWS = 10_000  # rows kept to estimate medians for impute="median"


def open_table_stream(path: str | Path, *, preprocess: str, label: str | None = None, test: str | None = None,
                      drop: list[str] | None = None, columns: list[str] | None = None, header: bool | None = None,
                      sep: str | None = None, impute: str = "none", test_fraction: float = 0.2,
                      seed: int = 0, comm: Comm = SINGLE) -> StreamData:
    """Stream a table; ``preprocess`` is none or standardize (auto means standardize)."""
    path = locate(path)
    where = str(path)
    reader = TableReader(path, header=header, sep=sep)
    schema = infer_schema(reader, label, drop, columns, impute)
    pieces, labels = _label_pass(reader, schema.label, where)
    classes, codes = classes_and_codes(labels, where)
    del labels
    held = np.zeros(len(codes), dtype=bool)
    if test is None:
        _, test_rows = stratified_split(codes, test_fraction, seed)
        held[test_rows] = True
    kind = "standardize" if preprocess in ("auto", "standardize") else preprocess
    if kind not in ("none", "standardize"):
        raise UserInputError(f"{spell('preprocess', preprocess)} needs image data; use standardize or none for tables.")
    moments = _fit_pass(reader, schema, pieces, ~held, where, comm)
    pre = _table_preprocess(schema, moments, kind, int((~held).sum()))
    codes_t = torch.from_numpy(codes)
    train = _table_source(reader, schema, pieces, codes_t, ~held, where)
    if test is not None:
        test_reader = TableReader(test, header=header, sep=sep)
        schema.check_columns(test_reader.names, str(test))
        test_pieces, test_labels = _label_pass(test_reader, schema.label, str(test))
        test_codes = torch.from_numpy(classes_and_codes(test_labels, str(test), classes)[1])
        test_source = _table_source(test_reader, schema, test_pieces, test_codes,
                                    np.ones(len(test_codes), dtype=bool), str(test))
    else:
        test_source = _table_source(reader, schema, pieces, codes_t, held, where) if held.any() else None
    return StreamData(name=path.name, origin=path.absolute(), classes=classes, train=train, test=test_source,
                      preprocess=pre, schema=schema, feature_names=schema.feature_names()).validate()


def _label_pass(reader: TableReader, label: str, where: str) -> tuple[list[tuple], object]:
    """(pieces as (fragment, first row, rows), every row's label as Arrow text), reading the label
    column only; no Python object per row."""
    import pyarrow as pa

    pieces, parts, offset = [], [], 0
    for frag in reader.fragments():
        start = offset
        for batch in reader.read_fragment(frag, [label]):
            parts.append(label_arrow(batch.column(label), where, offset))
            offset += batch.num_rows
        if offset > start:
            pieces.append((frag, start, offset - start))
    if offset == 0:
        raise UserInputError(f"{where}: the table has no rows; give at least one.")
    return pieces, pa.chunked_array(parts, type=pa.string())


def _numeric_block(batch, numeric, where: str, first_row: int) -> np.ndarray:
    """The numeric feature columns of a batch as one (n, k) array (uint8 when they all are)."""
    if all(c.type == "uint8" for c in numeric):
        return np.column_stack([arrow_numpy(batch.column(c.name)) for c in numeric])
    return np.column_stack([numeric_values(batch.column(c.name), c, where, first_row).astype(np.float64)
                            for c in numeric])


def _fit_pass(reader: TableReader, schema: TableSchema, pieces, train_mask: np.ndarray, where: str,
              comm: Comm = SINGLE) -> Moments:
    """One pass over the training rows: categories, imputation values and the numeric columns'
    moments (missing values left out). Sets them on ``schema``; returns the moments. With several
    processes each reads every world-th piece and the results are merged."""
    import pyarrow as pa
    import pyarrow.compute as pc

    numeric = [c for c in schema.columns if c.kind == "numeric"]
    text = [c for c in schema.columns if c.kind == "categorical"]
    moments = Moments(len(numeric))
    seen: dict[str, set] = {c.name: set() for c in text}
    reservoir: list[np.ndarray] = []
    kept = 0
    first_missing: dict[str, int] = {}
    rng = np.random.default_rng(0)
    names = [c.name for c in schema.columns]
    checked = False
    for frag, start, _ in pieces[comm.rank :: comm.world]:  # this process's share of the pieces
        row = start
        for batch in reader.read_fragment(frag, names):
            n = batch.num_rows
            mine = train_mask[row : row + n]
            if not checked and text:
                check_text_columns(schema, batch, where)
                checked = True
            if numeric:
                block = _numeric_block(batch, numeric, where, row)[mine]
                moments.update(torch.from_numpy(block))
                if block.dtype.kind == "f":
                    for j in np.nonzero(np.isnan(block).any(axis=0))[0]:
                        first = int(np.nonzero(np.isnan(block[:, j]))[0][0])
                        first_missing.setdefault(numeric[j].name, row + int(np.nonzero(mine)[0][first]))
                if schema.impute == "median" and block.shape[0]:
                    reservoir, kept = _reservoir(reservoir, kept, block, rng)
            for c in text:
                values = pc.unique(as_text(batch.column(c.name)).filter(pa.array(mine))).drop_null().to_pylist()
                seen[c.name].update(values)
                if len(seen[c.name]) > MAX_CATEGORIES:
                    raise UserInputError(f"{where}: text column {c.name!r} has over {MAX_CATEGORIES} distinct "
                                         f"values, too many to one-hot encode; leave it out with {spell('drop', [c.name])}.")
            row += n
    # every process's findings together (alone: its own)
    moments = comm.merge_moments(moments)
    shared = comm.gather(({k: sorted(v) for k, v in seen.items()}, first_missing,
                          np.concatenate(reservoir) if reservoir else None))
    seen = {c.name: set().union(*(part[0][c.name] for part in shared)) for c in text}
    first_missing = {}
    for _, missing, _ in shared:
        for name, row in missing.items():
            first_missing[name] = min(row, first_missing.get(name, row))
    samples = [part[2] for part in shared if part[2] is not None]
    reservoir = [np.concatenate(samples)] if samples else []
    n_train = int(train_mask.sum())
    for c in text:
        if n_train >= ID_ROWS and len(seen[c.name]) == n_train:
            raise UserInputError(f"{where}: text column {c.name!r} has a different value in every row (an "
                                 f"identifier?); leave it out with {spell('drop', [c.name])}.")
        c.categories = sorted(seen[c.name])
    if first_missing and schema.impute == "none":
        name, row = min(first_missing.items(), key=lambda item: item[1])
        raise UserInputError(f"{where}: column {name!r} has missing values (first in data row {row + 1}); "
                             f"fill them, drop the rows, or add {spell('impute', 'mean')} (or median, zero).")
    sample = np.concatenate(reservoir) if reservoir else None
    for j, c in enumerate(numeric):
        if c.name in first_missing:
            if schema.impute == "zero":
                c.fill = 0.0
            elif schema.impute == "mean":
                c.fill = float(moments.mean[j])
            else:
                known = sample[:, j][~np.isnan(sample[:, j])]
                c.fill = float(np.median(known)) if known.size else 0.0
    return moments


def _reservoir(parts: list[np.ndarray], kept: int, block: np.ndarray, rng) -> tuple[list[np.ndarray], int]:
    """Keep a uniform sample of at most RESERVOIR_ROWS rows (for medians of long streams)."""
    current = np.concatenate(parts + [block]) if parts else block
    kept += block.shape[0]
    if current.shape[0] > RESERVOIR_ROWS:
        current = current[rng.choice(current.shape[0], RESERVOIR_ROWS, replace=False)]
    return [current], kept


def _table_preprocess(schema: TableSchema, moments: Moments, kind: str, n_train: int) -> Preprocess:
    pre = Preprocess(schema.n_features, kind)
    if kind != "standardize":
        return pre
    full = Moments(schema.n_features)
    at, j = 0, 0
    index = []
    for c in schema.columns:
        if c.kind == "numeric":
            index.append((at, j))
            j += 1
        at += c.width
    for at, j in index:
        full.count[at], full.mean[at], full.m2[at] = moments.count[j], moments.mean[j], moments.m2[j]
    if schema.impute != "none":  # missing entries get the fill value: they count, at no spread
        for (at, j), c in zip(index, [c for c in schema.columns if c.kind == "numeric"]):
            if c.fill is not None:
                missing = n_train - moments.count[j]
                delta = c.fill - full.mean[at]
                total = full.count[at] + missing
                full.m2[at] = full.m2[at] + delta * delta * full.count[at] * missing / total.clamp(min=1)
                full.mean[at] = full.mean[at] + delta * missing / total.clamp(min=1)
                full.count[at] = total
    return Preprocess.from_moments(full, schema.unscaled())


def _table_source(reader: TableReader, schema: TableSchema, pieces, codes: torch.Tensor, mask: np.ndarray,
                  where: str) -> StreamSource:
    names = [c.name for c in schema.columns]
    check = schema.impute == "none"

    def read(piece):
        frag, row, _ = piece
        for batch in reader.read_fragment(frag, names):
            n = batch.num_rows
            mine = mask[row : row + n]
            if mine.any():
                X = schema.encode(batch, where=where, first_row=row)
                if check and X.dtype.kind == "f" and np.isnan(X).any():
                    raise UserInputError(f"{where}: missing values appeared in data rows {row + 1}-{row + n}; "
                                         f"add {spell('impute', 'mean')} (or median, zero).")
                rows = torch.from_numpy(np.nonzero(mine)[0]) if not mine.all() else None
                X_t, y_t = torch.from_numpy(X), codes[row : row + n]
                yield (X_t, y_t) if rows is None else (X_t[rows], y_t[rows])
            row += n

    pieces = [p for p in pieces if mask[p[1] : p[1] + p[2]].any()]
    itemsize = schema.input_dtype().itemsize
    return StreamSource(pieces, read, int(mask.sum()), schema.n_features, schema.n_features * itemsize)
