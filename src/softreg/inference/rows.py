"""Raw rows as a model's input: table rows with text columns, rows by feature name, sparse
"index:value" rows, and the messages that name a bad row (the parts of ``Predictor.encode_rows``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from softreg.errors import UserInputError


def sparse_rows(rows, index_base: int, n_features: int, label) -> torch.Tensor:
    """Rows of a sparse (svmlight) model as a CSR tensor (N, n_features); see ``Predictor.encode_sparse_rows``."""
    from softreg.models.sparse import csr, from_scipy, is_sparse
    from softreg.data.svmlight.files import parse_pairs

    label = label or (lambda i: f"row {i}")
    if is_sparse(rows) or hasattr(rows, "tocsr"):
        X = rows if is_sparse(rows) else from_scipy(rows)
        if X.shape[1] != n_features:
            raise UserInputError(f"rows have {X.shape[1]} features but the model expects {n_features}; "
                                 "use the training data's feature numbering.")
        return X.to(torch.float32) if X.dtype != torch.float32 else X
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise UserInputError("rows must be a non-empty list of rows, each 'index:value index:value ...' "
                             "text or a mapping {index: value}.")
    crow, cols, vals = [0], [], []
    for i, row in enumerate(rows):
        index, value = parse_pairs(row, index_base, n_features, label(i))
        cols.append(index)
        vals.append(value)
        crow.append(crow[-1] + len(index))
    col = torch.from_numpy(np.concatenate(cols)) if cols else torch.zeros(0, dtype=torch.int64)
    val = torch.from_numpy(np.concatenate(vals).astype(np.float32)) if vals else torch.zeros(0)
    return csr(torch.tensor(crow, dtype=torch.int64), col, val, (len(rows), n_features))


def encode_table_rows(schema, rows, label) -> torch.Tensor:
    """Rows of a table model: one raw value per column of the model's schema (a list in the
    schema's column order, or a mapping by column name); text columns are one-hot encoded,
    unseen values give all zeros, missing numbers are filled as in training or refused."""
    import pyarrow as pa

    columns = schema.columns
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise UserInputError(f"rows must be a non-empty list of rows, each with the {len(columns)} columns "
                             f"{', '.join(c.name for c in columns[:10])}.")
    values: list[list] = [[] for _ in columns]
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            missing = [c.name for c in columns if c.name not in row]
            if missing:
                raise UserInputError(f"{label(i)} lacks column(s) {', '.join(missing[:5])}; give every "
                                     f"column the model was trained on.")
            row = [row[c.name] for c in columns]
        elif isinstance(row, (str, bytes)) or not isinstance(row, (Sequence, np.ndarray)) or len(row) != len(columns):
            raise UserInputError(f"{label(i)} must hold {len(columns)} values, one per column: "
                                 f"{', '.join(c.name for c in columns[:10])}.")
        for j, (c, v) in enumerate(zip(columns, row)):
            values[j].append(_cell(c, v, label(i)))
    arrays = [pa.array(v, type=pa.float64() if c.kind == "numeric" else pa.string())
              for c, v in zip(columns, values)]
    X = schema.encode(pa.table(arrays, names=[c.name for c in columns]), where="the rows")
    if X.dtype.kind == "f" and np.isnan(X).any():
        i, j = (int(v) for v in np.argwhere(np.isnan(X))[0])
        raise UserInputError(f"{label(i)} has no value for {schema.feature_names()[j]!r} and the model "
                             "was trained without imputation; give a number.")
    return torch.from_numpy(X.astype(np.float32))

def _cell(column, value, what: str):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if column.kind == "categorical":
        return str(value).strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{what}: column {column.name!r} needs a number; got {value!r}.") from None
    if not np.isfinite(number):
        raise UserInputError(f"{what}: column {column.name!r} has {number}; give a finite number.")
    return number

def row_from_mapping(row: Mapping, feature_names: list[str] | None, n_features: int, what: str) -> list:
    """A row given as {feature name: value}, as a list in training order."""
    if feature_names is None:
        raise UserInputError(f"{what} names its features, but this run does not know feature names; "
                             f"give a list of {n_features} values in training order.")
    missing = [n for n in feature_names if n not in row]
    extra = [str(k) for k in row if k not in feature_names]
    if missing or extra:
        raise UserInputError(f"{what}: features do not match the model's: missing {missing[:5]}, "
                             f"unknown {extra[:5]}; give exactly {', '.join(feature_names[:10])}.")
    return [row[n] for n in feature_names]

def explain_bad_rows(rows, n_features: int, label) -> None:
    """Find the first bad row or value of ``rows`` and raise a message naming it."""
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, (Sequence, np.ndarray)):
            raise UserInputError(f"{label(i)} is not a list of numbers (got {type(row).__name__}); "
                                 f"give {n_features} feature values.")
        if len(row) != n_features:
            raise UserInputError(f"{label(i)} has {len(row)} values but the model expects "
                                 f"{n_features}; give one value per feature, in training order.")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                raise UserInputError(f"{label(i)} has {v!r} at position {j}; "
                                     "feature values must be numbers.")
    raise UserInputError(f"rows must be a list of rows of {n_features} numbers.")
