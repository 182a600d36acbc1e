"""Predictor: a trained run's classifier with the decoding of every input kind, scoring batches.

``Predictor.from_run(path)`` is what ``softreg predict``, ``softreg serve`` and library users
call. It turns raw feature rows (``encode_rows``), pictures of any size and format
(``encode_images``) and test-set indices (``test_sample``) into the model's raw input of shape
(N, n_features), scores them in chunks (``predict_proba``), and says when an input is empty
or far from the training data. It changes no process-wide state: no seeds, no thread counts,
no global random generator, no warning filters left behind.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.inference.images import EMPTY_NOTE, MAX_PIXELS, PreparedImage, convention_for, load_grey, prepare
from softreg.inference.rows import encode_table_rows, explain_bad_rows, row_from_mapping, sparse_rows
from softreg.inference.scores import Inputs, Prediction, Scores

EMPTY_ROW = 0.1  # an image row whose brightest pixel is below this share of pixel_max is empty
_UNSET = object()


class Predictor:
    """A run's classifier with its input decoding. Build it with ``Predictor.from_run``.

    Attributes: ``name`` (the run folder's name, or its parent's for a folder named by a number),
    ``version`` ("1", or that number), ``classes``, ``n_features``, ``image_shape``
    ((H, W) or None for tables), ``pixel_max``, ``kind`` (softmax | logistic | mlp), ``model``
    (a ``softreg.models.Classifier``: raw inputs in).
    """

    def __init__(self, run, *, data_dir: str | None = None, max_pixels: int = MAX_PIXELS):
        self.run = run
        self.model = run.model
        folder = Path(run.path).resolve()
        # a folder named by a number is a version of the model its parent names (TF-Serving's layout:
        # models/NAME/1, models/NAME/2); any other run is version "1" of the model its folder names
        self.name, self.version = (folder.parent.name, str(int(folder.name))) if folder.name.isdigit() \
            else (folder.name, "1")
        self.classes = [str(c) for c in run.data["classes"]]
        self.n_features = int(run.model_config.n_features)
        self.kind = run.model_config.kind
        shape = run.data.get("image_shape")
        self.image_shape = tuple(int(d) for d in shape) if shape and len(shape) == 2 else None
        self.pixel_max = float(run.data["pixel_max"]) if run.data.get("pixel_max") else None
        names = run.data.get("feature_names")
        self.feature_names = list(names) if names and len(names) == self.n_features else None
        self.convention = (convention_for(run.data.get("name"), self.image_shape, self.pixel_max)
                           if self.image_shape and self.pixel_max else None)
        self.data_dir = data_dir
        self.max_pixels = max_pixels
        self.device = next(self.model.parameters()).device
        self._lock = threading.Lock()
        self._dataset = _UNSET
        self._novelty = _UNSET
        self.data_problem: str | None = None  # why the run's dataset could not be loaded
        self.schema = getattr(self.model, "schema", None)  # tables: named columns, one-hot text columns
        self.index_base = run.model_config.index_base  # sparse (svmlight) models: the index of feature 0
        self.sparse = self.index_base is not None

    @classmethod
    def from_run(cls, path: str | Path, device: str = "cpu", *, data_dir: str | None = None,
                 max_pixels: int = MAX_PIXELS) -> "Predictor":
        """Load the run folder ``path`` (see ``softreg.runs.folder.load_run``) onto ``device``."""
        from softreg.runs.folder import load_run

        # building the network draws initial weights from torch's global generator before the
        # saved ones replace them; the caller's random stream must not notice
        with torch.random.fork_rng(devices=[]):
            run = load_run(path, device=device)
        return cls(run, data_dir=data_dir, max_pixels=max_pixels)

    # ------------------------------------------------------------------ description

    def describe(self) -> dict:
        """What a client needs to call the model (the body of GET /v1/models/NAME)."""
        split = self.test_split()
        return {
            "name": self.name, "version": self.version, "ready": True, "classes": self.classes, "n_features": self.n_features,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "pixel_max": self.pixel_max, "model": self.kind, "feature_names": self.feature_names,
            "dataset": self.run.data.get("name"), "test_samples": len(split[0]) if split else 0,
            "columns": None if self.schema is None else [
                {"name": c.name, "kind": c.kind, **({"categories": c.categories} if c.categories else {})}
                for c in self.schema.columns],
        }

    def inputs(self) -> Inputs:
        """The forms of raw input this model takes (see ``softreg.inference.scores.Inputs``)."""
        names = [c.name for c in self.schema.columns] if self.schema is not None else self.feature_names
        return Inputs(None if self.sparse else self.n_features, self.image_shape, self.convention is not None,
                      names, self.sparse)

    def warm_up(self) -> None:
        """Load the run's data and fit the novelty check now (a server does it before it says ready)."""
        self.dataset()
        self.novelty()

    # ------------------------------------------------------------------ inputs

    def encode_rows(self, rows, names: Sequence[str] | None = None) -> torch.Tensor:
        """Rows of raw values as the model's input: float32 of shape (N, n_features).

        rows : (N, n_features) array or tensor (image models: also (N, H, W)), a sequence of N
            sequences of numbers, or of mappings {feature name: value} when the run knows its
            feature names.
        names : what to call each row in messages (default "row 0", "row 1", ...).
        This is where a stored table schema (named columns, categorical columns one-hot
        encoded) plugs in: every caller turns raw rows into model input through here.
        """
        def label(i: int) -> str:
            return names[i] if names is not None and i < len(names) else f"row {i}"

        if self.sparse:
            return self.encode_sparse_rows(rows, label)
        if self.schema is not None and not isinstance(rows, (np.ndarray, torch.Tensor)):
            return encode_table_rows(self.schema, rows, label)
        if isinstance(rows, torch.Tensor):
            rows = rows.detach().cpu().numpy()
        if isinstance(rows, np.ndarray) and self.image_shape is not None and rows.shape[1:] == self.image_shape:
            rows = rows.reshape(rows.shape[0], -1)  # (N, H, W) pictures as pixel rows
        if isinstance(rows, (str, bytes)) or not isinstance(rows, (Sequence, np.ndarray)):
            raise UserInputError(f"rows must be a list of rows of numbers; got {type(rows).__name__}.")
        if len(rows) == 0:
            raise UserInputError("rows is empty; give at least one row of feature values.")
        if not isinstance(rows, np.ndarray):
            rows = [row_from_mapping(r, self.feature_names, self.n_features, label(i)) if isinstance(r, Mapping) else r
                    for i, r in enumerate(rows)]
        try:
            values = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError):
            values = None
        if values is None or values.ndim != 2 or values.shape[1] != self.n_features:
            explain_bad_rows(rows, self.n_features, label)
        if not np.isfinite(values).all():
            i, j = (int(v) for v in np.argwhere(~np.isfinite(values))[0])
            raise UserInputError(f"{label(i)} has {values[i, j]} at position {j}; "
                                 "feature values must be finite numbers: replace NaN / inf values.")
        huge = np.abs(values) > np.finfo(np.float32).max  # would become inf in the model's float32
        if huge.any():
            i, j = (int(v) for v in np.argwhere(huge)[0])
            raise UserInputError(f"{label(i)} has {values[i, j]:g} at position {j}, beyond float32's range "
                                 "(3.4e38); replace or rescale the value.")
        if self.image_shape is not None and self.pixel_max is not None:
            bad = (values < 0) | (values > self.pixel_max)
            if bad.any():
                i, j = (int(v) for v in np.argwhere(bad)[0])
                raise UserInputError(
                    f"{label(i)} has pixel value {values[i, j]:g} at position {j}; pixels must be in "
                    f"[0, {self.pixel_max:g}] (this model's range): rescale the image.")
        return torch.from_numpy(values.astype(np.float32))

    def encode_sparse_rows(self, rows, label=None) -> torch.Tensor:
        """Rows of a sparse (svmlight) model as a CSR tensor (N, n_features).

        rows : a SciPy sparse matrix or CSR tensor (N, n_features), or a sequence of rows, each
            "index:value index:value ..." text (spaces or commas between pairs; the indices
            counted as in the training file) or a mapping {index: value}. Features not given are 0.
        """
        return sparse_rows(rows, self.index_base, self.n_features, label or (lambda i: f"row {i}"))

    def _need_images(self) -> None:
        if self.convention is None:
            raise UserInputError(f"{self.name}: this model was trained on a table, not images; "
                                 f"use {spell('features')} or {spell('index')} (rows of feature values) instead.")

    def prepare_image(self, source: bytes | str | Path, invert: str = "auto",
                      fit: str = "auto") -> PreparedImage:
        """Decode one picture (bytes or a file) and bring it to the training convention."""
        self._need_images()
        return prepare(load_grey(source, self.max_pixels), self.convention, invert, fit)

    def encode_images(self, sources: Sequence, invert: str = "auto",
                      fit: str = "auto") -> tuple[torch.Tensor, list[list[str]]]:
        """Pictures as the model's input (N, n_features), with each picture's notes."""
        prepared = [self.prepare_image(s, invert, fit) for s in sources]
        X = torch.stack([p.pixels.reshape(-1) for p in prepared]) if prepared else torch.empty(0, self.n_features)
        return X, [list(p.warnings) for p in prepared]

    def encode_inputs(self, items: Sequence, names: Sequence[str] | None = None, invert: str = "auto",
                      fit: str = "auto") -> tuple[torch.Tensor, list[list[str]]]:
        """A mix of pictures and rows as the model's input (N, n_features), in order, with each one's notes.

        items : each either ``bytes`` (an encoded picture: PNG, JPEG, GIF, BMP, WebP) or a row as
            ``encode_rows`` takes it. names : what to call each item in messages (default "row i").
        Sparse models take rows only, and give a CSR tensor.
        """
        def label(i: int) -> str:
            return names[i] if names is not None and i < len(names) else f"row {i}"

        pictures = [i for i, item in enumerate(items) if isinstance(item, (bytes, bytearray))]
        if self.sparse:
            if pictures:
                raise UserInputError(f"{label(pictures[0])}: this model reads sparse rows (\"index:value ...\" "
                                     "text or {index: value}), not images.")
            return self.encode_rows(list(items), names=names), [[] for _ in items]
        X = torch.empty(len(items), self.n_features)
        notes: list[list[str]] = [[] for _ in items]
        for i in pictures:
            try:
                prepared = self.prepare_image(bytes(items[i]), invert, fit)
            except UserInputError as exc:
                raise UserInputError(f"{label(i)}: {exc}") from None
            X[i] = prepared.pixels.reshape(-1)
            notes[i] = list(prepared.warnings)
        rows = [i for i in range(len(items)) if i not in set(pictures)]
        if rows:
            X[rows] = self.encode_rows([items[i] for i in rows], names=[label(i) for i in rows])
        return X, notes

    def input_values(self, X: torch.Tensor, i: int):
        """What the model saw in row i of X (from ``encode_rows`` / ``encode_inputs``): its values rounded
        to 4 digits, or for sparse models {index: value} numbered as in the training file."""
        if not self.sparse:
            return [round(v, 4) for v in X[i].tolist()]
        crow, col, val = X.crow_indices(), X.col_indices(), X.values()
        a, b = int(crow[i]), int(crow[i + 1])
        return {str(int(j) + self.index_base): round(float(v), 4) for j, v in zip(col[a:b], val[a:b])}

    def as_instance(self, x: torch.Tensor):
        """One row of model input (n_features,) as a client would send it: a table's raw columns
        {column: value} (one-hot columns as their category), else the list of values."""
        return self.schema.decode(x) if self.schema is not None else x.tolist()

    # ------------------------------------------------------------------ the run's data

    def dataset(self):
        """The run's dataset (relabelled to the run's classes), or None when it cannot be loaded
        without a download; ``data_problem`` then says why."""
        with self._lock:
            if self._dataset is _UNSET:
                self._dataset = self._load_dataset()
            return self._dataset

    def _load_dataset(self):
        from softreg.data.source import open_scoring

        # the run's own data, read as in training but into memory (test samples are picked by index);
        # never a download from here
        source = self.run.source(self.data_dir).with_(stream=False)
        try:
            return open_scoring(source, self.run.expected, download=False)
        except UserInputError as exc:
            self.data_problem = " ".join(str(exc).split())
            return None

    def test_split(self):
        """(split, "test") or (split, "train") when the data has no test split; None without data."""
        data = self.dataset()
        if data is None:
            return None
        return (data.test, "test") if data.test is not None else (data.train, "train")

    def random_test_index(self, seed: int | None = None) -> int:
        """A test index drawn with a generator of its own (the global ones are left alone)."""
        split, _ = self._require_split()
        return random.Random(seed).randrange(len(split))

    def test_sample(self, index: int, what: str = "index") -> tuple[torch.Tensor, str, str]:
        """(raw input of shape (n_features,), true label, "test sample N") of the run's test split."""
        split, split_name = self._require_split()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(split):
            raise UserInputError(
                f"{what} must be in [0, {len(split) - 1}] for the {split_name} split; got {index}.")
        if self.sparse:  # one row, made dense: n_features values
            from softreg.models.sparse import take_rows

            x = take_rows(split.X, torch.tensor([index])).to_dense().reshape(-1).to(torch.float32)
        else:
            x = split.X[index].reshape(-1).to(torch.float32)
        return x, self.classes[int(split.y[index])], f"{split_name} sample {index}"

    def _require_split(self):
        split = self.test_split()
        if split is None:
            raise UserInputError(f"{self.name}: the run's data cannot be loaded ({self.data_problem}); "
                                 "make it available (softreg train --data NAME downloads a named dataset) or pass "
                                 "an input.")
        return split

    def novelty(self):
        """The distance model of the training images (``softreg.inference.novelty.Novelty``), or None."""
        with self._lock:
            if self._novelty is not _UNSET:
                return self._novelty
        data = self.dataset() if self.convention is not None else None
        found = None
        if data is not None:
            from softreg.inference.novelty import MAX_FIT_ROWS, MAX_REFERENCE_ROWS, Novelty

            n = len(data.train)
            rows = torch.randperm(n, generator=torch.Generator().manual_seed(0))[: MAX_FIT_ROWS + MAX_REFERENCE_ROWS]
            found = Novelty.fit(data.train.X[rows].reshape(len(rows), -1).double() / self.pixel_max)
        with self._lock:
            self._novelty = found
        return found

    # ------------------------------------------------------------------ scoring

    def check(self, X: torch.Tensor) -> list[list[str]]:
        """Notes on each row of raw input X (N, n_features): empty images, images far from the data."""
        notes: list[list[str]] = [[] for _ in range(X.shape[0])]
        if self.convention is None or X.shape[0] == 0:
            return notes
        X = X.reshape(X.shape[0], -1)
        empty = X.amax(dim=1) < EMPTY_ROW * self.pixel_max
        novelty = self.novelty()
        far = novelty.is_far(X.double() / self.pixel_max) if novelty is not None else torch.zeros_like(empty)
        share = novelty.farther_than(X.double() / self.pixel_max) if novelty is not None else None
        for i in range(X.shape[0]):
            if empty[i]:
                notes[i].append(EMPTY_NOTE)
            elif far[i]:
                notes[i].append(f"the image is far from the training images (farther than {float(share[i]):.1%} "
                                "of them); the prediction may mean little")
        return notes

    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, C) of raw inputs X of shape (N, n_features) or (N, *image_shape),
        or of sparse CSR rows (N, n_features)."""
        from softreg.models.sparse import row_chunks

        parts = [self.model.predict_proba(chunk.to(self.device)).cpu() for chunk in row_chunks(X)]
        return torch.cat(parts) if parts else torch.empty(0, len(self.classes))

    def score(self, X: torch.Tensor, notes: list[list[str]] | None = None, check: bool = True) -> Scores:
        """Score raw inputs X (N, n_features) (or sparse CSR rows): probabilities, label indices,
        labels and each row's warnings (``notes`` first, then ``check``'s, each once).

        ``check=False`` skips ``check`` (rows of the run's own test split need no novelty check,
        whose first use fits a model of the training images: 0.5 to 3 s on Fashion-MNIST).
        """
        probs = self.predict_proba(X).float()
        n = probs.shape[0]
        checks = self.check(X) if check else [[] for _ in range(n)]
        notes = notes or [[] for _ in range(n)]
        indices = probs.argmax(dim=1) if n else torch.zeros(0, dtype=torch.int64)
        return Scores(probs, indices, [self.classes[i] for i in indices.tolist()],
                      [list(dict.fromkeys([*a, *b])) for a, b in zip(notes, checks)], self.classes)

    def score_rows(self, rows, names: Sequence[str] | None = None) -> Scores:
        """``encode_rows`` then ``score``: raw rows in, probabilities, label indices, labels and warnings out."""
        return self.score(self.encode_rows(rows, names=names))

    def predictions(self, X: torch.Tensor, notes: list[list[str]] | None = None, check: bool = True) -> list[Prediction]:
        """``score`` as one ``Prediction`` per row."""
        return self.score(X, notes, check).predictions()

    def predict_rows(self, rows) -> list[Prediction]:
        """``encode_rows`` then ``predictions``."""
        return self.predictions(self.encode_rows(rows))

    def predict_images(self, sources: Sequence, invert: str = "auto", fit: str = "auto") -> list[Prediction]:
        """``encode_images`` then ``predictions``."""
        X, notes = self.encode_images(sources, invert, fit)
        return self.predictions(X, notes)

    def weight_templates(self) -> torch.Tensor | None:
        """(K, H, W) first-layer weights of a linear image model (softmax: one per class), or None."""
        if self.kind not in ("softmax", "logistic") or self.image_shape is None:
            return None
        from softreg.models.classifier import weight_templates

        return weight_templates(self.model, self.image_shape).float()

    def template_titles(self) -> list[str]:
        """What each of ``weight_templates`` is: a class (softmax), or "B vs A" (logistic: one template)."""
        return self.classes if self.kind == "softmax" else [f"{self.classes[1]} vs {self.classes[0]}"]


def predict_svmlight_file(run, path: str | Path, out: str | Path) -> tuple[Path, int]:
    """Score every line of an svmlight file with a sparse run's model, 8192 rows at a time; write
    ``out`` (.csv: ``predicted`` and one ``p_<class>`` column per class) atomically."""
    from softreg.models.sparse import row_chunks
    from softreg.data.svmlight.files import load_scoring_svmlight
    from softreg.system.io import write_text

    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise UserInputError(f"{spell('out', out)}: predictions of an svmlight file are written to a .csv file.")
    split = load_scoring_svmlight(path, run.expected, labelled=False).test  # the labels, if any, are not needed
    classes = [str(c) for c in run.data["classes"]]
    device = next(run.model.parameters()).device
    lines = [",".join(["predicted"] + [f"p_{c}" for c in classes])]
    for chunk in row_chunks(split.X):
        probs = run.model.predict_proba(chunk.to(device)).double().cpu()
        for row, best in zip(probs.tolist(), probs.argmax(dim=1).tolist()):
            lines.append(",".join([classes[best]] + [f"{p:.6g}" for p in row]))
    write_text(out, "\n".join(lines) + "\n", f"choose another {spell('out')}")
    return out, len(lines) - 1
