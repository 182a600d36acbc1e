"""softreg: softmax regression, logistic regression and small MLP classifiers on PyTorch.

The public names below are imported on first use (PEP 562 module ``__getattr__``), so
``import softreg`` and ``softreg --help`` load neither torch nor scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "Dataset": "softreg.data.base",
    "Split": "softreg.data.base",
    "SoftregError": "softreg.errors",
    "UserInputError": "softreg.errors",
    "MLP": "softreg.models",
    "Classifier": "softreg.models",
    "LogisticRegression": "softreg.models",
    "SoftmaxRegression": "softreg.models",
    "TrainConfig": "softreg.training.config",
    "make_config": "softreg.training.config",
    "load_dataset": "softreg.data",
    "load_run": "softreg.runs.folder",
    "save_result": "softreg.runs.folder",
    "save_run": "softreg.runs.folder",
    "train": "softreg.training",
    "SoftmaxRegressionClassifier": "softreg.estimators.classifiers",
    "LogisticRegressionClassifier": "softreg.estimators.classifiers",
    "MLPClassifier": "softreg.estimators.classifiers",
}


__all__ = [
    "__version__", "Dataset", "Split", "SoftregError", "UserInputError", "MLP", "Classifier",
    "LogisticRegression", "SoftmaxRegression", "TrainConfig", "train", "make_config", "load_dataset", "load_run",
    "save_result", "save_run", "SoftmaxRegressionClassifier", "LogisticRegressionClassifier", "MLPClassifier",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from softreg._version import version

        value: Any = version()
    elif name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'softreg' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from softreg.training.config import TrainConfig, make_config
    from softreg.data import load_dataset
    from softreg.data.base import Dataset, Split
    from softreg.errors import SoftregError, UserInputError
    from softreg.estimators.classifiers import LogisticRegressionClassifier, MLPClassifier, SoftmaxRegressionClassifier
    from softreg.models import MLP, Classifier, LogisticRegression, SoftmaxRegression
    from softreg.runs.folder import load_run, save_result, save_run
    from softreg.training import train

    __version__: str
