"""The classifiers: softmax regression, logistic regression and the multi-layer perceptron.

Every network maps preprocessed features of shape (N, F) to scores: (N, C) for
``C > 2`` outputs, or (N,) logits of the positive class for binary heads. The
``Classifier`` wraps a network with the preprocessing it was trained with, so
whatever scores raw inputs goes through the very same transform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from softreg import functional as SF
from softreg.errors import UserInputError

MODELS = ("softmax", "logistic", "mlp")
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
INITS = ("default", "zeros")
PREPROCESS = ("auto", "none", "pixels", "standardize")


class SoftmaxRegression(nn.Module):
    """Multinomial logistic regression: scores = x W^T + b, one row of W per class."""

    def __init__(self, n_features: int, n_classes: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(n_features, n_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # (N, F) -> (N, C)


class LogisticRegression(nn.Module):
    """Binary logistic regression: one logit per sample; sigmoid(logit) = P(class 1)."""

    def __init__(self, n_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(n_features, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)  # (N, F) -> (N, 1) -> (N,)


class MLP(nn.Module):
    """Fully connected layers with a nonlinearity between them.

    With two classes the head has one output (a logit, as in logistic
    regression); otherwise one score per class.
    """

    def __init__(
        self,
        n_features: int,
        hidden: tuple[int, ...] | list[int],
        n_classes: int,
        activation: str = "relu",
        bias: bool = True,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UserInputError(
                f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}."
            )
        self.binary = n_classes == 2
        sizes = [n_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out, bias=bias), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(sizes[-1], 1 if self.binary else n_classes, bias=bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)  # (N, C) or (N, 1)
        return out.squeeze(-1) if self.binary else out


@dataclass
class ModelConfig:
    """What is needed to rebuild a network; saved in the run's config.json."""

    kind: str = "softmax"  # softmax | logistic | mlp
    n_features: int = 0
    n_classes: int = 0
    hidden: list[int] = field(default_factory=lambda: [100])  # mlp only: units per hidden layer
    activation: str = "relu"  # mlp only: sigmoid | tanh | relu
    bias: bool = True  # False drops every bias term
    init: str = "default"  # default (PyTorch's) | zeros

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(config: ModelConfig) -> nn.Module:
    """Create the network named by ``config`` (drawing its initial weights from torch's RNG)."""
    if config.kind not in MODELS:
        raise UserInputError(f"unknown model {config.kind!r}; choose one of {', '.join(MODELS)}.")
    if config.init not in INITS:
        raise UserInputError(f"unknown init {config.init!r}; choose one of {', '.join(INITS)}.")
    if config.kind == "softmax":
        net: nn.Module = SoftmaxRegression(config.n_features, config.n_classes, config.bias)
    elif config.kind == "logistic":
        if config.n_classes != 2:
            raise UserInputError(
                f"logistic regression separates two classes but the data has {config.n_classes}; "
                "use --model softmax (or mlp) for more."
            )
        net = LogisticRegression(config.n_features, config.bias)
    else:
        if not config.hidden or any(int(h) < 1 for h in config.hidden):
            raise UserInputError(
                f"hidden layer sizes must be positive integers; got {config.hidden}. "
                "Example: --hidden 100 or --hidden 100,100."
            )
        net = MLP(config.n_features, config.hidden, config.n_classes, config.activation, config.bias)
    if config.init == "zeros":
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
    return net


class Preprocess(nn.Module):
    """Flatten and rescale raw inputs: out = (x - shift) * scale, per feature.

    Fitted on the training split and saved with the weights, so evaluation and
    prediction see inputs scaled exactly as in training.

    kind ``none`` keeps values; ``pixels`` divides by the largest pixel value
    (255 for IDX images) to land in [0, 1]; ``standardize`` subtracts each
    feature's training mean and divides by its standard deviation.
    """

    def __init__(self, n_features: int, kind: str = "none"):
        super().__init__()
        self.kind = kind
        self.register_buffer("shift", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    @classmethod
    def fit(cls, kind: str, X: torch.Tensor, pixel_max: float | None) -> "Preprocess":
        """X : tensor of shape (N, *sample_shape), the raw training inputs."""
        flat = X.reshape(X.shape[0], -1)  # (N, F)
        pre = cls(flat.shape[1], kind)
        if kind == "pixels":
            if not pixel_max:
                raise UserInputError(
                    "--preprocess pixels needs image data; use standardize or none for tables."
                )
            pre.scale.fill_(1.0 / pixel_max)
        elif kind == "standardize":
            flat = flat.double()
            std = flat.std(dim=0, unbiased=False)
            pre.shift.copy_(flat.mean(dim=0))
            pre.scale.copy_(torch.where(std > 0, 1.0 / std, torch.ones_like(std)))
        elif kind != "none":
            raise UserInputError(
                f"unknown preprocessing {kind!r}; choose one of {', '.join(PREPROCESS)}."
            )
        return pre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1).to(self.scale.dtype)  # (N, *shape) -> (N, F)
        if self.kind == "none":
            return x
        if self.kind == "pixels":
            return x * self.scale
        return (x - self.shift) * self.scale


class Classifier(nn.Module):
    """A network and its preprocessing: raw inputs in, class scores and probabilities out."""

    def __init__(self, net: nn.Module, preprocess: Preprocess, n_classes: int):
        super().__init__()
        self.preprocess = preprocess
        self.net = net
        self.n_classes = n_classes

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Scores for raw inputs of shape (N, *sample_shape): (N, C), or (N,) for binary heads."""
        return self.net(self.preprocess(raw))

    def log_proba(self, raw: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of shape (N, C), whatever the head."""
        return scores_to_log_proba(self(raw))

    @torch.no_grad()
    def predict_proba(self, raw: torch.Tensor) -> torch.Tensor:
        return self.log_proba(raw).exp()

    @torch.no_grad()
    def predict(self, raw: torch.Tensor) -> torch.Tensor:
        return scores_to_labels(self(raw))


def scores_to_log_proba(scores: torch.Tensor) -> torch.Tensor:
    """(N, C) class scores or (N,) binary logits -> (N, C) log-probabilities."""
    if scores.ndim == 1:
        # log P(1) = logsigmoid(z), log P(0) = logsigmoid(-z)
        return torch.stack([SF.logsigmoid(-scores), SF.logsigmoid(scores)], dim=1)
    return SF.log_softmax(scores, dim=1)


def scores_to_labels(scores: torch.Tensor) -> torch.Tensor:
    """Predicted class indices; a binary logit >= 0 means P(class 1) >= 0.5."""
    if scores.ndim == 1:
        return (scores >= 0).long()
    return scores.argmax(dim=1)


def loss_from_scores(
    scores: torch.Tensor, y: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of class scores, or binary cross-entropy of binary logits."""
    if scores.ndim == 1:
        return SF.binary_cross_entropy_with_logits(scores, y.to(scores.dtype), reduction=reduction)
    return SF.cross_entropy(scores, y, reduction=reduction)
