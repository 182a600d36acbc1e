"""softreg: softmax regression, logistic regression and small MLP classifiers on PyTorch."""

__version__ = "0.1.0"

from softreg.data.base import Dataset, Split  # noqa: E402
from softreg.errors import SoftregError, UserInputError  # noqa: E402
from softreg.models import MLP, Classifier, LogisticRegression, SoftmaxRegression  # noqa: E402
from softreg.config import TrainConfig, make_config  # noqa: E402
from softreg.train import fit, train  # noqa: E402

__all__ = [
    "__version__", "Dataset", "Split", "SoftregError", "UserInputError", "MLP", "Classifier",
    "LogisticRegression", "SoftmaxRegression", "TrainConfig", "fit", "make_config", "train",
]
