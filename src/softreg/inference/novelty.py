"""How far an input lies from the training data: the residual off the training set's main directions.

Training images of one kind (digits, garments) occupy a thin slice of pixel space: a few
dozen principal directions explain most of their variance. An input that is not like them
(a photo of a cat, a page of text, pixels scaled to [0, 1] for a 0..255 model) leaves a
large residual after projection onto those directions. The residual of held-out training
samples gives the scale: an input farther than all but ``QUANTILE`` of them is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

QUANTILE = 0.999  # share of held-out training samples an input may be farther than before it is flagged
MAX_FIT_ROWS = 5000  # rows used to find the directions: enough for 784 pixels, fast on a CPU
MAX_REFERENCE_ROWS = 2000  # held-out rows that set the scale
VARIANCE_KEPT = 0.9  # directions kept: the fewest that explain this share of the variance
MAX_DIRECTIONS = 100


@dataclass
class Novelty:
    """mean : (F,); basis : (F, K) orthonormal columns; reference : sorted residuals of held-out rows."""

    mean: torch.Tensor
    basis: torch.Tensor
    reference: torch.Tensor

    @classmethod
    def fit(cls, X: torch.Tensor, seed: int = 0) -> "Novelty | None":
        """Fit on features X of shape (N, F) (as the network sees them); None with too few rows."""
        X = X.reshape(X.shape[0], -1).double()
        n, n_features = X.shape
        if n < 50:
            return None
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))  # local RNG
        n_ref = min(MAX_REFERENCE_ROWS, n // 5)
        held_out, fit_rows = order[:n_ref], order[n_ref : n_ref + MAX_FIT_ROWS]
        mean = X[fit_rows].mean(dim=0)
        centred = X[fit_rows] - mean  # (n_fit, F)
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        share = (s**2).cumsum(0) / (s**2).sum().clamp_min(1e-300)
        k = int((share < VARIANCE_KEPT).sum()) + 1
        k = max(1, min(k, MAX_DIRECTIONS, n_features - 1, vh.shape[0]))
        model = cls(mean, vh[:k].T.contiguous(), torch.empty(0, dtype=torch.float64))
        model.reference = model.distance(X[held_out]).sort().values
        return model

    def distance(self, X: torch.Tensor) -> torch.Tensor:
        """Residual norm of each row of X (N, F) off the kept directions: (N,)."""
        centred = X.reshape(X.shape[0], -1).double() - self.mean  # (N, F)
        residual = centred - (centred @ self.basis) @ self.basis.T
        return residual.norm(dim=1)

    @property
    def threshold(self) -> float:
        return float(torch.quantile(self.reference, QUANTILE))

    def farther_than(self, X: torch.Tensor) -> torch.Tensor:
        """Share of held-out training samples closer than each row of X: (N,) in [0, 1]."""
        d = self.distance(X)
        return torch.searchsorted(self.reference, d).double() / len(self.reference)

    def is_far(self, X: torch.Tensor) -> torch.Tensor:
        """(N,) bool: the rows farther from the training data than nearly every training sample."""
        return self.distance(X) > self.threshold
