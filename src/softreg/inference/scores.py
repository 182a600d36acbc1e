"""What scoring returns: ``Scores`` for a batch of rows (split per request), ``Prediction`` for one row,
``Inputs`` for the forms of raw input a model takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Prediction:
    """One scored input: its label, the probability of each class (in ``classes`` order), notes."""

    label: str
    index: int
    probabilities: list[float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The TF-Serving / KServe v1 form; ``warnings`` only when there are some."""
        doc = {"label": self.label, "probabilities": self.probabilities}
        if self.warnings:
            doc["warnings"] = self.warnings
        return doc


@dataclass
class Scores:
    """N scored rows.

    probabilities : (N, C) float32, columns in the order of the model's ``classes``.
    indices : (N,) int64, the most probable class of each row.
    labels : N class names, ``classes[indices[i]]``.
    warnings : N lists of notes (empty image, far from the training images, ...), each note once.
    classes : the model's class names (C).
    """

    probabilities: torch.Tensor
    indices: torch.Tensor
    labels: list[str]
    warnings: list[list[str]]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, sizes: list[int]) -> list["Scores"]:
        """Consecutive blocks of ``sizes`` rows (the requests a micro-batch was made of)."""
        out, start = [], 0
        for n in sizes:
            out.append(Scores(self.probabilities[start : start + n], self.indices[start : start + n],
                              self.labels[start : start + n], self.warnings[start : start + n], self.classes))
            start += n
        return out

    def predictions(self) -> list[Prediction]:
        return [Prediction(label, int(i), row, list(notes))
                for label, i, row, notes in zip(self.labels, self.indices.tolist(), self.probabilities.tolist(),
                                                self.warnings)]

    def top(self, k: int) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """The k most probable classes of each row: probabilities (N, k), indices (N, k), labels, best first."""
        values, indices = self.probabilities.topk(min(k, len(self.classes)), dim=1)
        return values, indices, [[self.classes[i] for i in row] for row in indices.tolist()]

    def any_warnings(self) -> bool:
        return any(self.warnings)


@dataclass(frozen=True)
class Inputs:
    """The forms of raw input a model takes (what a serving protocol advertises).

    n_features : values in a row of numbers (the model's input width); None for sparse models,
        whose rows are "index:value" text or {index: value}.
    image_shape : (H, W) when rows of numbers may also come image-shaped, else None.
    images : whether encoded pictures (PNG, JPEG, ...) are taken.
    names : what a row given as a mapping is keyed by (table columns, feature names), or None.
    sparse : rows are "index:value" text or {index: value} (numbered as in the training file).
    """

    n_features: int | None
    image_shape: tuple[int, int] | None
    images: bool
    names: list[str] | None
    sparse: bool
