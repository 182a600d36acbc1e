"""softreg: softmax regression, logistic regression and small MLP classifiers on PyTorch."""

__version__ = "0.1.0"

from softreg.data.base import Dataset, Split  # noqa: E402
from softreg.errors import SoftregError, UserInputError  # noqa: E402
from softreg.models import MLP, Classifier, LogisticRegression, SoftmaxRegression  # noqa: E402
from softreg.training.config import TrainConfig, make_config  # noqa: E402
from softreg.data import load_dataset  # noqa: E402
from softreg.runs import load_run, save_result, save_run  # noqa: E402
from softreg.training import train  # noqa: E402
from softreg.estimators import LogisticRegressionClassifier, MLPClassifier, SoftmaxRegressionClassifier  # noqa: E402


__all__ = [
    "__version__", "Dataset", "Split", "SoftregError", "UserInputError", "MLP", "Classifier",
    "LogisticRegression", "SoftmaxRegression", "TrainConfig", "train", "make_config", "load_dataset", "load_run", "save_result", "save_run",
    "SoftmaxRegressionClassifier", "LogisticRegressionClassifier", "MLPClassifier",
]
