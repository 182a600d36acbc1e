"""One training run assembled: the classifier and its TrainState (the plan computed once, here) and
the batch sources it reads, for every caller (``train``, the command line, the estimators' ``fit``
and ``partial_fit``, and each stage of the ``--l2 auto`` path)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Iterable

import torch

from softreg.data.base import Dataset, Split
from softreg.data.sources import BatchSource, InMemorySource, share
from softreg.errors import UserInputError
from softreg.models import MLP, Classifier, ModelConfig, Preprocess, build_model
from softreg.models.preprocess import chunks_of
from softreg.models.sparse import row_range, sparse_preprocess
from softreg.settings import spell
from softreg.system.processes import SINGLE, Comm
from softreg.training.config import LESSON_TABLES, Runtime, TrainConfig
from softreg.training.loop import Callback, cpu_threads, evaluate_source, fit, train_epoch
from softreg.training.plan import Plan, make_plan
from softreg.training.state import TrainState, stopping_for

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Fit:
    """A run ready to train: its state (model, update rule, plan) and the sources of its splits."""

    state: TrainState
    train: BatchSource
    validation: BatchSource | None = None
    test: BatchSource | None = None
    comm: Comm = SINGLE

    @property
    def plan(self) -> Plan:
        return self.state.plan

    def run(self, callbacks: Iterable[Callback] = ()) -> TrainState:
        """Train to the plan's last epoch or the stopping rule (softreg.training.loop.fit)."""
        return fit(self.state, self.train, validation=self.validation, callbacks=callbacks, comm=self.comm)

    def epoch(self, source: BatchSource | None = None, callbacks: Iterable[Callback] = ()) -> bool:
        """One more epoch, on ``source`` (other rows: ``partial_fit``) or the run's own; True: stop."""
        with cpu_threads(self.plan.threads, self.device):
            return train_epoch(self.state, source or self.train, callbacks=callbacks, comm=self.comm)

    @property
    def device(self) -> torch.device:
        return next(self.state.model.parameters()).device

    def rows(self, X: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None) -> InMemorySource:
        """Rows as a source on this run's device, weights in its dtype (each process keeps its share)."""
        w = None if w is None else w.to(self.state.model.dtype)
        return InMemorySource(X, y, w, rank=self.comm.rank, world=self.comm.world, device=self.device)

    def metrics(self) -> dict:
        """train_seconds, epochs, the plan, and the loss and accuracy of each split (one chunked pass each)."""
        return final_metrics(self.state, {"train": self.train, "val": self.validation, "test": self.test},
                             self.comm)


def prepare(data, config: TrainConfig, runtime: Runtime | None = None, *, validation: Split | None = None,
            sample_weight: torch.Tensor | None = None, resume: tuple[dict, dict] | None = None,
            model: Classifier | None = None, comm: Comm = SINGLE) -> Fit:
    """Assemble a run on ``data`` (a Dataset, or a StreamData read from disk).

    validation : rows scored every epoch (held out by the caller); sample_weight : (n_train,) or None
    resume : (tensors, state) of a checkpoint of this very run; model : a classifier to go on training
    ``config.optim.l2`` must be a number (``train`` resolves ``"auto"`` first).
    """
    runtime = (runtime or Runtime()).validate()
    if config.optim.l2 == "auto":
        raise UserInputError(f"{spell('l2', 'auto')} is chosen before a run is assembled; use softreg.train, "
                             "or give l2 a number.")
    device = comm.device_for(runtime.device)
    if data.streamed:
        pieces = len(data.train.pieces)
        if pieces < comm.world:  # a process without a piece would leave the others waiting at every step
            raise UserInputError(f"{comm.world} processes share a streamed table by its pieces (files, Parquet row "
                                 f"groups, 4 MB ranges of an svmlight file) and this one has {pieces}; split it "
                                 f"into at least {comm.world} files, or use fewer processes.")
    state = new_state(data, config, runtime, has_validation=validation is not None, device=device,
                      fit_preprocess=resume is None, model=model, comm=comm)
    if resume is not None:
        state.load_checkpoint(*resume)
    run = Fit(state, data.train, comm=comm)
    if not data.streamed:  # each process keeps its contiguous share of the rows (all of them when alone)
        run.train = run.rows(data.train.X, data.train.y, sample_weight)
        run.validation = None if validation is None else run.rows(validation.X, validation.y)
        run.test = None if data.test is None else run.rows(data.test.X, data.test.y)
    else:
        run.test = data.test
    return run


