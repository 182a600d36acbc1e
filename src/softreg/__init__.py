"""softreg: softmax regression, logistic regression and small MLP classifiers on PyTorch."""

__version__ = "0.1.0"

# The public API, imported on first use: `import softreg` (and the command line's start, which
# must install its Ctrl-C handler before anything heavy) loads neither torch nor scikit-learn.
_EXPORTS = {
    "Dataset": "softreg.data.base", "Split": "softreg.data.base",
    "SoftregError": "softreg.errors", "UserInputError": "softreg.errors",
    "MLP": "softreg.models", "Classifier": "softreg.models", "LogisticRegression": "softreg.models",
    "SoftmaxRegression": "softreg.models",
    "TrainConfig": "softreg.config", "make_config": "softreg.config",
    "load_dataset": "softreg.data",
    "load_run": "softreg.runs", "save_result": "softreg.runs", "save_run": "softreg.runs",
    "fit": "softreg.train",
    "SoftmaxRegressionClassifier": "softreg.estimators", "LogisticRegressionClassifier": "softreg.estimators",
    "MLPClassifier": "softreg.estimators",
}

# `softreg.train` stays the module (``from softreg.train import train``), not shadowed by its function.

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'softreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
