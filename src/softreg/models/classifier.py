"""``Classifier``: a network and the preprocessing it was trained with, raw inputs in, scores and
probabilities out, so whatever scores raw inputs goes through the very same transform."""

from __future__ import annotations

import torch
from torch import nn

from softreg.models.networks import LinearModel, LogisticRegression, scores_to_labels, scores_to_log_proba
from softreg.models.preprocess import Preprocess


class Classifier(nn.Module):
    """A network and its preprocessing: raw inputs in, class scores and probabilities out.

    ``schema`` (tables only) says how a table's columns become the feature vector; it is
    stored with the model in config.json.
    """

    def __init__(self, net: nn.Module, preprocess: Preprocess, n_classes: int, schema=None):
        super().__init__()
        self.preprocess = preprocess
        self.net = net
        self.n_classes = n_classes
        self.schema = schema

    @property
    def dtype(self) -> torch.dtype:
        return self.preprocess.scale.dtype

    def _fold(self) -> bool:
        return isinstance(self.net, LinearModel) and self.preprocess.kind != "none" and self.preprocess.foldable()

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Scores for raw inputs of shape (N, *sample_shape): (N, C), or (N,) for binary heads."""
        if self._fold() and not torch.is_grad_enabled():
            x = self._flat(raw)  # one pass instead of three
            W, b = self.net.folded(self.preprocess.shift, self.preprocess.scale)
            scores = torch.addmm(b, x, W.t())
            return scores.squeeze(-1) if isinstance(self.net, LogisticRegression) else scores
        return self.net(self.preprocess(raw))

    def gradients(self, raw: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, denom: float,
                  forward=None, lazy: bool = False) -> Gradients:
        """``net.gradients`` on raw inputs (B, *sample_shape): linear networks absorb the
        preprocessing (one pass over the batch); others get preprocessed features. ``lazy``:
        a linear network's weight gradient on CSR rows may come back as a ``SparseProduct``."""
        if self._fold():
            # a zero shift (pixels, scale) is left out: it would cost two passes over W per batch
            shift = self.preprocess.shift if self.preprocess.kind == "standardize" else None
            return self.net.gradients(self._flat(raw), y, w, denom, shift, self.preprocess.scale, lazy=lazy)
        x = self.preprocess(raw)
        if forward is not None:
            return self.net.gradients(x, y, w, denom, forward=forward)
        if isinstance(self.net, LinearModel):
            return self.net.gradients(x, y, w, denom, lazy=lazy)
        return self.net.gradients(x, y, w, denom)

    def _flat(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw inputs (N, *sample_shape) as (N, F) rows of the model's dtype; CSR rows stay CSR."""
        if raw.layout == torch.sparse_csr:
            from softreg.models.sparse import with_values

            return raw if raw.dtype == self.dtype else with_values(raw, raw.values().to(self.dtype))
        return raw.reshape(raw.shape[0], -1).to(self.dtype)

    def log_proba(self, raw: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of shape (N, C), whatever the head."""
        return scores_to_log_proba(self(raw))

    @torch.no_grad()
    def predict_proba(self, raw: torch.Tensor) -> torch.Tensor:
        return self.log_proba(raw).exp()

    @torch.no_grad()
    def predict(self, raw: torch.Tensor) -> torch.Tensor:
        return scores_to_labels(self(raw))


def weight_templates(model, image_shape: tuple[int, ...]) -> torch.Tensor:
    """The first layer's weights, one picture per output, of shape (K, *image_shape).

    Softmax regression: K = C, picture c is what class c looks for. Logistic
    regression: K = 1, the evidence for class 1. MLP: K = hidden units of the
    first layer. Weights act on the preprocessed pixels (see ``WEIGHT_UNITS``);
    standardised pixels that were constant in training (stored scale 1, always
    0 after the shift) never took part, so their weights are drawn as 0.
    """
    net = model.net if hasattr(model, "net") else model
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    W = first.weight.detach().cpu().double()  # (K, F)
    pre = getattr(model, "preprocess", None)
    if pre is not None and pre.kind == "standardize":
        W = W * (pre.scale.detach().cpu() != 1.0)  # (K, F) * (F,) mask
    return W.reshape(W.shape[0], *image_shape)
