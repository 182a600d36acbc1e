"""A run directory on disk: config.json, model.safetensors, metrics.json, history.csv.

A run is written into a temporary sibling folder and renamed into place at the
end, so an interrupted or failed save never leaves a half-written run behind.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


from softreg import __version__
from softreg.errors import UserInputError
from softreg.models import PREPROCESS, Classifier, ModelConfig, Preprocess, build_model
from softreg.data.base import Dataset
from softreg.training.config import TrainConfig, config_from_flat
from softreg.training.state import CHECKPOINT_DIR, History
from softreg.training.trainer import TrainResult, model_config_for

FORMAT = 2  # config.json layout: 2 = nested training settings (softreg 0.2); 1 = flat (0.1)
RUNTIME_KEYS = ("device", "threads", "log_every")  # format 1 kept these with the settings

FILES = ("config.json", "model.safetensors", "metrics.json", "history.csv")


@dataclass
class LoadedRun:
    model: Classifier
    config: TrainConfig
    model_config: ModelConfig
    data: dict  # what was trained on: name, source, classes, image_shape, pixel_max, ...
    metrics: dict
    path: Path


def check_writable(out: str | Path) -> Path:
    """Fail before training, not after, when ``out`` cannot become a run directory."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file; give a folder path for the run.")
    if out.is_dir() and any(p.name != CHECKPOINT_DIR for p in out.iterdir()) and not (out / "config.json").exists():
        raise UserInputError(
            f"--out {out} is a non-empty folder that is not a softreg run; choose a new folder."
        )
    probe = out.absolute().parent
    while not probe.exists():
        probe = probe.parent
    probe_writable(probe, f"the run to {out}")
    return out


def probe_writable(folder: Path, what: str) -> None:
    """Create and remove a temporary folder in ``folder``: a real write, since permission
    bits do not tell (root, read-only mounts, /proc)."""
    try:
        shutil.rmtree(tempfile.mkdtemp(prefix=".softreg-probe.", dir=folder))
    except OSError as exc:
        raise UserInputError(
            f"cannot write {what}: {folder} is not writable ({exc.strerror or exc}); choose another --out."
        ) from None


def describe_data(dataset: Dataset, spec: str, label: str | None = None, options: dict | None = None) -> dict:
    """What a run records about its data, enough to load the same data again.

    spec : the ``--data`` argument: a dataset name, or a path (stored absolute).
    label : the label column asked for; the one actually used is recorded (tables).
    options : how the table was read (test, drop, columns, header, sep), for evaluate and predict.
    """
    from softreg.data import BUILTIN, NAMED_IDX

    if dataset.schema is not None:
        label = dataset.schema.label
    options = {k: v for k, v in (options or {}).items() if k in TABLE_OPTIONS}
    if options.get("test"):
        options["test"] = str(Path(options["test"]).resolve())
    return {
        "spec": spec if spec in BUILTIN + NAMED_IDX else str(Path(spec).resolve()),
        "options": options,
        "name": dataset.name, "source": dataset.source, "label": label, "classes": dataset.classes,
        "schema": dataset.schema.to_dict() if dataset.schema is not None else None,
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "pixel_max": dataset.pixel_max, "feature_names": dataset.feature_names,
        "n_train": len(dataset.train), "n_test": len(dataset.test) if dataset.test is not None else 0,
    }


TABLE_OPTIONS = ("test", "drop", "columns", "header", "sep", "stream")


def save_result(out: str | Path, result: TrainResult, dataset: Dataset, spec: str,
                label: str | None = None, options: dict | None = None) -> Path:
    """Save what ``softreg.training.train`` returned as a run folder."""
    return save_run(out, result.model, result.config, model_config_for(dataset, result.config),
                    describe_data(dataset, spec, label, options), result.metrics, result.history)


def save_run(
    out: str | Path,
    model: Classifier,
    config: TrainConfig,
    model_config: ModelConfig,
    data_info: dict,
    metrics: dict,
    history: History | None = None,
) -> Path:
    """Write the run atomically; an existing run at ``out`` is replaced only once the new one is complete."""
    from safetensors.torch import save_file

    out = check_writable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise UserInputError(f"cannot write the run to {out} ({exc.strerror}); choose another --out.") from None
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"softreg": __version__})
        config_doc = {
            "format": FORMAT,
            "softreg_version": __version__,
            "model": model_config.to_dict(),
            "preprocess": model.preprocess.kind,
            "dtype": str(model.dtype).replace("torch.", ""),
            "train": config.to_dict(),
            "data": data_info,
        }
        _write_json(tmp / "config.json", config_doc)
        _write_json(tmp / "metrics.json", metrics)
        with open(tmp / "history.csv", "w", newline="") as f:
            rows = history.rows if history is not None else []
            columns = list(rows[0]) if rows else ["epoch", "avg_cost"]
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        if out.exists():
            _swap(tmp, out)
        else:
            os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):  # disk full, folder removed or made read-only meanwhile
            raise UserInputError(
                f"cannot write the run to {out} ({exc.strerror or exc}); free space or choose another --out."
            ) from None
        raise
    return out


