"""A table's schema as a model stores it: which columns are features, how each becomes numbers.

Numeric columns (integers, floats, booleans, dates and times as numbers) are copied; text and
categorical columns are one-hot encoded over the categories seen in the training rows (an unseen
category, or a missing one, is all zeros); missing numeric values are an error unless an
imputation value was fitted (``--impute mean|median|zero``). Columns are matched by name, so a
table with the same columns in another order, or with extra columns, is encoded the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from softreg.data.tables.csvfile import is_number
from softreg.errors import UserInputError
from softreg.settings import spell


def arrow_numpy(values) -> np.ndarray:
    """An Arrow Array or ChunkedArray as a NumPy array, nulls as NaN (or None for objects): a copy only
    where Arrow needs one. (pyarrow < 13's ChunkedArray.to_numpy takes no arguments and copies.)"""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.to_numpy(zero_copy_only=False)

MAX_CATEGORIES = 10_000  # more distinct values than this in a text column is an error, not 10k features


@dataclass
class Column:
    """One feature column: ``kind`` numeric or categorical; ``type`` the Arrow type it was read as."""

    name: str
    kind: str
    type: str
    categories: list[str] | None = None  # categorical: the one-hot columns, in order
    fill: float | None = None  # numeric: the value a missing entry gets (None = missing is an error)

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "categorical" else 1


@dataclass
class TableSchema:
    """Label column, feature columns in order, and how missing values are handled."""

    label: str
    columns: list[Column] = field(default_factory=list)
    impute: str = "none"  # none | mean | median | zero

    @property
    def n_features(self) -> int:
        return sum(c.width for c in self.columns)

    def feature_names(self) -> list[str]:
        names: list[str] = []
        for c in self.columns:
            names += [f"{c.name}={v}" for v in c.categories] if c.kind == "categorical" else [c.name]
        return names

    def unscaled(self) -> list[int]:
        """Indices of one-hot features (standardisation leaves them 0 / 1)."""
        out, at = [], 0
        for c in self.columns:
            if c.kind == "categorical":
                out += list(range(at, at + c.width))
            at += c.width
        return out

    def input_dtype(self) -> np.dtype:
        """uint8 when every feature is a uint8 column with nothing to fill (pixel tables), else float32."""
        if self.columns and all(c.kind == "numeric" and c.type == "uint8" for c in self.columns):
            return np.dtype(np.uint8)
        return np.dtype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> "TableSchema":
        try:
            columns = [Column(**c) for c in doc["columns"]]
            return cls(label=str(doc["label"]), columns=columns, impute=str(doc.get("impute", "none")))
        except (KeyError, TypeError) as exc:
            raise UserInputError(f"the stored table schema is damaged ({exc}); train the run again.") from None

    def decode(self, row) -> dict:
        """One encoded row (n_features,) as raw column values, the inverse of ``encode``: a number as it
        is, a one-hot block as its category (None for all zeros: a value not seen in training)."""
        values = [float(v) for v in row]
        out, at = {}, 0
        for c in self.columns:
            if c.kind == "categorical":
                block = values[at : at + c.width]
                out[c.name] = c.categories[block.index(1.0)] if 1.0 in block else None
            else:
                out[c.name] = values[at]
            at += c.width
        return out

    def check_columns(self, names: list[str], where: str) -> list[str]:
        """Raise when a feature column is missing; return the extra column names (ignored)."""
        have = set(names)
        missing = [c.name for c in self.columns if c.name not in have]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise UserInputError(
                f"{where}: column(s) {shown} that the model was trained on are missing; give a table with "
                f"the training columns ({len(self.columns)} features, matched by name)."
            )
        used = {c.name for c in self.columns} | {self.label}
        return [n for n in names if n not in used]

    def encode(self, batch, out: np.ndarray | None = None, where: str = "the table", first_row: int = 0) -> np.ndarray:
        """Features of an Arrow RecordBatch / Table as an (n, n_features) array (``input_dtype``);
        with ``out``, columns the batch does not hold are left as they are in ``out``.

        Missing numeric values are filled with the fitted value, or left as NaN when none was
        fitted (``fill_missing`` reports them); ``first_row`` numbers rows in messages.
        """
        import pyarrow.compute as pc

        n = batch.num_rows
        if out is None:
            out = np.empty((n, self.n_features), dtype=self.input_dtype())
        present = set(batch.schema.names)
        at = 0
        for c in self.columns:
            if c.name not in present:  # a part of a table read a few columns at a time: the others come apart
                at += c.width
                continue
            data = batch.column(c.name)
            if c.kind == "categorical":
                block = out[:, at : at + c.width]
                block[:] = 0
                index = pc.index_in(as_text(data), value_set=_value_set(c))
                codes = arrow_numpy(index)
                known = ~np.isnan(codes) if codes.dtype.kind == "f" else np.ones(n, bool)
                rows = np.nonzero(known)[0]
                block[rows, codes[rows].astype(np.int64)] = 1
            else:
                out[:, at] = numeric_values(data, c, where, first_row)
            at += c.width
        return out


def as_text(data):
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(data.type):
        data = data.cast(data.type.value_type)
    if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        data = pc.cast(data, pa.string())
    return data


def _value_set(column: Column):
    """The column's categories as an Arrow array, made once per column."""
    import pyarrow as pa

    cached = getattr(column, "_arrow_categories", None)
    if cached is None or cached[0] is not column.categories:
        cached = (column.categories, pa.array(column.categories, type=pa.string()))
        column._arrow_categories = cached
    return cached[1]


def numeric_values(data, column: Column, where: str, first_row: int) -> np.ndarray:
    """One numeric column as float64 (dates and times as numbers); nulls filled or NaN."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(data.type):
        data = data.cast(data.type.value_type)
    if pa.types.is_date32(data.type):
        data = data.cast(pa.int32())  # days since 1970-01-01
    elif pa.types.is_date64(data.type) or pa.types.is_timestamp(data.type) or pa.types.is_time(data.type) \
            or pa.types.is_duration(data.type):
        data = data.cast(pa.int64())  # the unit of the column: ms, us, ns since the epoch
    elif pa.types.is_boolean(data.type):
        data = data.cast(pa.uint8())
    elif pa.types.is_decimal(data.type):
        data = data.cast(pa.float64())
    if pa.types.is_string(data.type) or pa.types.is_large_string(data.type):
        try:
            data = pc.cast(data, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise UserInputError(
                f"{where}: column {column.name!r} holds text where the model expects numbers; "
                "give the column as the training table had it."
            ) from None
    values = arrow_numpy(data)
    if values.dtype.kind not in "fiub":
        raise UserInputError(f"{where}: column {column.name!r} of type {data.type} cannot be read as numbers; "
                             f"leave it out with {spell('drop', [column.name])}.")
    if values.dtype.kind == "f":
        big = np.abs(values) > np.finfo(np.float32).max
        if big.any():
            row = int(np.nonzero(big)[0][0])
            value = float(values[row])
            why = "infinite" if np.isinf(value) else "beyond float32's range (3.4e38)"
            raise UserInputError(
                f"{where}: column {column.name!r}, data row {first_row + row + 1} holds {value!r}, {why}; "
                "replace or rescale the value."
            )
        if column.fill is not None:
            values = np.where(np.isnan(values), column.fill, values)
    return values


def fill_missing(X: np.ndarray, schema: TableSchema, train_rows: int, where: str) -> None:
    """Fit imputation values on the first ``train_rows`` rows and fill NaN in place; with
    impute 'none', a missing value is an error naming the column and row."""
    at = 0
    for c in schema.columns:
        if c.kind == "numeric" and X.dtype.kind == "f":
            col = X[:, at]
            missing = np.isnan(col)
            if missing.any():
                if schema.impute == "none":
                    row = int(np.nonzero(missing)[0][0])
                    raise UserInputError(
                        f"{where}: column {c.name!r} has missing values (first in data row {row + 1}); "
                        f"fill them, drop the rows, or add {spell('impute', 'mean')} (or median, zero)."
                    )
                if c.fill is None:
                    c.fill = impute_value(col[:train_rows], schema.impute, c.name, where)
                col[missing] = c.fill
        at += c.width


def impute_value(values: np.ndarray, how: str, name: str, where: str) -> float:
    known = values[~np.isnan(values)]
    if how == "zero":
        return 0.0
    if known.size == 0:
        raise UserInputError(f"{where}: column {name!r} has no values in the training rows to impute from; "
                             f"drop it with {spell('drop', [name])} or use {spell('impute', 'zero')}.")
    return float(np.mean(known, dtype=np.float64) if how == "mean" else np.median(known))


# -- inferring and fitting a table's schema ------------------------------------------------------

LABEL_NAMES = ("label", "target", "class", "y")  # picked, case-insensitively, when --label is not given


def _is_numeric_type(t) -> bool:
    import pyarrow as pa

    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)
            or pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_time(t) or pa.types.is_duration(t)
            or pa.types.is_null(t))


def _is_text_type(t) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def pick_label(names: list[str], label: str | None, where: str) -> str:
    if label is not None:
        if label in names:
            return label
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise UserInputError(f"{where}: no column named {label!r}; columns are {shown}. Pass one of them with {spell('label')}.")
    lowered = [n.lower() for n in names]
    for name in LABEL_NAMES:
        if name in lowered:
            return names[lowered.index(name)]
    return names[-1]


def infer_schema(reader, label: str | None = None, drop: list[str] | None = None,
                 columns: list[str] | None = None, impute: str = "none") -> TableSchema:
    """The label column and feature columns with their kinds (categories are fitted later)."""
    where = str(reader.path)
    names = reader.names
    if len(names) < 2:
        raise UserInputError(f"{where}: found one column; a table needs features and a label column.")
    label = pick_label(names, label, where)
    for option, given in ((spell("drop"), drop or []), (spell("columns"), columns or [])):
        unknown = [c for c in given if c not in names]
        if unknown:
            raise UserInputError(f"{where}: {option} names column(s) {', '.join(map(repr, unknown))} that the table "
                                 f"does not have; columns are {', '.join(names[:20])}.")
    features = [n for n in (columns if columns is not None else names) if n != label and n not in (drop or [])]
    if not features:
        raise UserInputError(f"{where}: no feature columns left besides the label {label!r}; keep at least one.")
    cols = []
    for name in features:
        t = reader.declared[name]  # as stored (CSV: as inferred from the first rows)
        if _is_numeric_type(t):
            cols.append(Column(name, "numeric", str(t)))
        elif _is_text_type(t):
            cols.append(Column(name, "categorical", "string"))
        else:
            raise UserInputError(f"{where}: column {name!r} has type {t}, which softreg cannot use as a feature; "
                                 f"leave it out with {spell('drop', [name])}.")
    return TableSchema(label=label, columns=cols, impute=impute)


def mostly_numbers_check(values, name: str, where: str) -> None:
    """A text column whose values are mostly numbers holds typos, not categories: say where."""
    sample = [v for v in values[:2000] if v is not None and str(v).strip()]
    if not sample:
        return
    bad = [v for v in sample if not is_number(str(v))]
    if bad and len(bad) <= 0.5 * len(sample):
        row = next(i for i, v in enumerate(values) if v is not None and str(v).strip() and not is_number(str(v)))
        raise UserInputError(f"{where}: column {name!r}, data row {row + 1} holds {bad[0]!r}, not a number, in a "
                             f"column of numbers; fix the value, or {spell('drop')} the column.")


def check_text_columns(schema: TableSchema, table, where: str) -> None:
    """Before fitting: a text column that is nearly all numbers holds a typo (say which cell)."""
    for c in schema.columns:
        if c.kind == "categorical":
            mostly_numbers_check(as_text(table.column(c.name)).to_pylist()[:2000], c.name, where)


def fit_categories(schema: TableSchema, table, where: str) -> None:
    """Set each categorical column's categories from the training rows in ``table``."""
    import pyarrow.compute as pc

    for c in schema.columns:
        if c.kind != "categorical":
            continue
        values = pc.unique(as_text(table.column(c.name))).drop_null().to_pylist()
        if len(values) > MAX_CATEGORIES:
            raise UserInputError(f"{where}: text column {c.name!r} has {len(values)} distinct values, too many to "
                                 f"one-hot encode (limit {MAX_CATEGORIES}); leave it out with {spell('drop', [c.name])}.")
        if table.num_rows >= ID_ROWS and len(values) == table.num_rows:
            raise UserInputError(f"{where}: text column {c.name!r} has a different value in every row (an "
                                 f"identifier?); leave it out with {spell('drop', [c.name])}.")
        c.categories = sorted(values)


ID_ROWS = 20  # tables at least this long are checked for identifier columns
