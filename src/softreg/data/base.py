"""Datasets: in memory (``Dataset``: tensors for each split) or streamed from disk (``StreamData``:
a batch source for each split), with what both say about the data (classes, image shape, origin).

``streamed`` tells the two apart, ``sparse`` says whether the rows are CSR (svmlight files)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from softreg.errors import UserInputError


@dataclass
class Split:
    """One split of a dataset.

    X : tensor of shape (n_samples, *sample_shape), uint8 (raw pixels) or float32, or a sparse CSR
        tensor of shape (n_samples, n_features) (softreg.models.sparse)
    y : tensor of shape (n_samples,), int64 class indices in [0, n_classes)
    """

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


class _Classes:
    """What both kinds of dataset answer the same way."""

    @property
    def sparse(self) -> bool:
        return self.index_base is not None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def _check_classes(self) -> None:
        if self.n_classes < 2:
            raise UserInputError(f"{self.name}: found {self.n_classes} class; a classifier needs at least two.")


@dataclass
class Dataset(_Classes):
    """A classification dataset held in tensors.

    ``pixel_max`` is the largest raw value an image pixel can take (255 for IDX
    files, 16 for the bundled 8x8 digits); it is None for tables. The default
    preprocessing of a model trained on this data is derived from it.
    """

    streamed = False  # the splits are tensors (StreamData: batch sources read from disk)
    name: str
    train: Split
    test: Split | None
    classes: list[str]
    image_shape: tuple[int, ...] | None = None
    pixel_max: float | None = None
    origin: str = ""  # where the rows came from, for people: a folder, a file, "scikit-learn (bundled)"
    feature_names: list[str] | None = field(default=None)
    schema: object = None  # tables: the TableSchema that turned the columns into features
    notes: list[str] = field(default_factory=list)  # things worth telling the user about the data
    index_base: int | None = None  # sparse rows: the index of feature 0 in their source (LIBSVM files: 1); None: dense

    def with_train(self, train: Split) -> "Dataset":
        """The same dataset with another training split (a validation split held out, say)."""
        return replace(self, train=train)

    @property
    def n_features(self) -> int:
        n = 1
        for d in self.train.X.shape[1:]:
            n *= int(d)
        return n

    def relabel(self, classes: list[str]) -> "Dataset":
        """The same samples with labels renumbered to ``classes`` (a trained model's class list).

        Class indices follow each source's own class list (a table's sorted labels,
        for one), so data scored by a model must be renumbered by class name first.
        """
        if list(self.classes) == list(classes):
            return self
        unknown = [c for c in self.classes if c not in classes]
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise UserInputError(
                f"{self.name}: class(es) {shown} are not among the model's {len(classes)} classes; "
                "use data labelled like the training data."
            )
        index = torch.tensor([classes.index(c) for c in self.classes], dtype=torch.int64)

        def renumber(split: Split | None) -> Split | None:
            return None if split is None else Split(split.X, index[split.y])

        return replace(self, train=renumber(self.train), test=renumber(self.test), classes=list(classes))

    def validate(self) -> "Dataset":
        """Check shapes, label range and values; raise UserInputError naming the problem."""
        for split_name, split in (("train", self.train), ("test", self.test)):
            if split is None:
                continue
            if split.X.shape[0] != split.y.shape[0]:
                raise UserInputError(
                    f"{self.name}: the {split_name} split has {split.X.shape[0]} samples "
                    f"but {split.y.shape[0]} labels; give images and labels from the same set."
                )
            if len(split) == 0:
                raise UserInputError(
                    f"{self.name}: the {split_name} split is empty; give at least one sample."
                )
            lo, hi = int(split.y.min()), int(split.y.max())
            if lo < 0 or hi >= self.n_classes:
                bad = lo if lo < 0 else hi
                raise UserInputError(
                    f"{self.name}: label {bad} in the {split_name} split is out of range "
                    f"[0, {self.n_classes - 1}]; fix the labels or the class list."
                )
            values = split.X.values() if split.X.layout == torch.sparse_csr else split.X
            if values.is_floating_point() and not bool(torch.isfinite(values).all()):
                raise UserInputError(
                    f"{self.name}: the {split_name} features contain NaN or infinite values; "
                    "remove or impute them before training."
                )
        if self.test is not None and self.test.X.shape[1:] != self.train.X.shape[1:]:
            raise UserInputError(
                f"{self.name}: test samples have shape {tuple(self.test.X.shape[1:])} but "
                    f"training samples {tuple(self.train.X.shape[1:])}; use matching files."
            )
        self._check_classes()
        return self


@dataclass
class StreamData(_Classes):
    """A streamed dataset: batch sources for the splits (softreg.data.shuffle.StreamSource), and what
    the model stores about the data, fitted in a pass over the training rows (the preprocessing, a
    table's schema)."""

    streamed = True
    name: str
    origin: str
    classes: list[str]
    train: object  # StreamSource
    test: object | None
    preprocess: object  # softreg.models.preprocess.Preprocess
    schema: object = None
    image_shape: tuple[int, ...] | None = None
    pixel_max: float | None = None
    feature_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    index_base: int | None = None  # sparse (svmlight) rows: the file index of feature 0; None: dense

    @property
    def n_features(self) -> int:
        return self.train.n_features

    def validate(self) -> "StreamData":
        self._check_classes()
        return self
