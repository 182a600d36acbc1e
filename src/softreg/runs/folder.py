"""A run directory on disk: config.json, model.safetensors, metrics.json, history.csv.

Saving goes through :func:`softreg.system.folders.commit_folder`: the new run is written beside the
old one and swapped in as one step, so a complete run, old or new, is at ``--out`` at
every instant; files the user put in the folder are kept. Loading validates every file
against :mod:`softreg.runs.schema` (weights by their header only) before a model is built.
"""

from __future__ import annotations

import csv
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


from softreg import __version__
from softreg.system import folders, io, locks
from softreg.system import limits
from softreg.runs import files as runfiles
from softreg.runs import schema
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.models import Classifier, ModelConfig, Preprocess, build_model
from softreg.data.base import Dataset
from softreg.data.source import DataSource, Expected
from softreg.training.config import TrainConfig
from softreg.training.state import CHECKPOINT_DIR, CHECKPOINT_FILE, History
from softreg.training.fitting import model_config_for
from softreg.training.trainer import TrainResult

FILES = ("config.json", "model.safetensors", "metrics.json", "history.csv")
CHECKPOINT_FILES = frozenset({CHECKPOINT_FILE})  # the trainer's checkpoint/ folder (one file: tensors + JSON header)
REPORT_FILES = frozenset({"index.html", "training_curves.png", "weights.png", "confusion_matrix.png",
                          "predictions.png", "confident_mistakes.png"})  # `softreg report`'s default folder
# What softreg writes in a run folder: replaced or removed when the run is saved again. Anything
# else (the user's files, or these names holding something softreg would not write) is kept.
OWNED: dict[str, frozenset[str] | None] = {
    **{name: None for name in (*FILES, "evaluation.json")},
    CHECKPOINT_DIR: CHECKPOINT_FILES,
    "report": REPORT_FILES,
}


