"""Feature scaling stored with a model: fitted in one pass over chunks of the training rows.

``Preprocess`` maps raw inputs to ``(x - shift) * scale`` per feature (``scale`` kind: shift 0,
so sparse rows stay sparse). Its statistics are
accumulated chunk by chunk (``Moments``), so fitting never needs the whole training split in
memory, and partial statistics from several processes merge exactly (Chan et al.'s pairwise
update), so every process applies the transform one process would have fitted.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from softreg import settings as S
from softreg.settings import spell
from softreg.errors import UserInputError



class Moments:
    """Per-feature count, mean and sum of squared deviations, in float64; missing values (NaN)
    are left out of their feature's statistics."""

    def __init__(self, n_features: int):
        self.count = torch.zeros(n_features, dtype=torch.float64)
        self.mean = torch.zeros(n_features, dtype=torch.float64)
        self.m2 = torch.zeros(n_features, dtype=torch.float64)

    def update(self, chunk: torch.Tensor) -> "Moments":
        """Add rows of shape (n, F) (any dtype, dense or sparse CSR)."""
        if chunk.shape[0] == 0:
            return self
        if chunk.layout == torch.sparse_csr:
            return self.merge(self._sparse(chunk))
        x = chunk.reshape(chunk.shape[0], -1)
        part = Moments(x.shape[1])
        if x.is_floating_point() and bool(torch.isnan(x).any()):
            x = x.to(torch.float64)
            known = ~torch.isnan(x)
            part.count = known.sum(dim=0).to(torch.float64)
            filled = torch.where(known, x, torch.zeros((), dtype=torch.float64))
            part.mean = filled.sum(dim=0) / part.count.clamp(min=1)
            part.m2 = torch.where(known, (x - part.mean) ** 2, torch.zeros((), dtype=torch.float64)).sum(dim=0)
        else:
            # two passes over the chunk, both as matrix products (summing down the rows of a
            # row-major matrix with .sum(dim=0) is several times slower); float64 data stays float64
            xf = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)  # a copy we may overwrite
            if xf.data_ptr() == x.data_ptr():
                xf = xf.clone()
            ones = torch.ones(1, xf.shape[0], dtype=xf.dtype)
            mean = (ones @ xf).squeeze(0) / xf.shape[0]
            xf -= mean
            xf *= xf
            part.count.fill_(x.shape[0])
            part.mean = mean.to(torch.float64)
            part.m2 = (ones @ xf).squeeze(0).to(torch.float64)
        return self.merge(part)

    @staticmethod
    def _sparse(chunk: torch.Tensor) -> "Moments":
        """Statistics of CSR rows from column sums (the zeros count): m2 = sum x^2 - n mean^2, in
        float64 (sparse features are small counts or weights; the cancellation costs little)."""
        from softreg.models.sparse import column_sums

        total, squares = column_sums(chunk)
        n = chunk.shape[0]
        part = Moments(chunk.shape[1])
        part.count.fill_(n)
        part.mean = total.cpu() / n
        part.m2 = (squares.cpu() - total.cpu() * part.mean).clamp(min=0)
        return part

    def merge(self, other: "Moments") -> "Moments":
        """Combine with statistics of other rows (another chunk, or another process's share)."""
        n = self.count + other.count
        safe = n.clamp(min=1)
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / safe)
        self.m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / safe)
        self.count = n
        return self

    @property
    def std(self) -> torch.Tensor:
        """Population standard deviation (what StandardScaler uses)."""
        return (self.m2 / self.count.clamp(min=1)).clamp(min=0).sqrt()


def chunks_of(X: torch.Tensor, size: int | None = None) -> Iterable[torch.Tensor]:
    """Row chunks of an in-memory tensor, dense or sparse CSR (views: no copy)."""
    from softreg.models.sparse import CHUNK_ROWS, row_chunks

    return row_chunks(X, size or CHUNK_ROWS)


