"""Training: configuration, the plan, the trainer state with its checkpoints, and the loop."""

from softreg.training.config import (
    RECIPES,
    DataSpec,
    ModelSpec,
    OptimSpec,
    Runtime,
    StopSpec,
    TrainConfig,
    make_config,
    with_settings,
)
from softreg.training.loop import Callback, evaluate_source, fit, run_epoch, train_epoch
from softreg.training.plan import Plan, describe, make_plan
from softreg.training.state import History, TrainState, read_checkpoint, save_checkpoint
from softreg.training.fitting import Fit, build_classifier, prepare
from softreg.training.trainer import TrainResult, assemble, split_validation, train

__all__ = [
    "RECIPES", "DataSpec", "ModelSpec", "OptimSpec", "Runtime", "StopSpec", "TrainConfig", "make_config",
    "with_settings", "Callback", "evaluate_source", "fit", "run_epoch", "train_epoch", "Plan", "describe",
    "make_plan", "History", "TrainState", "read_checkpoint", "save_checkpoint", "TrainResult",
    "build_classifier", "split_validation", "train", "assemble", "prepare", "Fit",
]
