"""Users' own tables: CSV or Parquet files with one label column and numeric features."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from softreg.data.base import Dataset, Split
from softreg.errors import UserInputError

LABEL_NAMES = ("label", "target", "class", "y")  # picked, case-insensitively, when --label is not given


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; a header is assumed when the first row is not all numbers."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: not a text CSV file; save the table as UTF-8 CSV.") from None
    except csv.Error as exc:
        raise UserInputError(f"{path}: malformed CSV ({exc}); check quoting and delimiters.") from None
    except OSError as exc:
        raise UserInputError(
            f"cannot read {path} ({exc.strerror or exc}); fix its permissions or copy it somewhere readable."
        ) from None
    if not rows:
        raise UserInputError(f"{path}: the file is empty; give a header and at least one row.")
    has_header = not all(_is_number(cell) for cell in rows[0])
    if has_header:
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    else:
        header = [f"c{i + 1}" for i in range(len(rows[0]))]
    if not rows:
        raise UserInputError(f"{path}: the file has a header but no data rows; add rows.")
    for number, row in enumerate(rows, start=2 if has_header else 1):
        if len(row) != len(header):
            raise UserInputError(
                f"{path}: row {number} has {len(row)} fields but the header has {len(header)}; "
                "every row needs one value per column."
            )
    return header, rows


def _read_parquet(path: Path) -> tuple[list[str], list[list]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserInputError(
            f"{path}: reading Parquet needs pyarrow; install it (pip install pyarrow) or use CSV."
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        detail = " ".join(str(exc).split())
        raise UserInputError(
            f"{path}: not a readable Parquet file ({detail}); write it again or export the table as CSV."
        ) from None
    header = list(table.column_names)
    columns = [table.column(name).to_pylist() for name in header]
    rows = [list(r) for r in zip(*columns)]
    if not rows:
        raise UserInputError(f"{path}: the table has no rows; give at least one.")
    return header, rows


def _pick_label(header: list[str], label: str | None, path: Path) -> int:
    if label is not None:
        if label in header:
            return header.index(label)
        raise UserInputError(
            f"{path}: no column named {label!r}; columns are {', '.join(header)}. "
            "Pass one of them with --label."
        )
    lowered = [h.lower() for h in header]
    for name in LABEL_NAMES:
        if name in lowered:
            return lowered.index(name)
    return len(header) - 1


def _class_names(values: list) -> list[str]:
    texts = sorted({str(v).strip() for v in values})
    if all(_is_number(t) for t in texts):
        texts.sort(key=float)
    return texts


def load_table(
    path: str | Path, label: str | None = None, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Read a CSV or Parquet table into a Dataset.

    The label column is ``label`` when given, else the first column named label,
    target, class or y, else the last column. Labels may be any text or numbers;
    classes are their sorted distinct values. A stratified ``test_fraction`` of
    the rows (fixed by ``seed``) is held out as the test split.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file; check the path given to --data.")
    if not 0.0 <= test_fraction < 1.0:
        raise UserInputError(f"test fraction must be in [0, 1); got {test_fraction}.")
    header, rows = _read_parquet(path) if path.suffix.lower() == ".parquet" else _read_csv(path)
    if len(header) < 2:
        raise UserInputError(f"{path}: found one column; a table needs features and a label column.")
    label_col = _pick_label(header, label, path)
    feature_cols = [i for i in range(len(header)) if i != label_col]
    labels = [row[label_col] for row in rows]
    if any(v is None or str(v).strip() == "" for v in labels):
        row = next(i for i, v in enumerate(labels) if v is None or str(v).strip() == "")
        raise UserInputError(f"{path}: data row {row + 1} has no label; fill it in or drop the row.")
    X = np.empty((len(rows), len(feature_cols)), dtype=np.float32)
    for r, row in enumerate(rows):
        for j, c in enumerate(feature_cols):
            value = row[c]
            try:
                X[r, j] = float(value) if value is not None and str(value).strip() != "" else math.nan
            except (TypeError, ValueError):
                raise UserInputError(
                    f"{path}: column {header[c]!r}, data row {r + 1} holds {value!r}, not a number; "
                    "features must be numeric (encode text columns first)."
                ) from None
    if not np.isfinite(X).all():
        r, j = np.argwhere(~np.isfinite(X))[0]
        raise UserInputError(
            f"{path}: column {header[feature_cols[j]]!r}, data row {r + 1} is missing, NaN or "
            "infinite; impute or drop such rows first."
        )
    classes = _class_names(labels)
    index = {name: i for i, name in enumerate(classes)}
    y = np.array([index[str(v).strip()] for v in labels], dtype=np.int64)
    train_idx, test_idx = _split(y, test_fraction, seed)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    return Dataset(
        name=path.name,
        train=Split(X_t[train_idx], y_t[train_idx]),
        test=Split(X_t[test_idx], y_t[test_idx]) if len(test_idx) else None,
        classes=classes,
        source=str(path.resolve()),
        feature_names=[header[c] for c in feature_cols],
    ).validate()


def _split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified when every class has two rows or more, else a plain random split."""
    n = len(y)
    n_test = int(round(n * test_fraction))
    if n_test == 0 or n - n_test < 1:
        return np.arange(n), np.arange(0)
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and n_test >= len(counts[counts > 0]) else None
    return train_test_split(np.arange(n), test_size=n_test, random_state=seed, stratify=stratify)
