"""The trainer state: everything a run needs to continue exactly where it stopped.

``TrainState`` holds the model, the update rule and its state, the weight average, the stopping
rule's memory, the position (update, epoch, batch within the epoch, the epoch's seed and running
sums), the trainer's random-number generator and the history. ``save_checkpoint`` writes it as
one safetensors file whose header carries the JSON part, atomically, so a kill at any moment
leaves the previous checkpoint or the new one; ``load_checkpoint`` reads it back, and a run
continued from it ends with the same weights, bit for bit, as a run never interrupted.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.models import Classifier
from softreg.training.config import TrainConfig
from softreg.training.plan import Plan
from softreg.training.updates import LBFGS, WeightAverage, make_updater

CHECKPOINT_FORMAT = 1
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "state.safetensors"


@dataclass
class History:
    """One row per epoch: mean minibatch cost, running accuracy, validation scores, seconds."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None  # the epoch whose weights were kept (early stopping)

    def append(self, **row) -> None:
        self.rows.append(row)

    @property
    def avg_cost(self) -> list[float]:
        return [r["avg_cost"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


class Stopping:
    """The one stopping rule: stop after ``patience`` epochs in a row that do not lower the best
    watched cost by more than ``tol``; with ``restore``, keep the best epoch's weights.

    monitor : "val_loss" (early stopping on a validation split), "avg_cost" (the training
        cost, scikit-learn's rule for estimators) or None (run every planned epoch).
    """

    def __init__(self, monitor: str | None, patience: int, tol: float, restore: bool):
        self.monitor, self.patience, self.tol, self.restore = monitor, patience, tol, restore
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.stale = 0

    def observe(self, row: dict, model: Classifier) -> bool:
        """Record an epoch's row; True means stop now."""
        if self.monitor is None or self.monitor not in row:
            return False
        value = row[self.monitor]
        if value < self.best - self.tol:
            self.stale = 0
            if self.restore:
                self.best_weights = copy.deepcopy(model.state_dict())
                self.best_epoch = row["epoch"]
        else:
            self.stale += 1
        self.best = min(self.best, value)
        return self.stale >= self.patience


def stopping_for(config: TrainConfig, has_validation: bool) -> Stopping:
    s = config.stop
    if s.early_stopping and has_validation:
        return Stopping("val_loss", s.patience, s.tol, restore=True)
    if s.stall_stop:
        return Stopping("avg_cost", s.patience, s.tol, restore=False)
    return Stopping(None, s.patience, s.tol, restore=False)


class TrainState:
    """A training run in progress (see the module docstring)."""

    def __init__(self, model: Classifier, config: TrainConfig, plan: Plan, generator: torch.Generator,
                 stopping: Stopping):
        self.model = model
        self.config = config
        self.plan = plan
        self.generator = generator
        self.stopping = stopping
        o = config.optim
        net = model.net
        if o.optimizer == "lbfgs":
            self.updater = LBFGS(net, o.lr, o.l2)
        else:
            self.updater = make_updater(net, o.optimizer, o.momentum, o.l2, o.l1)
        params = list(net.parameters())
        self.average = WeightAverage(params, plan.average_from) if plan.average_from is not None else None
        self.step = 0  # updates done
        self.epoch = 0  # epochs completed
        self.in_epoch = 0  # batches done in the current (unfinished) epoch
        self.epoch_seed: int | None = None  # the current epoch's shuffling seed
        self.epoch_cost = torch.zeros((), dtype=torch.float64)  # running sums of the current epoch
        self.epoch_correct = torch.zeros((), dtype=torch.int64)
        self.epoch_seen = 0
        self.history = History()
        self.elapsed = 0.0  # seconds in the training loop alone
        self.finished = False  # averaging / best weights applied
        self.forward = None  # a DistributedDataParallel wrapper of an MLP (several processes), else None

    # -- checkpoints -----------------------------------------------------------------------

    def to_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON-ready dict) describing the whole state."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors["rng"] = self.generator.get_state()
        tensors["epoch.cost"] = self.epoch_cost
        tensors["epoch.correct"] = self.epoch_correct
        meta: dict = {
            "step": self.step, "epoch": self.epoch, "in_epoch": self.in_epoch, "epoch_seed": self.epoch_seed,
            "epoch_seen": self.epoch_seen, "elapsed": self.elapsed, "history": self.history.rows,
            "stopping": {"best": _json_float(self.stopping.best), "best_epoch": self.stopping.best_epoch,
                         "stale": self.stopping.stale},
        }
        if isinstance(self.updater, LBFGS):
            lbfgs_tensors, meta["lbfgs"] = _flatten(self.updater.optimizer.state_dict()["state"])
            tensors.update({f"lbfgs.{k}": v for k, v in lbfgs_tensors.items()})
        else:
            tensors.update({f"updater.{k}": v for k, v in self.updater.state_tensors().items()})
        if self.average is not None:
            meta["average"] = {"count": self.average.count}
            tensors.update({f"average.{i}": t for i, t in enumerate(self.average.mean)})
        if self.stopping.best_weights is not None:
            tensors.update({f"best.{k}": v for k, v in self.stopping.best_weights.items()})
        return tensors, meta

    def load_checkpoint(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Restore what ``to_checkpoint`` saved (into a state built from the same config and data)."""

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        self.model.load_state_dict(part("model."))
        self.generator.set_state(tensors["rng"])
        self.epoch_cost, self.epoch_correct = tensors["epoch.cost"], tensors["epoch.correct"]
        for name in ("step", "epoch", "in_epoch", "epoch_seed", "epoch_seen", "elapsed"):
            setattr(self, name, meta[name])
        self.history.rows = list(meta["history"])
        s = meta["stopping"]
        self.stopping.best = _from_json_float(s["best"])
        self.stopping.best_epoch, self.stopping.stale = s["best_epoch"], s["stale"]
        best = part("best.")
        self.stopping.best_weights = best or None
        if isinstance(self.updater, LBFGS):
            state = _unflatten(part("lbfgs."), meta.get("lbfgs", {}))
            if state:
                self.updater.optimizer.load_state_dict(
                    {"state": state, "param_groups": self.updater.optimizer.state_dict()["param_groups"]})
        else:
            self.updater.load_state_tensors(part("updater."))
        if self.average is not None:
            self.average.count = meta["average"]["count"]
            saved = part("average.")
            self.average.mean = [saved[str(i)].clone() for i in range(len(self.average.mean))]


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)


def _from_json_float(x: float | str) -> float:
    return float(x)


def _flatten(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch.optim state {param index: {name: tensor | list | number}} -> (tensors, JSON)."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict = {}
    for index, entries in state.items():
        for name, value in entries.items():
            key = f"{index}.{name}"
            if isinstance(value, torch.Tensor):
                tensors[key] = value
                meta[key] = "tensor"
            elif isinstance(value, list):
                meta[key] = ["tensor" if isinstance(v, torch.Tensor) else v for v in value]
                for i, v in enumerate(value):
                    if isinstance(v, torch.Tensor):
                        tensors[f"{key}.{i}"] = v
            else:
                meta[key] = {"value": value.item() if hasattr(value, "item") else value}
    return tensors, meta


def _unflatten(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict = {}
    for key, kind in meta.items():
        index, name = key.split(".", 1)
        if kind == "tensor":
            value = tensors[key]
        elif isinstance(kind, list):
            value = [tensors[f"{key}.{i}"] if v == "tensor" else v for i, v in enumerate(kind)]
        else:
            value = kind["value"]
        state.setdefault(int(index), {})[name] = value
    return state


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / CHECKPOINT_FILE


def save_checkpoint(run_dir: str | Path, state: TrainState, resume_info: dict) -> Path:
    """Write ``run_dir/checkpoint/state.safetensors`` atomically.

    resume_info : JSON-ready description of how to rebuild the run (config, data arguments,
        the table schema): what ``softreg train --resume`` needs besides the state itself.
    """
    from safetensors.torch import save

    from softreg.system import io

    tensors, meta = state.to_checkpoint()
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    doc = {"format": CHECKPOINT_FORMAT, "state": meta, "run": resume_info}
    blob = save(tensors, metadata={"softreg_checkpoint": json.dumps(doc)})
    path = checkpoint_path(run_dir)
    io.ensure_folder(path.parent)
    io.atomic_write(path, blob)
    return path


def read_checkpoint(run_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, document) of a run folder's checkpoint; UserInputError naming what is wrong."""
    from safetensors import SafetensorError, safe_open

    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise UserInputError(
            f"{run_dir}: no checkpoint to resume from ({CHECKPOINT_DIR}/{CHECKPOINT_FILE} is missing); "
            f"train with {spell('checkpoint_every', 'N')} to make runs resumable, or start the run again."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            doc = json.loads((f.metadata() or {})["softreg_checkpoint"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"{path} is damaged ({' '.join(str(exc).split())[:200]}); "
                             f"start the run again without {spell('resume')}.") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise UserInputError(f"{path} was written in a checkpoint format this softreg does not read; "
                             f"start the run again without {spell('resume')}.")
    return tensors, doc
