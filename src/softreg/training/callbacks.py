"""Callbacks the command line hangs on the loop: epoch lines, a progress bar, checkpoints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from softreg.training.loop import Callback
from softreg.training.state import TrainState, save_checkpoint


class EpochLog(Callback):
    """Print an epoch's cost every ``every`` epochs (and the last), through ``echo``."""

    def __init__(self, echo: Callable[[str], None], epochs: int, every: int = 0):
        self.echo = echo
        self.epochs = epochs
        self.every = every or max(1, epochs // 10)

    def on_epoch(self, state: TrainState, row: dict) -> None:
        epoch = row["epoch"]
        if (epoch - 1) % self.every == 0 or epoch == self.epochs:
            line = (f"Epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  Cost: {row['avg_cost']:.6f}  "
                    f"Accuracy: {row['accuracy']:.4f}")
            if "val_loss" in row:
                line += f"  val cost {row['val_loss']:.6f}  val accuracy {row['val_accuracy']:.4f}"
            self.echo(line)


class ProgressBar(Callback):
    """A progress bar on stderr over every update of the run: epoch, samples per second, ETA.

    Lines printed while it runs go through ``print`` so the bar and the text never overwrite
    each other. Redrawn at most ten times a second.
    """

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
        self.task = None
        self.last = 0.0
        self.rows_at_start = 0
        self.tic = 0.0

    def print(self, text: str) -> None:
        if self.task is None:
            print(text, flush=True)
        else:
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _start(self, state: TrainState) -> None:
        plan = state.plan
        self.progress.start()
        self.task = self.progress.add_task("training", total=plan.total_steps, completed=state.step, rate="")
        self.tic = time.perf_counter()
        self.rows_at_start = state.step

    def on_step(self, state: TrainState) -> None:
        if self.task is None:
            self._start(state)
        now = time.perf_counter()
        if now - self.last < 0.1:
            return
        self.last = now
        plan = state.plan
        rate = (state.step - self.rows_at_start) * plan.batch_size / max(now - self.tic, 1e-9)
        self.progress.update(self.task, completed=state.step,
                             description=f"epoch {state.epoch + 1}/{plan.epochs}", rate=f"{rate:,.0f} samples/s")

    def on_epoch(self, state: TrainState, row: dict) -> None:
        if self.task is None:
            self._start(state)
        self.progress.update(self.task, completed=state.step, description=f"epoch {state.epoch}/{state.plan.epochs}")

    def on_end(self, state: TrainState) -> None:
        self.close()

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


class Checkpointer(Callback):
    """Save the state into ``run_dir/checkpoint/`` every ``every`` epochs and, within long
    epochs, whenever ``seconds`` have passed since the last save."""

    def __init__(self, run_dir: str | Path, resume_info: dict, every: int = 0, seconds: float = 0.0):
        self.run_dir = Path(run_dir)
        self.resume_info = resume_info
        self.every = every
        self.seconds = seconds
        self.last = time.monotonic()

    def save(self, state: TrainState) -> None:
        save_checkpoint(self.run_dir, state, self.resume_info)
        self.last = time.monotonic()

    def on_step(self, state: TrainState) -> None:
        if self.seconds and time.monotonic() - self.last >= self.seconds:
            self.save(state)

    def on_epoch(self, state: TrainState, row: dict) -> None:
        if self.every and state.epoch % self.every == 0:
            self.save(state)
        elif self.seconds and time.monotonic() - self.last >= self.seconds:
            self.save(state)
