"""Sparse rows as torch CSR tensors: build, gather, slice, join, scale, and the products with them.

A sparse split holds its rows as one ``torch.sparse_csr`` tensor of shape (N, F): ``crow`` (N + 1,),
``col`` (nnz,) and ``val`` (nnz,), with int32 indices when they fit (half the memory of int64, and
torch's product with a feature-major weight runs as fast: BENCHMARKS.md). Every helper here works
on whatever device the tensor is on (CPU or CUDA): row gathers are index arithmetic, never a
Python loop over rows. Files of
sparse rows: softreg.data.svmlight.files.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


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
    """A SciPy sparse matrix (any format) as a CSR tensor, duplicates summed; int32 indices when
    the non-zeros and the columns fit, else int64."""
    import scipy.sparse as sp

    X = sp.csr_matrix(X)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()  # also sorts each row's indices
    index = np.int32 if max(X.nnz, *X.shape) < np.iinfo(np.int32).max else np.int64
    crow = torch.from_numpy(np.asarray(X.indptr, dtype=index))
    col = torch.from_numpy(np.asarray(X.indices, dtype=index))
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
    positions of all of them come from one repeat (no loop over rows). On the CPU the same
    arithmetic runs in NumPy (half the time of the torch calls here: BENCHMARKS.md).
    """
    if not is_sparse(X):
        return X.index_select(0, rows)
    if X.device.type == "cpu":
        return _take_rows_numpy(X, rows)
    return _take_rows_torch(X, rows)


def _take_rows_numpy(X: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    crow, col, val = (t.numpy() for t in parts(X))
    r = rows.numpy()
    starts = crow[r]
    counts = crow[r + 1] - starts
    new_crow = np.zeros(len(r) + 1, dtype=crow.dtype)
    np.cumsum(counts, out=new_crow[1:])
    pos = np.repeat((starts - new_crow[:-1]).astype(np.int64), counts)  # entry k of row i: starts[i] + k - new_crow[i]
    pos += np.arange(len(pos))
    return csr(torch.from_numpy(new_crow), torch.from_numpy(col[pos]), torch.from_numpy(val[pos]), (len(r), X.shape[1]))


def _take_rows_torch(X: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    crow, col, val = parts(X)
    rows = rows.to(crow.device)
    starts = crow[rows]
    counts = crow[rows + 1] - starts
    new_crow = torch.zeros(rows.shape[0] + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(counts, 0, out=new_crow[1:])
    total = int(new_crow[-1])
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


CHUNK_ROWS = 8192  # rows scored or fitted at once: bounds the memory of a pass over a large split


def row_chunks(X: torch.Tensor, size: int = CHUNK_ROWS):
    """Row chunks of up to ``size`` rows, dense or CSR (views: no copy). Every pass over the rows of an
    in-memory split (scoring, fitting the preprocessing) goes through here."""
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


def sparse_preprocess(requested: str) -> str:
    """The preprocessing sparse rows get for ``--preprocess requested``: as they are for auto (TF-IDF
    and hashed text come normalised; dividing columns by their spread blows rare features up),
    scale (each column divided by its spread, never centred: centring would fill every zero) for
    standardize or scale, else what was asked."""
    if requested == "auto":
        return "none"
    return "scale" if requested in ("standardize", "scale") else requested


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
        return _t_mm_torch(X, D)
    import scipy.sparse as sp

    crow, col, val = parts(X)
    A = sp.csr_matrix((val.numpy(), col.numpy(), crow.numpy()), shape=tuple(X.shape))
    D = D.detach().contiguous()
    return torch.from_numpy(np.asarray(A.T @ D.numpy().astype(A.dtype, copy=False)))


def _t_mm_torch(X: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    return torch.mm(X.t(), D.contiguous())


class SparseProduct:
    """``(X^T D)^T`` (K, F) for CSR rows X (B, F) and dense D (B, K), not formed: the weight gradient
    of a linear layer on sparse rows, as the updates receive it.

    Forming it costs a zeroed (F, K) temporary per update, filled at the batch's few columns and
    then read whole; with 20 x 74,731 weights that allocation and the passes over it took more
    than half of each update (BENCHMARKS.md, "Sparse text"). ``add_to`` adds it straight into the
    buffer it is headed for (SGD's velocity, or the weights), touching only the batch's columns.
    """

    def __init__(self, X: torch.Tensor, D: torch.Tensor):
        self.X, self.D = X, D.contiguous()
        self.shape = torch.Size((D.shape[1], X.shape[1]))

    def dense(self) -> torch.Tensor:
        """The product formed: (K, F), a view of (F, K) row-major storage."""
        return t_mm(self.X, self.D).t()

    def add_to(self, out: torch.Tensor, alpha: float = 1.0) -> None:
        """``out += alpha * (X^T D)^T`` in place, for ``out`` (K, F). On the CPU, with ``out``
        feature-major (a sparse model's weight layout) and matching dtypes, SciPy's compiled
        accumulating kernel writes into ``out`` directly; otherwise the product is formed and added."""
        kernel = _accumulate_kernel()
        crow, col, val = parts(self.X)
        target = out.t()  # (F, K)
        if (kernel is None or out.device.type != "cpu" or not target.is_contiguous() or val.dtype != out.dtype
                or crow.dtype != col.dtype):
            out.add_(self.dense(), alpha=alpha)
            return
        D = (self.D if alpha == 1.0 else self.D * alpha).to(out.dtype).contiguous()
        F, K = target.shape
        kernel(F, self.X.shape[0], K, crow.numpy(), col.numpy(), val.numpy(), D.numpy().reshape(-1),
               target.numpy().reshape(-1))


def densify(gradient) -> torch.Tensor:
    """A gradient as a tensor: a ``SparseProduct`` formed, a tensor as it is."""
    return gradient.dense() if isinstance(gradient, SparseProduct) else gradient


def _accumulate_kernel():
    """SciPy's ``Y += A X`` for A in CSC form (the transpose of CSR rows): ``csc_matvecs(n_row, n_col,
    n_vecs, indptr, indices, data, X, Y)``, from its compiled sparse tools; None where a SciPy
    version lacks it (the product is then formed and added: same result, slower)."""
    try:
        from scipy.sparse import _sparsetools
    except ImportError:
        return None
    return getattr(_sparsetools, "csc_matvecs", None)
