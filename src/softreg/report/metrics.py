"""Scoring a trained classifier: cost, accuracy, top-k, per-class precision / recall / F1, confusion matrix.

Every metric is computed with torch on the device that holds the scores, from
whole tensors (no per-sample Python), and follows scikit-learn's definitions:
``accuracy_score``, ``log_loss``, ``top_k_accuracy_score``,
``precision_recall_fscore_support(zero_division=0)`` and ``confusion_matrix``
(rows are true classes, columns predicted classes).
"""

from __future__ import annotations

import torch

from softreg.data.base import Split
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.models import Classifier, scores_to_labels, scores_to_log_proba
from softreg.models.sparse import CHUNK_ROWS, row_chunks

TOP_K = 5  # default k of the top-k accuracy (capped at the number of classes)


@torch.no_grad()
def predict_scores(model: torch.nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Scores of ``model`` (a Classifier on raw inputs, or a bare network on preprocessed
    ones) for X of shape (N, ...) (or sparse CSR rows (N, F)), on the model's device, in chunks."""

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts = [model(chunk.to(device)) for chunk in row_chunks(X)]
    model.train(was_training)
    return torch.cat(parts)


def accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Share of samples whose predicted label equals the true one; both of shape (N,)."""
    return (y_true == y_pred).double().mean().item()


def log_loss(y_true: torch.Tensor, log_proba: torch.Tensor) -> float:
    """Mean negative log-probability of the true class; log_proba of shape (N, C)."""
    picked = log_proba.gather(1, y_true.long().unsqueeze(1)).squeeze(1)  # (N,)
    return -picked.double().mean().item()


def top_k_accuracy(y_true: torch.Tensor, scores: torch.Tensor, k: int) -> float:
    """Share of samples whose true class is among the k highest of ``scores`` (N, C).

    A class's rank is the number of classes scored higher, plus the tied ones
    with a smaller index (the order ``argmax`` breaks ties in), so top-1 equals
    the accuracy of ``argmax``.
    """
    y = y_true.long().unsqueeze(1)  # (N, 1)
    true_score = scores.gather(1, y)  # (N, 1)
    index = torch.arange(scores.shape[1], device=scores.device)  # (C,)
    rank = (scores > true_score).sum(1) + ((scores == true_score) & (index < y)).sum(1)  # (N,)
    return (rank < k).double().mean().item()


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(C, C) int64 counts: entry [i, j] is the number of samples of class i predicted as j."""
    flat = y_true.long() * n_classes + y_pred.long()  # (N,) cell index
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def precision_recall_f1(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class precision, recall, F1 and support, each of shape (C,), from a confusion matrix.

    A ratio whose denominator is zero (a class never predicted, or absent) is 0,
    as with scikit-learn's ``zero_division=0``.
    """
    cm = confusion.double()
    tp = cm.diagonal()
    predicted = cm.sum(0)  # tp + fp, per class
    support = cm.sum(1)  # tp + fn
    denominator = predicted + support  # 2 tp + fp + fn

    def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))

    return {
        "precision": ratio(tp, predicted),
        "recall": ratio(tp, support),
        "f1": ratio(2 * tp, denominator),
        "support": confusion.sum(1),
    }


def check_top_k(top_k: int) -> int:
    if top_k < 1:
        raise UserInputError(f"{spell('top_k')} must be an integer >= 1; got {top_k}. Example: {spell('top_k', 5)}.")
    return top_k


def classification_metrics(scores: torch.Tensor, y_true: torch.Tensor, classes: list[str],
                           top_k: int = TOP_K) -> dict:
    """Every metric of one split, as plain Python numbers ready for JSON.

    scores : tensor of shape (N, C) class scores, or (N,) logits of a binary head
    y_true : tensor of shape (N,), class indices in [0, C)
    classes : the C class names, in index order
    top_k : k of the top-k accuracy; capped at C
    """
    n_classes = len(classes)
    k = min(check_top_k(top_k), n_classes)
    y = y_true.to(scores.device).long()
    log_proba = scores_to_log_proba(scores)  # (N, C)
    y_pred = scores_to_labels(scores)  # (N,)
    confusion = confusion_matrix(y, y_pred, n_classes)
    per_class = precision_recall_f1(confusion)
    return {
        "n": int(y.shape[0]),
        "accuracy": accuracy(y, y_pred),
        "log_loss": log_loss(y, log_proba),
        "top_k": k,
        "top_k_accuracy": top_k_accuracy(y, log_proba, k),
        "macro": {name: per_class[name].mean().item() for name in ("precision", "recall", "f1")},
        "per_class": [
            {"class": name, "precision": p, "recall": r, "f1": f, "support": int(s)}
            for name, p, r, f, s in zip(classes, *(per_class[key].tolist() for key in
                                                   ("precision", "recall", "f1", "support")))
        ],
        "confusion_matrix": confusion.tolist(),
    }


@torch.no_grad()
def evaluate_split(model: Classifier, split, classes: list[str], top_k: int = TOP_K) -> dict:
    """``classification_metrics`` of ``model`` on ``split`` (a Split, or a batch source read in
    chunks: a streamed split), scored on the model's device."""
    if isinstance(split, Split):
        return classification_metrics(predict_scores(model, split.X), split.y, classes, top_k)
    scores, labels = [], []
    for chunk in split.chunks(CHUNK_ROWS):
        scores.append(predict_scores(model, chunk.X))
        labels.append(chunk.y)
    return classification_metrics(torch.cat(scores), torch.cat(labels), classes, top_k)




def format_metrics(result: dict, title: str = "") -> str:
    """One split's metrics as aligned text: summary, per-class table, confusion matrix."""
    names = [row["class"] for row in result["per_class"]]
    width = max(len("macro average"), *(len(name) for name in names))
    lines = [title] if title else []
    summary = [
        ("accuracy", result["accuracy"]),
        ("log loss", result["log_loss"]),
        (f"top-{result['top_k']} accuracy", result["top_k_accuracy"]),
        ("macro precision", result["macro"]["precision"]),
        ("macro recall", result["macro"]["recall"]),
        ("macro F1", result["macro"]["f1"]),
    ]
    lines += [f"  {label:<18s}  {value:.4f}" for label, value in summary]
    lines += ["", f"  {'class':<{width}s}  precision     recall         F1    support"]
    for row in result["per_class"]:
        lines.append(f"  {row['class']:<{width}s}  {row['precision']:9.4f}  {row['recall']:9.4f}"
                     f"  {row['f1']:9.4f}  {row['support']:9d}")
    lines.append(f"  {'macro average':<{width}s}  {result['macro']['precision']:9.4f}"
                 f"  {result['macro']['recall']:9.4f}  {result['macro']['f1']:9.4f}  {result['n']:9d}")
    lines += ["", "  confusion matrix (rows: true class, columns: predicted class)"]
    digits = len(str(max(max(r) for r in result["confusion_matrix"])))
    room = (78 - width - 2) // len(names) - 1  # column width that keeps the table in 80 columns
    cell = max(digits + 1, min(room, max(map(len, names))))
    abbreviations = [name if len(name) <= cell else name[: cell - 1] + "." for name in names]
    lines.append(f"  {'':<{width}s}  " + " ".join(f"{a:>{cell}s}" for a in abbreviations))
    for name, row in zip(names, result["confusion_matrix"]):
        lines.append(f"  {name:<{width}s}  " + " ".join(f"{count:>{cell}d}" for count in row))
    return "\n".join(lines)
