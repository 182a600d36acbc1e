"""``train``: from an in-memory dataset and a config to a trained classifier and its scores.

It holds out the validation split, fits the preprocessing on the training rows, builds the
network and the TrainState (or restores them from a checkpoint), runs ``fit`` over an
in-memory batch source and scores every split once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np
import torch

from softreg.data.base import Dataset, Split
from softreg.data.sources import InMemorySource, share
from softreg.models.sparse import row_range, sparse_preprocess, take_rows
from softreg.errors import UserInputError
from softreg.models import MLP, Classifier, ModelConfig, Preprocess, build_model
from softreg.models.preprocess import chunks_of
from softreg.training.config import LESSON_TABLES, Runtime, TrainConfig, make_config
from softreg.training.device import resolve_device
from softreg.training.loop import SINGLE, Callback, Comm, cpu_threads, evaluate_source, fit
from softreg.training.plan import Plan, make_plan
from softreg.training.state import History, TrainState, stopping_for

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainResult:
    model: Classifier
    history: History
    metrics: dict
    config: TrainConfig
    plan: Plan
    state: TrainState


def preprocess_kind(data: Dataset, config: TrainConfig) -> str:
    """The preprocessing a run uses: ``auto`` is pixels for images, none for the lessons' tables,
    standardize otherwise; sparse rows follow ``softreg.models.sparse.sparse_preprocess``."""
    kind = config.data.preprocess
    if getattr(data, "index_base", None) is not None:
        return sparse_preprocess(kind)
    if kind != "auto":
        return kind
    if getattr(data, "preprocess", None) is not None:
        return data.preprocess.kind
    if data.pixel_max:
        return "pixels"
    return "none" if data.name in LESSON_TABLES else "standardize"


def model_config_for(data: Dataset, config: TrainConfig) -> ModelConfig:
    m = config.model
    return ModelConfig(kind=m.kind, n_features=data.n_features, n_classes=data.n_classes,
                       hidden=list(m.hidden), activation=m.activation, bias=m.bias, init=m.init,
                       index_base=getattr(data, "index_base", None))


def build_classifier(data: Dataset, config: TrainConfig, fit_preprocess: bool = True,
                     comm: Comm = SINGLE) -> Classifier:
    """Fit the preprocessing on the training split (in chunks) and create the network, drawing its
    initial weights from torch's random state. A streamed dataset brings its preprocessing,
    fitted in its own pass over the data. With several processes each fits its share of the
    rows and the statistics are merged, so all apply what one process would have fitted."""
    fitted = getattr(data, "preprocess", None)
    if fitted is not None:
        preprocess = copy.deepcopy(fitted)
    elif fit_preprocess:
        keep = data.schema.unscaled() if data.schema is not None else None
        lo, hi = share(len(data.train), comm.rank, comm.world)
        X = row_range(data.train.X, lo, hi)
        merge = comm.merge_moments if comm.world > 1 else None
        preprocess = Preprocess.fit_chunks(preprocess_kind(data, config), chunks_of(X), data.n_features,
                                           data.pixel_max, keep, merge)
    else:
        preprocess = Preprocess(data.n_features, preprocess_kind(data, config))  # buffers come from a checkpoint
    net = build_model(model_config_for(data, config))
    return Classifier(net, preprocess, data.n_classes, schema=data.schema)


def split_validation(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Split | None]:
    """Hold out ``fraction`` of the training split (stratified when possible, fixed by ``seed``)."""
    if fraction <= 0:
        return data, None
    from sklearn.model_selection import train_test_split

    y = data.train.y.numpy()
    n_val = max(1, int(round(len(y) * fraction)))
    if len(y) - n_val < 1:
        raise UserInputError(f"validation fraction {fraction} leaves no training samples; lower it.")
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() else None
    tr, va = train_test_split(np.arange(len(y)), test_size=n_val, random_state=seed, stratify=stratify)
    tr, va = torch.from_numpy(np.sort(tr)), torch.from_numpy(np.sort(va))
    kept = data.with_train(Split(take_rows(data.train.X, tr), data.train.y[tr]))
    return kept, Split(take_rows(data.train.X, va), data.train.y[va])


def runtime_for(data, runtime: Runtime, device: torch.device) -> Runtime:
    """The runtime as training uses it: sparse rows train on one CPU thread unless told otherwise
    (two threads were slower for every sparse batch size measured here: BENCHMARKS.md)."""
    if getattr(data, "index_base", None) is not None and not runtime.threads and device.type == "cpu":
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
    if comm.world > 1 and isinstance(model.net, MLP):
        state.forward = comm.wrap(model.net)  # DistributedDataParallel: gradients summed in backward
    return state


def train(
    data: Dataset,
    config: TrainConfig | None = None,
    *,
    runtime: Runtime | None = None,
    callbacks: Iterable[Callback] = (),
    sample_weight: torch.Tensor | None = None,
    resume: tuple[dict, dict] | None = None,
    comm: Comm = SINGLE,
) -> TrainResult:
    """Train a classifier on ``data.train`` and score it on every split.

    config : the settings (default: ``make_config()`` for this data)
    runtime : device, threads, checkpoints (never change the result)
    callbacks : logging, progress, checkpoints (softreg.training.callbacks)
    sample_weight : optional tensor of shape (n_train,) scaling each sample's cost
    resume : (tensors, state) read from a checkpoint of this very run: training continues from it
    """
    config = (config or make_config(data_name=data.name)).validate()
    runtime = (runtime or Runtime()).validate()
    data.validate()
    if getattr(data, "preprocess", None) is not None:
        return _train_stream(data, config, runtime, callbacks, resume, comm)
    if sample_weight is not None and config.stop.validation_fraction > 0:
        raise UserInputError("sample weights with a validation split are not supported by train(); "
                             "hold out the validation rows yourself.")
    device = comm.device if comm.world > 1 else resolve_device(runtime.device)
    data, validation = split_validation(data, config.stop.validation_fraction, config.seed)
    config, l2_choice = resolve_l2(data, config, runtime, sample_weight, comm)
    state = new_state(data, config, runtime, has_validation=validation is not None, device=device,
                      fit_preprocess=resume is None, comm=comm)
    if resume is not None:
        state.load_checkpoint(*resume)
    w = None if sample_weight is None else sample_weight.to(state.model.dtype)

    def source(split: Split | None, weights=None) -> InMemorySource | None:
        # each process keeps its contiguous share of the rows (all of them when alone)
        if split is None:
            return None
        return InMemorySource(split.X, split.y, weights, rank=comm.rank, world=comm.world, device=device)

    train_source = source(data.train, w)
    val_source = source(validation)
    fit(state, train_source, validation=val_source, callbacks=callbacks, comm=comm)
    metrics = final_metrics(state, {"train": train_source, "val": val_source, "test": source(data.test)}, comm)
    if l2_choice is not None:
        metrics["l2"], metrics["l2_auto"] = l2_choice.l2, l2_choice.to_dict()
    return TrainResult(state.model, state.history, metrics, config, state.plan, state)


def resolve_l2(data: Dataset, config: TrainConfig, runtime: Runtime, sample_weight: torch.Tensor | None,
               comm: Comm = SINGLE):
    """(config with a number for l2, the L2Choice or None): ``l2="auto"`` is chosen on a
    regularisation path over a validation split of ``data.train`` (softreg.training.l2path).
    With several processes each walks the path on all the rows and rank 0's choice is taken by
    all (CPUs that round differently could otherwise disagree)."""
    if config.optim.l2 != "auto":
        return config, None
    from softreg.training.l2path import choose_l2, refit_config

    choice = choose_l2(data, config, runtime=runtime, sample_weight=sample_weight)
    if comm.world > 1:
        choice = comm.broadcast(choice)
    return refit_config(config, choice), choice


def final_metrics(state: TrainState, sources: dict, comm: Comm = SINGLE) -> dict:
    """train_seconds, epochs and the loss and accuracy of each split (one chunked pass each)."""
    metrics: dict = {"train_seconds": state.elapsed, "epochs": len(state.history)}
    if state.history.best_epoch is not None:
        metrics["best_epoch"] = state.history.best_epoch
    # on the loop's threads: two threads scored 10x slower than one while another process kept a
    # core busy (BENCHMARKS.md, "Scoring")
    with cpu_threads(state.plan.threads, next(state.model.parameters()).device):
        for name, source in sources.items():
            if source is not None:
                scores = evaluate_source(state.model, source, comm)
                metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = scores["loss"], scores["accuracy"]
    if comm.world > 1:
        metrics["world_size"] = comm.world
    return metrics


def _train_stream(data, config: TrainConfig, runtime: Runtime, callbacks, resume, comm: Comm) -> TrainResult:
    """``train`` for a StreamData: its sources read batches from disk."""
    if config.stop.validation_fraction > 0:
        raise UserInputError("--validation-fraction is not available with --stream; give a separate --test table "
                             "and leave it out.")
    if config.optim.l2 == "auto":
        raise UserInputError("--l2 auto fits the model at many penalties, which --stream does not do; give --l2 a "
                             "number (e.g. --l2 0.001), or leave out --stream.")
    pieces = len(data.train.pieces)
    if pieces < comm.world:  # a process without a piece would leave the others waiting at every step
        raise UserInputError(f"{comm.world} processes share a streamed table by its pieces (files, Parquet row "
                             f"groups, 4 MB ranges of an svmlight file) and this one has {pieces}; split it into "
                             f"at least {comm.world} files, or use fewer processes.")
    device = comm.device if comm.world > 1 else resolve_device(runtime.device)
    state = new_state(data, config, runtime, has_validation=False, device=device, comm=comm)
    if resume is not None:
        state.load_checkpoint(*resume)
    fit(state, data.train, callbacks=callbacks, comm=comm)
    metrics = final_metrics(state, {"train": data.train, "test": data.test}, comm)
    return TrainResult(state.model, state.history, metrics, config, state.plan, state)
