"""LIBSVM / svmlight files: reading them into sparse rows, their feature numbering, and their lines.

svmlight / LIBSVM text is one sample per line: ``<label> <index>:<value> <index>:<value> ...``
with ascending indices, ``#`` comments allowed. LIBSVM counts features from 1; a file that uses
index 0 counts from 0 (scikit-learn writes such files). Files are parsed by scikit-learn's
``load_svmlight_file`` (compiled, fast); the base is decided once, for the training file and its
test file together, and stored with the model, so prediction reads indices the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from softreg.models.sparse import from_scipy, row_range
from softreg.errors import UserInputError

SVMLIGHT_SUFFIXES = (".svm", ".svmlight", ".libsvm")  # also with .gz / .bz2
COMPRESSED = (".gz", ".bz2")


def is_svmlight(path: str | Path) -> bool:
    """Whether a file name says svmlight / LIBSVM (.svm, .svmlight, .libsvm, optionally .gz / .bz2)."""
    name = Path(path).name.lower()
    for suffix in COMPRESSED:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.endswith(SVMLIGHT_SUFFIXES)


def class_name(value: float) -> str:
    """A numeric svmlight label as a class name: 1.0 -> "1", -1.0 -> "-1", 0.5 -> "0.5"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def read_svmlight(paths: list[str | Path], index_base: int | None = None,
                  n_features: int | None = None) -> tuple[list, int]:
    """Parse svmlight files: ([(SciPy CSR X with features counted from 0, float labels)], index base).

    index_base : 0 or 1, the index of the first feature; None decides from the files (0 when
        some file uses index 0, else LIBSVM's 1).
    n_features : the model's number of features (a larger index is an error); None = the
        largest index found, over all the files.
    Raises UserInputError naming the file, the line and the fix for a malformed file.
    """
    from sklearn.datasets import load_svmlight_file

    found = []
    for path in map(Path, paths):
        if not path.is_file():
            raise UserInputError(f"{path}: no such svmlight file; give the path of a .svm file.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                X, y = load_svmlight_file(str(path), zero_based=True, dtype=np.float32)
        except (ValueError, RuntimeError, OSError, EOFError) as exc:
            raise UserInputError(_malformed(path, exc)) from None
        found.append((X, y, path))
    if index_base is None:
        index_base = 0 if any(X.nnz and int(X.indices.min()) == 0 for X, _, _ in found) else 1
    width = n_features if n_features is not None else max(max(X.shape[1] for X, _, _ in found) - index_base, 0)
    return [(rebase(X, index_base, width, path), y) for X, y, path in found], index_base


def rebase(X, index_base: int, width: int, where) -> object:
    """SciPy CSR X with raw file indices -> features counted from 0, ``width`` columns; an index
    below the base or past the width is a UserInputError."""
    import scipy.sparse as sp

    if X.nnz and int(X.indices.min()) < index_base:
        raise UserInputError(f"{where}: feature index 0 appears, but this model counts features from "
                             f"{index_base} (LIBSVM's convention); number features as the training file does.")
    if X.nnz and int(X.indices.max()) - index_base >= width:
        raise UserInputError(
            f"{where}: feature index {int(X.indices.max())} is beyond the model's {width} features "
            f"(indices {index_base} to {width - 1 + index_base}); score data made with the training "
            "data's feature numbering (the same vocabulary or hashing).")
    indices = X.indices - index_base if index_base else X.indices
    return sp.csr_matrix((X.data, indices, X.indptr), shape=(X.shape[0], width))


def _malformed(path: Path, exc: Exception) -> str:
    """The message for a file scikit-learn's reader rejected, naming the first bad line when found."""
    detail = " ".join(str(exc).split())[:160]
    line = first_bad_line(path)
    where = f"line {line[0]}: {line[1]}" if line else detail
    return (f"{path}: not a valid svmlight / LIBSVM file ({where}); each line must read "
            "'<label> <index>:<value> ...' with increasing integer indices, e.g. '1 3:0.5 17:2'.")


def first_bad_line(path: Path, limit: int = 10_000_000) -> tuple[int, str] | None:
    """(line number, why) of the first line that is not '<label> <index>:<value> ...', or None."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", errors="replace") as f:
            for number, text in enumerate(f, 1):
                if number > limit:
                    return None
                why = line_problem(text)
                if why:
                    return number, why
    except (OSError, EOFError) as exc:
        return 1, f"cannot be read ({exc})"
    return None


def line_problem(text: str) -> str | None:
    """Why one svmlight line is malformed, or None when it is fine (or blank / a comment)."""
    body = text.split("#", 1)[0].split()
    if not body:
        return None
    label, *pairs = body
    try:
        float(label)
    except ValueError:
        if "," in label:
            return f"multi-label line {label!r} (one label per line is supported)"
        return f"label {label!r} is not a number"
    last = -1
    for pair in pairs:
        if pair.startswith("qid:"):
            continue
        index, sep, value = pair.partition(":")
        if not sep or not index.isdigit():
            return f"{pair!r} is not <index>:<value>"
        try:
            float(value)
        except ValueError:
            return f"value {value!r} of feature {index} is not a number"
        if int(index) <= last:
            return f"feature index {index} does not increase (after {last})"
        last = int(index)
    return None


def parse_pairs(row, index_base: int, n_features: int, what: str = "row") -> tuple[np.ndarray, np.ndarray]:
    """One sparse row, "index:value index:value ..." text (spaces or commas between pairs) or a
    mapping {index: value}, as (columns counted from 0, sorted (k,) int64; values (k,) float64).

    Indices are counted as in the model's training file (from ``index_base``); an index outside
    the model's features, a repeated index or a value that is not a finite number is a
    UserInputError naming it.
    """
    import math
    from collections.abc import Mapping

    if isinstance(row, Mapping):
        items = list(row.items())
    elif isinstance(row, str):
        items = []
        for pair in row.replace(",", " ").split():
            index, sep, value = pair.partition(":")
            if not sep:
                raise UserInputError(f"{what}: {pair!r} is not index:value; give pairs such as '3:0.5 17:2' "
                                     f"(features counted from {index_base}).")
            items.append((index, value))
    else:
        raise UserInputError(f"{what}: a sparse model takes 'index:value ...' text or a mapping {{index: value}}; "
                             f"got {type(row).__name__}.")
    cols, vals = np.empty(len(items), dtype=np.int64), np.empty(len(items), dtype=np.float64)
    last = index_base + n_features - 1
    for k, (index, value) in enumerate(items):
        try:
            i = int(index)
            if isinstance(index, float) or str(index).strip() != str(i):
                raise ValueError
        except (TypeError, ValueError):
            raise UserInputError(f"{what}: feature index {index!r} is not an integer; give pairs such as "
                                 "'3:0.5 17:2'.") from None
        if not index_base <= i <= last:
            raise UserInputError(f"{what}: feature index {i} is outside the model's features {index_base} to "
                                 f"{last}; use the training data's feature numbering.")
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if isinstance(value, bool) or not math.isfinite(v):
            raise UserInputError(f"{what}: feature {i} has value {value!r}; give a finite number.")
        cols[k], vals[k] = i - index_base, v
    order = np.argsort(cols, kind="stable")
    cols, vals = cols[order], vals[order]
    repeated = cols[1:][cols[1:] == cols[:-1]]
    if repeated.size:
        raise UserInputError(f"{what}: feature index {int(repeated[0]) + index_base} is given twice; give each "
                             "feature once.")
    return cols, vals


def load_svmlight(path: str | Path, *, test: str | Path | None = None, test_fraction: float = 0.2, seed: int = 0,
                  index_base: int | None = None, n_features: int | None = None):
    """An svmlight / LIBSVM file as an in-memory Dataset whose rows stay sparse (CSR tensors).

    Classes are the file's distinct labels, sorted by value. The test split is the file ``test``
    (same feature numbering, labels among the training file's) when given, else a stratified
    ``test_fraction`` of the rows, fixed by ``seed``. ``index_base`` and ``n_features`` fix the
    feature numbering (a model's); by default it comes from the files.
    """
    from softreg.data.base import Dataset, Split
    from softreg.data.split import stratified_split

    path = Path(path)
    files = [path] if test is None else [path, Path(test)]
    parsed, base = read_svmlight(files, index_base, n_features)
    X, labels = parsed[0]
    if X.shape[0] == 0:
        raise UserInputError(f"{path}: the file has no samples; give at least one line '<label> <index>:<value> ...'.")
    values = np.unique(labels)
    classes = [class_name(v) for v in values]
    codes = np.searchsorted(values, labels).astype(np.int64)
    notes = []
    if test is None:
        train_rows, test_rows = stratified_split(codes, test_fraction, seed)
        test_split = Split(from_scipy(X[test_rows]), torch.from_numpy(codes[test_rows])) if len(test_rows) else None
        X, codes = X[train_rows], codes[train_rows]
    else:
        X_test, test_labels = parsed[1]
        unknown = np.setdiff1d(test_labels, values)
        if unknown.size:
            shown = ", ".join(class_name(v) for v in unknown[:5])
            raise UserInputError(f"{test}: label(s) {shown} do not occur in {path.name} (classes "
                                 f"{', '.join(classes[:10])}); use a test file labelled like the training file.")
        test_split = Split(from_scipy(X_test), torch.from_numpy(np.searchsorted(values, test_labels).astype(np.int64)))
        notes.append(f"test split: {test}")
    data = Dataset(name=path.name, train=Split(from_scipy(X), torch.from_numpy(codes)), test=test_split,
                   classes=classes, origin=str(path.resolve()), notes=notes, index_base=base)
    return data.validate()


def load_scoring_svmlight(path: str | Path, expected, labelled: bool = True):
    """A whole svmlight file, read with a sparse model's feature numbering (``expected``: a
    softreg.data.Expected), as the test split of a Dataset with the model's classes (labels outside
    them are an error; without ``labelled`` the labels are not read: every line's first value is a
    placeholder)."""
    from softreg.data.base import Dataset, Split

    if not is_svmlight(path):
        raise UserInputError(f"{path}: this model was trained on svmlight data; score an svmlight file "
                             "(.svm, .svmlight, .libsvm, optionally .gz).")
    [(X, labels)], base = read_svmlight([path], expected.index_base, expected.n_features)
    classes = list(expected.classes)
    names = np.array([class_name(v) for v in labels] if labelled else [], dtype=object)
    known = {c: k for k, c in enumerate(classes)}
    unknown = sorted({str(n) for n in names if n not in known})
    if unknown:
        raise UserInputError(f"{path}: label(s) {', '.join(unknown[:5])} are not among the model's classes "
                             f"{', '.join(classes[:10])}; score data labelled like the training data.")
    y = torch.tensor([known[n] for n in names], dtype=torch.int64) if labelled else torch.zeros(len(labels), dtype=torch.int64)
    rows = from_scipy(X)
    if not bool(torch.isfinite(rows.values()).all()):
        raise UserInputError(f"{path}: the features contain NaN or infinite values; remove or impute them.")
    return Dataset(name=Path(path).name, train=Split(row_range(rows, 0, 0), y[:0]), test=Split(rows, y),
                   classes=classes, origin=str(Path(path).resolve()), index_base=base)