def _swap(new: Path, out: Path) -> None:
    """Replace the run folder ``out`` by ``new``; on failure the old run is put back."""
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    try:
        os.replace(out, old / "run")
        try:
            os.replace(new, out)
        except BaseException:
            os.replace(old / "run", out)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, doc: dict) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """Rebuild the classifier (preprocessing included) saved by ``save_run``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise UserInputError(f"{path}: no such run folder; pass the --out folder of a `softreg train`.")
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise UserInputError(f"{path}: {name} is missing; this is not a complete softreg run, train again.")
    try:
        doc = json.loads((path / "config.json").read_text())
        model_config = ModelConfig(**doc["model"])
        if doc.get("format", 1) == 1:
            flat = {k: v for k, v in doc["train"].items() if k not in RUNTIME_KEYS}
            config = config_from_flat(flat, flat.pop("recipe", "default"))
        else:
            config = TrainConfig.from_dict(doc["train"])
        data_info = doc["data"]
        preprocess_kind = doc["preprocess"]
        if preprocess_kind not in PREPROCESS or preprocess_kind == "auto":
            raise ValueError(f"unknown preprocessing {preprocess_kind!r}")
        classes = data_info["classes"]
        if not isinstance(classes, list) or len(classes) != model_config.n_classes:
            raise ValueError(f"data.classes does not list the model's {model_config.n_classes} classes")
        if "spec" not in data_info:  # evaluate and predict find the data through it
            raise KeyError("spec")
        net = build_model(model_config)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        detail = f"no {exc} entry" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        raise UserInputError(f"{path}/config.json is damaged ({detail}); train the run again.") from None
    try:
        state = load_file(str(path / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserInputError(f"{path}/model.safetensors is damaged ({exc}); train the run again.") from None
    schema = None
    if data_info.get("schema"):
        from softreg.data.tables import TableSchema

        schema = TableSchema.from_dict(data_info["schema"])
    model = Classifier(net, Preprocess(model_config.n_features, preprocess_kind), model_config.n_classes, schema)
    if doc.get("dtype") == "float64":
        model.double()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        raise UserInputError(f"{path}: weights do not match config.json ({detail}); train again.") from None
    metrics = {}
    if (path / "metrics.json").is_file():
        try:
            metrics = json.loads((path / "metrics.json").read_text())
        except (OSError, ValueError):
            metrics = {}
    model.eval()
    return LoadedRun(model.to(device), config, model_config, data_info, metrics, path)


def load_run_dataset(run: LoadedRun, data: str | None = None, data_dir: str | None = None) -> Dataset:
    """The data to score a run on, with the run's class numbering.

    Without ``data``: the run's own data, read as in training (same split, same table options).
    A table given to a table model is encoded with the model's schema (columns matched by name)
    and scored whole, as the test split.
    """
    from softreg.data import load_dataset
    from softreg.data.tables import is_table
    from softreg.data.tabular import load_scoring_table

    classes = run.data["classes"]
    options = {k: v for k, v in (run.data.get("options") or {}).items() if k in TABLE_OPTIONS}
    schema = run.model.schema
    if data is not None and schema is not None and is_table(Path(data)):
        return load_scoring_table(data, schema, classes, header=options.get("header"), sep=options.get("sep"))
    spec = data or run.data["spec"]
    if data is not None:
        options = {}
    if options.pop("stream", False):  # trained from disk: scored from disk, in chunks
        from softreg.data.stream import open_stream
        from softreg.training.job import DataArgs

        args = DataArgs(spec=spec, data_dir=data_dir, label=run.data.get("label"), stream=True, **options)
        streamed = open_stream(args, run.config)
        if streamed.classes != list(classes) or streamed.n_features != run.model_config.n_features:
            raise UserInputError(f"{spec} no longer matches the run (classes or columns changed since training); "
                                 "score it with --data, or train again.")
        return streamed
    dataset = load_dataset(spec, data_dir=data_dir, label=run.data.get("label"), **options)
    if dataset.n_features != run.model_config.n_features:
        raise UserInputError(
            f"{spec} has {dataset.n_features} features per sample but the model expects "
            f"{run.model_config.n_features}; score data shaped like the training data."
        )
    return dataset.relabel(classes)
