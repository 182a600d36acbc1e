"""``train``: from a dataset and a config to a trained classifier and its scores.

It holds out the validation split, chooses the L2 penalty when asked (``l2="auto"``), assembles the
run (softreg.training.fitting: preprocessing fitted on the training rows, network, TrainState),
runs it and scores every split once. ``assemble`` stops before running, for callers that show
the plan first (the command line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from softreg.data.base import Dataset, Split
from softreg.data.split import stratified_split
from softreg.errors import UserInputError
from softreg.models import Classifier
from softreg.models.sparse import take_rows
from softreg.settings import spell
from softreg.system.processes import SINGLE, Comm
from softreg.training.config import Runtime, TrainConfig, make_config
from softreg.training.fitting import Fit, prepare
from softreg.training.loop import Callback
from softreg.training.plan import Plan
from softreg.training.state import History, TrainState


@dataclass
class TrainResult:
    model: Classifier
    history: History
    metrics: dict
    config: TrainConfig
    plan: Plan
    state: TrainState


@dataclass
class Assembled:
    """A run ready to train, with the settings it follows (``l2="auto"`` resolved) and what was chosen."""

    fit: Fit
    config: TrainConfig
    extra_metrics: dict

    def run(self, callbacks: Iterable[Callback] = ()) -> TrainResult:
        state = self.fit.run(callbacks)
        metrics = {**self.fit.metrics(), **self.extra_metrics}
        return TrainResult(state.model, state.history, metrics, self.config, state.plan, state)


def assemble(data, config: TrainConfig | None = None, *, runtime: Runtime | None = None,
             sample_weight: torch.Tensor | None = None, resume: tuple[dict, dict] | None = None,
             comm: Comm = SINGLE) -> Assembled:
    """Everything ``train`` does before the loop runs; ``.fit.plan`` is the plan it will follow."""
    config = (config or make_config(data_name=data.name)).validate()
    runtime = (runtime or Runtime()).validate()
    data.validate()
    if data.streamed:
        if config.stop.validation_fraction > 0:
            raise UserInputError(f"{spell('validation_fraction')} is not available with {spell('stream', True)}; give "
                                 f"a separate {spell('test')} table and leave it out.")
        if config.optim.l2 == "auto":
            raise UserInputError(f"{spell('l2', 'auto')} fits the model at many penalties, which "
                                 f"{spell('stream', True)} does not do; give {spell('l2')} a number (e.g. "
                                 f"{spell('l2', 0.001)}), or leave out {spell('stream', True)}.")
        return Assembled(prepare(data, config, runtime, resume=resume, comm=comm), config, {})
    if sample_weight is not None and config.stop.validation_fraction > 0:
        raise UserInputError("sample weights with a validation split are not supported by train(); "
                             "hold out the validation rows yourself.")
    data, validation = split_validation(data, config.stop.validation_fraction, config.seed)
    config, choice = resolve_l2(data, config, runtime, sample_weight, comm)
    extra = {} if choice is None else {"l2": choice.l2, "l2_auto": choice.to_dict()}
    fit = prepare(data, config, runtime, validation=validation, sample_weight=sample_weight, resume=resume,
                  comm=comm)
    return Assembled(fit, config, extra)


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

    data : a Dataset in memory, or a StreamData read from disk (softreg.data.open_data)
    config : the settings (default: ``make_config()`` for this data)
    runtime : device, threads, checkpoints (never change the result)
    callbacks : logging, progress, checkpoints (softreg.training.callbacks)
    sample_weight : optional tensor of shape (n_train,) scaling each sample's cost
    resume : (tensors, state) read from a checkpoint of this very run: training continues from it
    """
    return assemble(data, config, runtime=runtime, sample_weight=sample_weight, resume=resume,
                    comm=comm).run(callbacks)


def split_validation(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Split | None]:
    """Hold out ``fraction`` of the training split (softreg.data.split's stratified split, fixed by ``seed``)."""
    if fraction <= 0:
        return data, None
    kept, held = stratified_split(data.train.y.numpy(), fraction, seed, minimum=1)
    if len(kept) == 0:
        raise UserInputError(f"validation_fraction {fraction} leaves no training samples; lower it.")
    kept, held = torch.from_numpy(kept), torch.from_numpy(held)
    return (data.with_train(Split(take_rows(data.train.X, kept), data.train.y[kept])),
            Split(take_rows(data.train.X, held), data.train.y[held]))


def resolve_l2(data: Dataset, config: TrainConfig, runtime: Runtime, sample_weight: torch.Tensor | None,
               comm: Comm = SINGLE):
    """(config with a number for l2, the L2Choice or None): ``l2="auto"`` is chosen on a
    regularisation path over a validation split of ``data.train`` (softreg.training.l2path).
    With several processes each walks the path on all the rows and rank 0's choice is taken by
    all (CPUs that round differently could otherwise disagree)."""
    if config.optim.l2 != "auto":
        return config, None
    from softreg.training.l2path import choose_l2, refit_config

    choice = comm.broadcast(choose_l2(data, config, runtime=runtime, sample_weight=sample_weight))
    return refit_config(config, choice), choice