class Preprocess(nn.Module):
    """Flatten and rescale raw inputs: out = (x - shift) * scale, per feature.

    Fitted on the training split and saved with the weights, so evaluation and
    prediction see inputs scaled exactly as in training.

    kind ``none`` keeps values; ``pixels`` divides by the largest pixel value
    (255 for IDX images) to land in [0, 1]; ``standardize`` subtracts each
    feature's training mean and divides by its standard deviation (features
    listed in ``keep`` — one-hot columns of a table — are left as they are);
    ``scale`` only divides by the standard deviation (scikit-learn's
    ``StandardScaler(with_mean=False)``), so zeros stay zeros: what sparse data
    gets for ``standardize``.

    Sparse CSR inputs stay sparse through ``none``, ``pixels`` and ``scale``; a
    centring ``standardize`` makes its chunk dense (linear models never ask: they
    fold the transform into their layer).
    """

    def __init__(self, n_features: int, kind: str = "none"):
        super().__init__()
        if kind not in S.setting("preprocess").choices or kind == "auto":
            raise UserInputError(f"unknown preprocessing {kind!r}; choose one of none, pixels, standardize, scale.")
        self.kind = kind
        self.register_buffer("shift", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    @classmethod
    def fit(cls, kind: str, X: torch.Tensor, pixel_max: float | None, keep: list[int] | None = None) -> "Preprocess":
        """Fit on in-memory raw inputs X of shape (N, *sample_shape), in chunks."""
        n_features = 1
        for d in X.shape[1:]:
            n_features *= int(d)
        return cls.fit_chunks(kind, chunks_of(X), n_features, pixel_max, keep)

    @classmethod
    def fit_chunks(cls, kind: str, chunks: Iterable[torch.Tensor], n_features: int, pixel_max: float | None,
                   keep: list[int] | None = None, merge=None) -> "Preprocess":
        """Fit from an iterable of raw row chunks (N_i, F) in one pass.

        merge : optional function combining this process's Moments with the other
            processes' (distributed training); identity when None.
        """
        pre = cls(n_features, kind)
        if kind == "pixels":
            if not pixel_max:
                raise UserInputError(f"{spell('preprocess', 'pixels')} needs image data; use standardize or none for tables and "
                                     "svmlight files.")
            pre.scale.fill_(1.0 / pixel_max)
        elif kind in ("standardize", "scale"):
            moments = Moments(n_features)
            for chunk in chunks:
                moments.update(chunk)
            return cls.from_moments(moments, keep, merge, centre=kind == "standardize")
        return pre

    @classmethod
    def from_moments(cls, moments: Moments, keep: list[int] | None = None, merge=None,
                     centre: bool = True) -> "Preprocess":
        """Standardisation from accumulated statistics (``merge`` combines processes' shares);
        without ``centre``, the ``scale`` kind: divide by the standard deviation only."""
        if merge is not None:
            moments = merge(moments)
        pre = cls(moments.mean.shape[0], "standardize" if centre else "scale")
        std = moments.std
        shift = moments.mean.clone() if centre else torch.zeros_like(moments.mean)
        scale = torch.where(std > 0, 1.0 / std, torch.ones_like(std))
        if keep:
            shift[keep], scale[keep] = 0.0, 1.0
        pre.shift.copy_(shift)
        pre.scale.copy_(scale)
        return pre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.sparse_csr:
            return self._sparse(x)
        x = x.reshape(x.shape[0], -1).to(self.scale.dtype)  # (N, *shape) -> (N, F)
        if self.kind == "none":
            return x
        if self.kind in ("pixels", "scale"):
            return x * self.scale
        return (x - self.shift) * self.scale

    def _sparse(self, x: torch.Tensor) -> torch.Tensor:
        """CSR rows (N, F) -> CSR rows, except a centring standardize (dense (N, F))."""
        from softreg.models.sparse import scale_columns, with_values

        if self.kind == "standardize":
            return (x.to_dense().to(self.scale.dtype) - self.shift) * self.scale
        if self.kind == "none":
            return x if x.dtype == self.scale.dtype else with_values(x, x.values().to(self.scale.dtype))
        return scale_columns(x, self.scale)

    def foldable(self) -> bool:
        """Whether a linear layer may absorb this transform (W' = W * scale, b' = b - W' shift)
        without losing float precision: the shift is at most a few dozen standard deviations."""
        if self.kind != "standardize":
            return True
        return bool((self.shift.abs() * self.scale).max() <= FOLD_LIMIT) if self.shift.numel() else True

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


# |shift| * scale up to which folding keeps float32 gradients accurate to about 1e-5 relative
# (the cancellation in X^T R - shift r^T loses about log2 of this ratio in bits).
FOLD_LIMIT = 64.0
