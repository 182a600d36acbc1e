"""Scoring a trained classifier on a split: cost and accuracy, computed in chunks without gradients."""

from __future__ import annotations

import torch

from softreg.data.base import Split
from softreg.models import Classifier, loss_from_scores, scores_to_labels

CHUNK = 8192  # rows scored at once: bounds memory on large splits


@torch.no_grad()
def predict_scores(model: Classifier, X: torch.Tensor) -> torch.Tensor:
    """Scores for raw inputs X of shape (N, *sample_shape), on the model's device, in chunks."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts = [model(X[i : i + CHUNK].to(device)) for i in range(0, X.shape[0], CHUNK)]
    model.train(was_training)
    return torch.cat(parts)


@torch.no_grad()
def evaluate(model: Classifier, split: Split) -> dict:
    """Mean cost (as trained: cross-entropy or binary cross-entropy) and accuracy on ``split``."""
    scores = predict_scores(model, split.X)
    y = split.y.to(scores.device)
    loss = loss_from_scores(scores, y, reduction="sum").item() / len(split)
    accuracy = (scores_to_labels(scores) == y).double().mean().item()
    return {"loss": loss, "accuracy": accuracy, "n": len(split)}
