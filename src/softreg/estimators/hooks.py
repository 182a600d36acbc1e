"""What an estimator's fit reports while it runs: ``verbose`` lines and scikit-learn's estimator
callbacks (``set_callbacks``, scikit-learn 1.9+), both as callbacks of softreg's training loop.

For scikit-learn's protocol the fit is the root task and each epoch one subtask: an epoch's task
begins at its first update and ends after its bookkeeping, with a fitted copy of the estimator
(the weights as they stand, averaged where averaging has started) for callbacks that score it.
A callback that asks to stop ends training after that epoch.
"""

from __future__ import annotations

import copy

from softreg.training.loop import Callback
from softreg.training.state import TrainState


def snapshot(state: TrainState):
    """A copy of the model with the weights a fit stopped now would keep."""
    model = copy.deepcopy(state.model)
    average = state.average
    if average is not None and average.count:
        for p, mean in zip(model.net.parameters(), average.mean):
            p.data.copy_(mean)
    model.eval()
    return model


class Verbose(Callback):
    """Epoch lines on stdout: every epoch with verbose >= 2, else about ten per fit."""

    def __init__(self, name: str, epochs: int, level: int):
        from softreg.training.callbacks import EpochLog

        self.log = EpochLog(lambda line: print(f"{name}: {line}", flush=True), epochs, 1 if level >= 2 else 0)

    def on_epoch(self, state: TrainState, row: dict) -> None:
        self.log.on_epoch(state, row)


class SklearnCallbacks(Callback):
    """scikit-learn's callbacks on the loop: one subtask per epoch of the root context ``root``."""

    def __init__(self, estimator, root, X, y, metadata: dict | None):
        self.estimator, self.root = estimator, root
        self.X, self.y, self.metadata = X, y, metadata
        self.task = None

    def _begin(self) -> None:
        self.task = self.root.subcontext(task_name="epoch")
        self.task.call_on_fit_task_begin(estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata)

    def on_step(self, state: TrainState) -> None:
        if self.task is None:
            self._begin()

    def on_epoch(self, state: TrainState, row: dict) -> bool | None:
        if self.task is None:
            self._begin()
        stop = self.task.call_on_fit_task_end(estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata,
                                              reconstruction_attributes=lambda: {"model_": snapshot(state)})
        self.task = None
        return True if stop else None


def fit_callbacks(estimator, X, y, sample_weight, epochs: int, plan_lines: list[str]) -> tuple[list, object]:
    """(loop callbacks, root context or None) for one fit; prints the plan when verbose."""
    from softreg.estimators.sklearn_compat import CALLBACKS

    name = type(estimator).__name__
    callbacks: list[Callback] = []
    if estimator.verbose:
        for line in plan_lines:
            print(f"{name}: {line.strip()}", flush=True)
        callbacks.append(Verbose(name, epochs, int(estimator.verbose)))
    root = None
    if CALLBACKS and (getattr(estimator, "_skl_callbacks", None) or hasattr(estimator, "_parent_callback_ctx")):
        root = estimator._init_callback_context(max_subtasks=epochs)
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        root.call_on_fit_task_begin(estimator=estimator, X=X, y=y, metadata=metadata)
        callbacks.append(SklearnCallbacks(estimator, root, X, y, metadata))
    return callbacks, root


def end_fit(estimator, root, X, y, sample_weight) -> None:
    """Close the root task of scikit-learn's callbacks (when there is one)."""
    if root is not None:
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        root.call_on_fit_task_end(estimator=estimator, X=X, y=y, metadata=metadata, reconstruction_attributes={})