@dataclass
class LoadedRun:
    model: Classifier
    config: TrainConfig
    model_config: ModelConfig
    data: dict  # what was trained on: name, origin, source (how it was read), classes, image_shape, ...
    metrics: dict
    path: Path
    history: list[dict] = field(default_factory=list)  # history.csv rows: numbers, None for empty cells

    def source(self, data_dir: str | None = None) -> DataSource:
        """The data the run was trained on, as it was read (``data_dir``: this machine's cache folder)."""
        return DataSource.from_dict(self.data["source"], data_dir)

    @property
    def expected(self) -> Expected:
        """What the model expects of data it scores."""
        return Expected(tuple(str(c) for c in self.data["classes"]), int(self.model_config.n_features),
                        self.model.schema, self.model_config.index_base)


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` holds something softreg wrote: a softreg config.json, softreg weights,
    or a training checkpoint. Only such folders are ever replaced."""
    try:
        doc = runfiles.read_json(path / "config.json") if (path / "config.json").is_file() else None
    except UserInputError:
        doc = None
    if isinstance(doc, dict) and ("softreg_version" in doc or "format" in doc):
        return True
    if (path / CHECKPOINT_DIR / CHECKPOINT_FILE).is_file():
        return True
    weights = path / "model.safetensors"
    if weights.is_file() and not weights.is_symlink():
        try:
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as f:
                return "softreg" in (f.metadata() or {})
        except Exception:  # any damage: not recognisably ours
            return False
    return False


def check_writable(out: str | Path) -> Path:
    """Fail before training, not after, when ``out`` cannot become a run directory."""
    out = limits.check_path(out, spell("out"))
    try:
        st = os.lstat(out)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise UserInputError(f"cannot write the run to {out} ({exc.strerror or exc}); choose another {spell('out')}.") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise UserInputError(f"{spell('out', out)} is a symbolic link; give the real folder path for the run.")
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise UserInputError(f"{spell('out', out)} is a file; give a folder path for the run.")
    if st is not None:
        entries = [n for n in os.listdir(out) if not n.startswith(".softreg-probe.")]
        if entries and not is_run_folder(out):
            raise UserInputError(
                f"{spell('out', out)} is a non-empty folder that is not a softreg run; choose a new folder."
            )
        folders.check_replaceable(out, OWNED, what=spell("out", out), fix=f"choose another {spell('out')}")
    probe = out.absolute().parent
    while not probe.exists():
        probe = probe.parent
    io.probe_writable(probe, f"the run to {out}")
    return out


def describe_data(dataset: Dataset, source: DataSource) -> dict:
    """What a run records about its data: the source whole, as it was read (paths made absolute, the
    label column actually used), so that evaluate, report, predict and serve read it again."""
    from softreg.data.names import canonical
    from softreg.system.storage import locate

    def absolute(spec: str | None) -> str | None:
        return spec if spec is None else canonical(spec) or locate(spec).absolute()

    label = dataset.schema.label if dataset.schema is not None else source.label
    recorded = source.with_(spec=absolute(source.spec), test=absolute(source.test), label=label)
    return {
        "source": recorded.to_dict(),
        "name": dataset.name, "origin": dataset.origin, "classes": dataset.classes,
        "schema": dataset.schema.to_dict() if dataset.schema is not None else None,
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "pixel_max": dataset.pixel_max, "feature_names": dataset.feature_names,
        "n_train": len(dataset.train), "n_test": len(dataset.test) if dataset.test is not None else 0,
    }


def save_result(out: str | Path, result: TrainResult, dataset: Dataset, source: DataSource | str) -> Path:
    """Save what ``softreg.training.train`` returned as a run folder.

    source : how ``dataset`` was read (a DataSource), or just its name or path.
    """
    source = DataSource(spec=source) if isinstance(source, str) else source
    return save_run(out, result.model, result.config, model_config_for(dataset, result.config),
                    describe_data(dataset, source), result.metrics, result.history)


def save_run(
    out: str | Path,
    model: Classifier,
    config: TrainConfig,
    model_config: ModelConfig,
    data_info: dict,
    metrics: dict,
    history: History | None = None,
) -> Path:
    """Write the run folder; an existing run at ``out`` is replaced only once the new one is
    complete, keeping every file softreg did not write (see :mod:`softreg.system.io`)."""
    from safetensors.torch import save_file

    out = check_writable(out)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config_doc = {
        "format": schema.FORMAT,
        "softreg_version": __version__,
        "model": model_config.to_dict(),
        "preprocess": model.preprocess.kind,
        "dtype": str(model.dtype).replace("torch.", ""),
        "train": config.to_dict(),
        "data": data_info,
    }

    def write(stage: Path) -> None:
        save_file(state, str(stage / "model.safetensors"), metadata={"softreg": __version__})
        _write_json(stage / "config.json", config_doc)
        _write_json(stage / "metrics.json", metrics)
        with open(stage / "history.csv", "w", newline="") as f:
            rows = history.rows if history is not None else []
            columns = list(rows[0]) if rows else ["epoch", "avg_cost"]
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    folders.commit_folder(out, write, owned=OWNED, what=f"the run to {out}", fix=f"free space or choose another {spell('out')}")
    return out


def _write_json(path: Path, doc: dict) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")


def expected_tensors(model_config: ModelConfig, preprocess_kind: str) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor a model of ``model_config`` holds, built on the meta
    device: nothing is allocated, however large the config says the model is."""
    import torch

    with torch.device("meta"):
        net = build_model(model_config)
        model = Classifier(net, Preprocess(model_config.n_features, preprocess_kind), model_config.n_classes)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """Rebuild the classifier (preprocessing included) saved by ``save_run``.

    Every file is validated first (:mod:`softreg.runs.schema`): config.json against its format,
    the weights' header against the shapes config.json implies, metrics.json and
    history.csv; only then is memory allocated and the model built.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = limits.check_path(path, "the run folder")
    if not path.is_dir() and folders.interrupted(path):  # a save cut between its two renames
        with locks.lock(path, what=str(path), fix="try again when it finishes"):
            folders.recover(path, OWNED)
    if not path.is_dir():
        raise UserInputError(f"{path}: no such run folder; pass the folder a run was saved to (softreg train --out).")
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise UserInputError(f"{path}: {name} is missing; this is not a complete softreg run, train again.")
    doc = runfiles.load_config(path / "config.json", __version__)
    try:
        config = TrainConfig.from_dict(doc["train"])
    except UserInputError as exc:
        raise runfiles.damaged(path / "config.json", f"train: {exc}") from None
    model_config = ModelConfig(**doc["model"])
    weights = path / "model.safetensors"
    header = runfiles.read_weights_header(weights)
    runfiles.check_weights(weights, header, expected_tensors(model_config, doc["preprocess"]), doc["model"],
                           doc.get("dtype", "float32"))
    n_bytes = sum(8 * math.prod(shape) for _, shape in header.values())  # up to float64
    limits.check_allocation(n_bytes, f"{path}'s model", "use a machine with more memory")
    metrics = runfiles.load_metrics(path / "metrics.json")
    history = runfiles.load_history(path / "history.csv")
    schema_doc = doc["data"].get("schema")
    table_schema = None
    if schema_doc:
        from softreg.data.tables.columns import TableSchema

        table_schema = TableSchema.from_dict(schema_doc)
    import torch

    with torch.random.fork_rng(devices=[]):  # the initial weights drawn here are replaced at once
        net = build_model(model_config)
    model = Classifier(net, Preprocess(model_config.n_features, doc["preprocess"]), model_config.n_classes,
                       table_schema)
    if doc.get("dtype") == "float64":
        model.double()
    try:
        state = load_file(str(weights))
        model.load_state_dict(state)
    except (SafetensorError, OSError, ValueError) as exc:
        raise runfiles.damaged(weights, str(exc)) from None
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        raise UserInputError(f"{path}: weights do not match config.json ({detail}); train again.") from None
    model.eval()
    return LoadedRun(model.to(device), config, model_config, doc["data"], metrics, path, history)
