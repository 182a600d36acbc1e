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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.inference.images import EMPTY_NOTE, MAX_PIXELS, PreparedImage, convention_for, load_grey, prepare

EMPTY_ROW = 0.1  # an image row whose brightest pixel is below this share of pixel_max is empty
_UNSET = object()


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


class Predictor:
    """A run's classifier with its input decoding. Build it with ``Predictor.from_run``.

    Attributes: ``name`` (the run folder's name), ``classes``, ``n_features``, ``image_shape``
    ((H, W) or None for tables), ``pixel_max``, ``kind`` (softmax | logistic | mlp), ``model``
    (a ``softreg.models.Classifier``: raw inputs in).
    """

    def __init__(self, run, *, data_dir: str | None = None, max_pixels: int = MAX_PIXELS):
        self.run = run
        self.model = run.model
        self.name = Path(run.path).resolve().name
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
            "name": self.name, "ready": True, "classes": self.classes, "n_features": self.n_features,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "pixel_max": self.pixel_max, "model": self.kind, "feature_names": self.feature_names,
            "dataset": self.run.data.get("name"), "test_samples": len(split[0]) if split else 0,
            "columns": None if self.schema is None else [
                {"name": c.name, "kind": c.kind, **({"categories": c.categories} if c.categories else {})}
                for c in self.schema.columns],
        }

    # ------------------------------------------------------------------ inputs

    def encode_rows(self, rows, names: Sequence[str] | None = None) -> torch.Tensor:
        """Rows of raw values as the model's input: float32 of shape (N, n_features).

        rows : (N, n_features) array or tensor, a sequence of N sequences of numbers, or of
            mappings {feature name: value} when the run knows its feature names.
        names : what to call each row in messages (default "row 0", "row 1", ...).
        This is where a stored table schema (named columns, categorical columns one-hot
        encoded) plugs in: every caller turns raw rows into model input through here.
        """
        def label(i: int) -> str:
            return names[i] if names is not None and i < len(names) else f"row {i}"

        if self.sparse:
            return self.encode_sparse_rows(rows, label)
        if self.schema is not None and not isinstance(rows, (np.ndarray, torch.Tensor)):
            return self._encode_table_rows(rows, label)
        if isinstance(rows, torch.Tensor):
            rows = rows.detach().cpu().numpy()
        if isinstance(rows, (str, bytes)) or not isinstance(rows, (Sequence, np.ndarray)):
            raise UserInputError(f"rows must be a list of rows of numbers; got {type(rows).__name__}.")
        if len(rows) == 0:
            raise UserInputError("rows is empty; give at least one row of feature values.")
        if not isinstance(rows, np.ndarray):
            rows = [self._row_from_mapping(r, label(i)) if isinstance(r, Mapping) else r
                    for i, r in enumerate(rows)]
        try:
            values = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError):
            values = None
        if values is None or values.ndim != 2 or values.shape[1] != self.n_features:
            self._explain_bad_rows(rows, label)
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
        from softreg.models.sparse import csr, from_scipy, is_sparse
        from softreg.data.svmlight.files import parse_pairs

        label = label or (lambda i: f"row {i}")
        if is_sparse(rows) or hasattr(rows, "tocsr"):
            X = rows if is_sparse(rows) else from_scipy(rows)
            if X.shape[1] != self.n_features:
                raise UserInputError(f"rows have {X.shape[1]} features but the model expects {self.n_features}; "
                                     "use the training data's feature numbering.")
            return X.to(torch.float32) if X.dtype != torch.float32 else X
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
            raise UserInputError("rows must be a non-empty list of rows, each 'index:value index:value ...' "
                                 "text or a mapping {index: value}.")
        crow, cols, vals = [0], [], []
        for i, row in enumerate(rows):
            index, value = parse_pairs(row, self.index_base, self.n_features, label(i))
            cols.append(index)
            vals.append(value)
            crow.append(crow[-1] + len(index))
        col = torch.from_numpy(np.concatenate(cols)) if cols else torch.zeros(0, dtype=torch.int64)
        val = torch.from_numpy(np.concatenate(vals).astype(np.float32)) if vals else torch.zeros(0)
        return csr(torch.tensor(crow, dtype=torch.int64), col, val, (len(rows), self.n_features))

    def _encode_table_rows(self, rows, label) -> torch.Tensor:
        """Rows of a table model: one raw value per column of the model's schema (a list in the
        schema's column order, or a mapping by column name); text columns are one-hot encoded,
        unseen values give all zeros, missing numbers are filled as in training or refused."""
        import pyarrow as pa

        columns = self.schema.columns
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
            raise UserInputError(f"rows must be a non-empty list of rows, each with the {len(columns)} columns "
                                 f"{', '.join(c.name for c in columns[:10])}.")
        values: list[list] = [[] for _ in columns]
        for i, row in enumerate(rows):
            if isinstance(row, Mapping):
                missing = [c.name for c in columns if c.name not in row]
                if missing:
                    raise UserInputError(f"{label(i)} lacks column(s) {', '.join(missing[:5])}; give every "
                                         f"column the model was trained on.")
                row = [row[c.name] for c in columns]
            elif isinstance(row, (str, bytes)) or not isinstance(row, (Sequence, np.ndarray)) or len(row) != len(columns):
                raise UserInputError(f"{label(i)} must hold {len(columns)} values, one per column: "
                                     f"{', '.join(c.name for c in columns[:10])}.")
            for j, (c, v) in enumerate(zip(columns, row)):
                values[j].append(self._cell(c, v, label(i)))
        arrays = [pa.array(v, type=pa.float64() if c.kind == "numeric" else pa.string())
                  for c, v in zip(columns, values)]
        X = self.schema.encode(pa.table(arrays, names=[c.name for c in columns]), where="the rows")
        if X.dtype.kind == "f" and np.isnan(X).any():
            i, j = (int(v) for v in np.argwhere(np.isnan(X))[0])
            raise UserInputError(f"{label(i)} has no value for {self.schema.feature_names()[j]!r} and the model "
                                 "was trained without imputation; give a number.")
        return torch.from_numpy(X.astype(np.float32))

    @staticmethod
    def _cell(column, value, what: str):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if column.kind == "categorical":
            return str(value).strip()
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserInputError(f"{what}: column {column.name!r} needs a number; got {value!r}.") from None
        if not np.isfinite(number):
            raise UserInputError(f"{what}: column {column.name!r} has {number}; give a finite number.")
        return number

    def _row_from_mapping(self, row: Mapping, what: str) -> list:
        if self.feature_names is None:
            raise UserInputError(f"{what} names its features, but this run does not know feature names; "
                                 f"give a list of {self.n_features} values in training order.")
        missing = [n for n in self.feature_names if n not in row]
        extra = [str(k) for k in row if k not in self.feature_names]
        if missing or extra:
            raise UserInputError(f"{what}: features do not match the model's: missing {missing[:5]}, "
                                 f"unknown {extra[:5]}; give exactly {', '.join(self.feature_names[:10])}.")
        return [row[n] for n in self.feature_names]

    def _explain_bad_rows(self, rows, label) -> None:
        """Find the first bad row or value of ``rows`` and raise a message naming it."""
        for i, row in enumerate(rows):
            if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, (Sequence, np.ndarray)):
                raise UserInputError(f"{label(i)} is not a list of numbers (got {type(row).__name__}); "
                                     f"give {self.n_features} feature values.")
            if len(row) != self.n_features:
                raise UserInputError(f"{label(i)} has {len(row)} values but the model expects "
                                     f"{self.n_features}; give one value per feature, in training order.")
            for j, v in enumerate(row):
                if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                    raise UserInputError(f"{label(i)} has {v!r} at position {j}; "
                                         "feature values must be numbers.")
        raise UserInputError(f"rows must be a list of rows of {self.n_features} numbers.")

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

    def predictions(self, X: torch.Tensor, notes: list[list[str]] | None = None,
                    probs: torch.Tensor | None = None, check: bool = True) -> list[Prediction]:
        """Score X (N, n_features) and describe each row: label, probabilities and notes.

        Pass ``probs`` when already computed (the server scores batches of requests at once).
        ``check=False`` skips ``check`` (rows of the run's own test split need no novelty check,
        whose first use fits a model of the training images: 0.5 to 3 s on Fashion-MNIST).
        """
        probs = self.predict_proba(X) if probs is None else probs
        checks = self.check(X) if check else [[] for _ in range(X.shape[0])]
        notes = notes or [[] for _ in range(len(checks))]
        out = []
        for i, row in enumerate(probs.tolist()):
            best = int(np.argmax(row))
            merged = list(dict.fromkeys([*notes[i], *checks[i]]))  # in order, once each
            out.append(Prediction(self.classes[best], best, row, merged))
        return out

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
