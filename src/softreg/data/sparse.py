"""Sparse rows as torch CSR tensors (build, gather, slice, join, scale) and LIBSVM / svmlight files.

A sparse split holds its rows as one ``torch.sparse_csr`` tensor of shape (N, F): ``crow`` (N + 1,),
``col`` (nnz,) and ``val`` (nnz,), int64 indices (torch's sparse x dense products run about twice
as fast with them as with int32 on CPU). Every helper here works on whatever device the tensor is
on (CPU or CUDA): row gathers are index arithmetic, never a Python loop over rows.

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

from softreg.errors import UserInputError

SVMLIGHT_SUFFIXES = (".svm", ".svmlight", ".libsvm")  # also with .gz / .bz2
COMPRESSED = (".gz", ".bz2")
_built_one = False  # torch warns once per process that sparse CSR is "beta"; that line is not for users


def is_sparse(X) -> bool:
    """Whether X is a torch sparse CSR tensor."""
    return isinstance(X, torch.Tensor) and X.layout == torch.sparse_csr


def csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A CSR tensor from its parts (trusted: sorted, in range), without torch's beta notice."""
    global _built_one
    if _built_one:
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)
    _built_one = True
    return X


def parts(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(crow, col, val) of a CSR tensor."""
    return X.crow_indices(), X.col_indices(), X.values()


def from_scipy(X, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """A SciPy sparse matrix (any format) as a CSR tensor with int64 indices, duplicates summed."""
    import scipy.sparse as sp

    X = sp.csr_matrix(X)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()  # also sorts each row's indices
    crow = torch.from_numpy(np.asarray(X.indptr, dtype=np.int64))
    col = torch.from_numpy(np.asarray(X.indices, dtype=np.int64))
    val = torch.from_numpy(np.asarray(X.data)).to(dtype)
    return csr(crow.to(device), col.to(device), val.to(device), X.shape)


def to_scipy(X: torch.Tensor):
    """A CSR tensor as a SciPy CSR matrix (on the CPU)."""
    import scipy.sparse as sp

    crow, col, val = (t.cpu().numpy() for t in parts(X))
    return sp.csr_matrix((val, col, crow), shape=tuple(X.shape))


def take_rows(X: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` (b,) of a dense tensor or a CSR tensor, in that order.

    For CSR: each output row i copies the entries crow[rows[i]] .. crow[rows[i] + 1] - 1; the
    positions of all of them come from one repeat_interleave (no loop over rows).
    """
    if not is_sparse(X):
        return X.index_select(0, rows)
    crow, col, val = parts(X)
    if crow.device.type == "cpu":  # the same arithmetic in NumPy: fewer, cheaper calls (BENCHMARKS.md)
        c, r = crow.numpy(), rows.numpy()
        starts = c[r]
        counts = c[r + 1] - starts
        new_crow = np.zeros(len(r) + 1, dtype=np.int64)
        np.cumsum(counts, out=new_crow[1:])
        pos = np.repeat(starts - new_crow[:-1], counts)
        pos += np.arange(len(pos))
        return csr(torch.from_numpy(new_crow), torch.from_numpy(col.numpy()[pos]), torch.from_numpy(val.numpy()[pos]),
                   (len(r), X.shape[1]))
    rows = rows.to(crow.device)
    starts = crow[rows]
    counts = crow[rows + 1] - starts
    new_crow = torch.zeros(rows.shape[0] + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(counts, 0, out=new_crow[1:])
    total = int(new_crow[-1])
    # entry k of output row i sits at starts[i] + (k - new_crow[i])
    pos = torch.repeat_interleave(starts - new_crow[:-1], counts, output_size=total)
    pos += torch.arange(total, device=crow.device)
    return csr(new_crow, col[pos], val[pos], (rows.shape[0], X.shape[1]))


def row_range(X: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of a dense tensor (a view) or a CSR tensor (its index arrays' views)."""
    if not is_sparse(X):
        return X[start:stop]
    crow, col, val = parts(X)
    stop = max(start, min(stop, X.shape[0]))
    a, b = int(crow[start]), int(crow[stop])
    return csr(crow[start : stop + 1] - a, col[a:b], val[a:b], (stop - start, X.shape[1]))


def row_chunks(X: torch.Tensor, size: int):
    """Row chunks of up to ``size`` rows, dense or CSR."""
    for start in range(0, X.shape[0], size):
        yield row_range(X, start, start + size)


def cat_rows(blocks: list[torch.Tensor]) -> torch.Tensor:
    """Blocks of rows one after the other (dense: torch.cat; CSR: index arrays joined)."""
    if len(blocks) == 1:
        return blocks[0]
    if not is_sparse(blocks[0]):
        return torch.cat(blocks)
    crows, cols, vals, offset = [blocks[0].crow_indices()[:1]], [], [], 0
    for block in blocks:
        crow, col, val = parts(block)
        crows.append(crow[1:] + offset)
        cols.append(col)
        vals.append(val)
        offset += int(crow[-1])
    n = sum(b.shape[0] for b in blocks)
    return csr(torch.cat(crows), torch.cat(cols), torch.cat(vals), (n, blocks[0].shape[1]))


def with_values(X: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
    """The same sparsity pattern with other values."""
    crow, col, _ = parts(X)
    return csr(crow, col, val, tuple(X.shape))


def scale_columns(X: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """X * scale per column (F,), as CSR: zeros stay zeros."""
    _, col, val = parts(X)
    return with_values(X, val.to(scale.dtype) * scale[col])


def column_sums(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum, sum of squares) of each column of a CSR tensor, in float64, shape (F,) each."""
    _, col, val = parts(X)
    v = val.to(torch.float64)
    total = torch.zeros(X.shape[1], dtype=torch.float64, device=v.device)
    squares = torch.zeros_like(total)
    total.index_add_(0, col, v)
    squares.index_add_(0, col, v * v)
    return total, squares


def t_mm(X: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """X^T D for CSR rows X (B, F) and dense D (B, K): dense (F, K), row-major.

    On the CPU through SciPy's compiled kernel over views of X's arrays (no copy): about ten
    times faster here than torch's product with the transposed (CSC) view, the only sparse
    product torch has for X^T (BENCHMARKS.md). Elsewhere (CUDA) through torch's.
    """
    if X.device.type != "cpu":
        return torch.mm(X.t(), D)
    import scipy.sparse as sp

    crow, col, val = parts(X)
    A = sp.csr_matrix((val.numpy(), col.numpy(), crow.numpy()), shape=tuple(X.shape))
    D = D.detach().contiguous()
    return torch.from_numpy(np.asarray(A.T @ D.numpy().astype(A.dtype, copy=False)))


# -- svmlight / LIBSVM files ------------------------------------------------------------------------


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
    from softreg.data.tables import stratified_split

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
                   classes=classes, source=str(path.resolve()), notes=notes, index_base=base)
    return data.validate()


def load_scoring_svmlight(path: str | Path, run, labelled: bool = True):
    """A whole svmlight file, read with a sparse run's feature numbering, as the test split of a
    Dataset with the run's classes (labels outside them are an error; without ``labelled`` the
    labels are not read: every line's first value is a placeholder)."""
    from softreg.data.base import Dataset, Split

    if not is_svmlight(path):
        raise UserInputError(f"{path}: this model was trained on svmlight data; score an svmlight file "
                             "(.svm, .svmlight, .libsvm, optionally .gz).")
    mc = run.model_config
    [(X, labels)], base = read_svmlight([path], mc.index_base, mc.n_features)
    classes = [str(c) for c in run.data["classes"]]
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
                   classes=classes, source=str(Path(path).resolve()), index_base=base)