def preprocess_kind(data: Dataset, config: TrainConfig) -> str:
    """The preprocessing a run uses: ``auto`` is pixels for images, none for the lessons' tables,
    standardize otherwise; sparse rows follow ``softreg.models.sparse.sparse_preprocess``."""
    kind = config.data.preprocess
    if data.sparse:
        return sparse_preprocess(kind)
    if kind != "auto":
        return kind
    if data.streamed:
        return data.preprocess.kind
    if data.pixel_max:
        return "pixels"
    return "none" if data.name in LESSON_TABLES else "standardize"


def model_config_for(data: Dataset, config: TrainConfig) -> ModelConfig:
    m = config.model
    return ModelConfig(kind=m.kind, n_features=data.n_features, n_classes=data.n_classes,
                       hidden=list(m.hidden), activation=m.activation, bias=m.bias, init=m.init,
                       index_base=data.index_base)


def build_classifier(data: Dataset, config: TrainConfig, fit_preprocess: bool = True,
                     comm: Comm = SINGLE) -> Classifier:
    """Fit the preprocessing on the training split (in chunks) and create the network, drawing its
    initial weights from torch's random state. A streamed dataset brings its preprocessing,
    fitted in its own pass over the data. With several processes each fits its share of the
    rows and the statistics are merged, so all apply what one process would have fitted."""
    if data.streamed:
        preprocess = copy.deepcopy(data.preprocess)
    elif fit_preprocess:
        keep = data.schema.unscaled() if data.schema is not None else None
        lo, hi = share(len(data.train), comm.rank, comm.world)
        X = row_range(data.train.X, lo, hi)
        preprocess = Preprocess.fit_chunks(preprocess_kind(data, config), chunks_of(X), data.n_features,
                                           data.pixel_max, keep, comm.merge_moments)
    else:
        preprocess = Preprocess(data.n_features, preprocess_kind(data, config))  # buffers come from a checkpoint
    net = build_model(model_config_for(data, config))
    return Classifier(net, preprocess, data.n_classes, schema=data.schema)


def runtime_for(data, runtime: Runtime, device: torch.device) -> Runtime:
    """The runtime as training uses it: sparse rows train on one CPU thread unless told otherwise
    (two threads were slower for every sparse batch size measured here: BENCHMARKS.md)."""
    if data.sparse and not runtime.threads and device.type == "cpu":
        return replace(runtime, threads=1)
    return runtime


def new_state(data: Dataset, config: TrainConfig, runtime: Runtime, *, has_validation: bool,
              device: torch.device, fit_preprocess: bool = True, model: Classifier | None = None,
              comm: Comm = SINGLE) -> TrainState:
    """Build the classifier (unless ``model`` continues an earlier fit) and the TrainState,
    without touching the caller's random state.

    The network's initial weights are drawn after seeding with ``config.seed``; the trainer's
    generator continues from there, so a seeded run shuffles as the lessons' DataLoader did.
    """
    plan = make_plan(config, len(data.train), data.n_features, runtime_for(data, runtime, device), device.type)
    # the preprocessing is fitted on the loop's threads: 3x faster than two threads under load
    with torch.random.fork_rng(devices=[]), cpu_threads(plan.threads, torch.device(device)):
        torch.manual_seed(config.seed)
        if model is None:
            model = build_classifier(data, config, fit_preprocess, comm)
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
    model.to(device=device, dtype=DTYPES[config.optim.dtype])
    state = TrainState(model, config, plan, generator, stopping_for(config, has_validation))
    if isinstance(model.net, MLP):
        state.forward = comm.wrap(model.net)  # DistributedDataParallel (gradients summed in backward), or None
    return state


def final_metrics(state: TrainState, sources: dict, comm: Comm = SINGLE) -> dict:
    """train_seconds, epochs and the loss and accuracy of each split (one chunked pass each)."""
    metrics: dict = {"train_seconds": state.elapsed, "epochs": len(state.history), "plan": state.plan.to_dict()}
    if state.history.best_epoch is not None:
        metrics["best_epoch"] = state.history.best_epoch
    # on the loop's threads: two threads scored 10x slower than one while another process kept a
    # core busy (BENCHMARKS.md, "Scoring")
    with cpu_threads(state.plan.threads, next(state.model.parameters()).device):
        for name, source in sources.items():
            if source is not None:
                scores = evaluate_source(state.model, source, comm)
                metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = scores["loss"], scores["accuracy"]
    metrics.update(comm.metrics())
    return metrics
