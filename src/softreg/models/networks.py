"""The networks: softmax regression, logistic regression and the multi-layer perceptron.

Every network maps preprocessed features of shape (N, F) to scores: (N, C) for
``C > 2`` outputs, or (N,) logits of the positive class for binary heads, and
owns the gradient of its cost: ``gradients(x, y, w, denom)`` returns the summed
cost, the number of correct predictions and one gradient per parameter. The
linear models do it in closed form (no autograd graph), the MLP through
autograd. Scores become probabilities, labels and costs through the head
functions below; softreg.models.classifier wraps a network with its preprocessing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from softreg.models import functional as SF
from softreg.models.sparse import SparseProduct, scale_columns, t_mm
from softreg import settings as S
from softreg.settings import spell
from softreg.errors import UserInputError

# The module of each activation softreg.settings declares (a test holds the two together).
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}

Gradients = tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]  # (cost, correct, one grad per parameter)


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


def loss_from_scores(scores: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of class scores, or binary cross-entropy of binary logits."""
    if scores.ndim == 1:
        return SF.binary_cross_entropy_with_logits(scores, y.to(scores.dtype), reduction=reduction)
    return SF.cross_entropy(scores, y, reduction=reduction)


class LinearModel(nn.Module):
    """A single linear layer whose cost gradient is computed in closed form."""

    linear: nn.Linear

    def residual(self, scores: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """From scores (K, B) (K = outputs): per-row costs (B,), correct flags (B,) and
        the residual dCost/dScores (K, B) for each row."""
        raise NotImplementedError

    @torch.no_grad()
    def gradients(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, denom: float,
                  shift: torch.Tensor | None = None, scale: torch.Tensor | None = None,
                  lazy: bool = False) -> Gradients:
        """Cost, correct count and gradients on one batch, without autograd.

        x : (B, F) features, dense or a sparse CSR tensor; with ``shift`` / ``scale`` (F,) they
            are raw, and the model sees (x - shift) * scale without that product ever being
            formed: the layer uses W' = W * scale, b' = b - W' shift, and
            dW = ((R x) - r shift^T) * scale (so sparse rows stay sparse).
        y : (B,) class indices; w : (B,) sample weights or None.
        denom : the cost is sum_i w_i cost_i / denom (the global batch size, so that shares
            of one batch computed by several processes add up to the batch's gradient).

        With P = softmax(scores) and Y the one-hot labels, R = (P - Y) w / denom and
            dW = R^T X,  db = sum over rows of R;
        the same with sigmoid and one output for logistic regression. Tests check this
        against autograd through ``softreg.models.functional.cross_entropy``.

        lazy : for CSR rows, dW comes back as a ``SparseProduct`` that an update adds where it
            goes, instead of a formed (K, F) tensor (softreg.models.sparse)
        """
        W = self.linear.weight  # (K, F)
        bias = self.linear.bias
        B = x.shape[0]
        sparse = x.layout == torch.sparse_csr
        if sparse and shift is None and scale is not None:
            x, scale = scale_columns(x, scale.to(x.dtype)), None  # scaled rows: no (K, F) W * scale per batch
        if scale is not None:
            W = W * scale  # the layer seen by raw inputs
        if sparse:  # CSR (B, F) x dense (F, K): torch's sparse kernel; the scores come out (B, K)
            scores = torch.mm(x, W.t()).t().contiguous()  # (K, B)
        else:
            # Scores are handled as (K, B). On real minibatches they are computed as W @ X^T, about
            # 20% faster on one CPU thread than X @ W^T (measured, BENCHMARKS.md).
            scores = torch.mm(W, x.t()) if B >= 64 else torch.mm(x, W.t()).t()  # (K, B)
        offset = None
        if shift is not None:
            offset = -(W @ shift)  # (K,)
        if bias is not None:
            offset = bias if offset is None else offset + bias
        if offset is not None:
            scores += offset.unsqueeze(1)
        losses, correct, residual = self.residual(scores, y)
        cost = (losses if w is None else losses * w).sum() / denom
        if w is not None:
            residual.mul_(w.unsqueeze(0))
        residual.div_(denom)
        if sparse and lazy and shift is None and scale is None:
            grad_w = SparseProduct(x, residual.t())  # added by the update where it goes
        elif sparse:  # R X as (X^T R^T)^T, no dense X ever; (F, K) row-major is the weight's own layout
            grad_w = t_mm(x, residual.t().contiguous()).t()  # (F, K) -> (K, F) view
        else:
            grad_w = residual @ x  # (K, B) @ (B, F) -> (K, F)
        r = residual.sum(dim=1)  # (K,)
        if shift is not None:
            grad_w.sub_(r.unsqueeze(1) * shift.unsqueeze(0))
        if scale is not None:
            grad_w.mul_(scale)
        grads = [grad_w] + ([r] if bias is not None else [])
        return cost, correct.sum(), grads

    def folded(self, shift: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(W', b') such that x W'^T + b' equals self((x - shift) * scale)."""
        W = self.linear.weight * scale
        b = -(W @ shift)
        if self.linear.bias is not None:
            b = b + self.linear.bias
        return W, b


class SoftmaxRegression(LinearModel):
    """Multinomial logistic regression: scores = x W^T + b, one row of W per class."""

    def __init__(self, n_features: int, n_classes: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(n_features, n_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # (N, F) -> (N, C)

    def residual(self, scores, y):
        B = scores.shape[1]
        # torch's fused log-softmax: on minibatches of 100 ten times faster than the version
        # built from primitives in softreg.models.functional (which the tests compare it with)
        logp = torch.log_softmax(scores, dim=0)  # (C, B)
        losses = -logp.gather(0, y.unsqueeze(0)).squeeze(0)
        correct = scores.argmax(dim=0) == y
        residual = logp.exp_()  # P, reusing logp's memory
        residual[y, torch.arange(B, device=scores.device)] -= 1.0  # P - Y
        return losses, correct, residual


class LogisticRegression(LinearModel):
    """Binary logistic regression: one logit per sample; sigmoid(logit) = P(class 1)."""

    def __init__(self, n_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(n_features, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)  # (N, F) -> (N, 1) -> (N,)

    def residual(self, scores, y):
        z = scores[0]  # (B,)
        target = y.to(z.dtype)
        losses = torch.nn.functional.softplus(z) - target * z  # -log P(y | z), stable
        correct = (z >= 0).long() == y
        return losses, correct, (torch.sigmoid(z) - target).unsqueeze(0)  # (1, B)


class MLP(nn.Module):
    """Fully connected layers with a nonlinearity between them.

    With two classes the head has one output (a logit, as in logistic
    regression); otherwise one score per class.
    """

    def __init__(self, n_features: int, hidden: tuple[int, ...] | list[int], n_classes: int,
                 activation: str = "relu", bias: bool = True):
        super().__init__()
        S.check("activation", activation)
        self.binary = n_classes == 2
        sizes = [n_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out, bias=bias), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(sizes[-1], 1 if self.binary else n_classes, bias=bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.sparse_csr:  # the first layer takes CSR rows; the rest is dense
            first = self.layers[0]
            out = self.layers[1:](sparse_linear(x, first.weight, first.bias))
        else:
            out = self.layers(x)  # (N, C) or (N, 1)
        return out.squeeze(-1) if self.binary else out

    def gradients(self, x, y, w, denom, shift=None, scale=None, forward=None) -> Gradients:
        """Cost, correct count and gradients on one batch, through autograd.

        forward : the callable that computes the scores (a DistributedDataParallel
            wrapper of this network, whose backward pass all-reduces the gradients).
        """
        params = list(self.parameters())
        for p in params:
            p.grad = None
        with torch.enable_grad():
            scores = (forward or self)(x)
            losses = loss_from_scores(scores, y, reduction="none")
            cost = (losses if w is None else losses * w).sum() / denom
            cost.backward()
        correct = (scores_to_labels(scores.detach()) == y).sum()
        return cost.detach(), correct, [p.grad for p in params]


class _SparseLinear(torch.autograd.Function):
    """x W^T + b for CSR rows x (N, F); the weight gradient as (x^T G)^T (softreg.models.sparse.t_mm):
    several times faster on CPU than autograd's own rule for sparse inputs."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x)
        out = torch.mm(x, weight.t())  # (N, H)
        return out if bias is None else out.add_(bias)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        grad_w = t_mm(x, grad_out).t()  # (F, H) -> (H, F)
        return None, grad_w, grad_out.sum(0)


def sparse_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A linear layer on CSR rows x (N, F) -> dense (N, H), differentiable in weight and bias."""
    if bias is None:
        return _SparseLinearNoBias.apply(x, weight)
    return _SparseLinear.apply(x, weight, bias)


class _SparseLinearNoBias(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x)
        return torch.mm(x, weight.t())

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return None, t_mm(x, grad_out).t()


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
    index_base: int | None = None  # sparse (svmlight) input: the file index of feature 0; None: dense input

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.kind != "mlp":  # a linear model has no hidden layers to record
            del d["hidden"], d["activation"]
        if self.index_base is None:
            del d["index_base"]
        return d


def build_model(config: ModelConfig) -> nn.Module:
    """Create the network named by ``config`` (drawing its initial weights from torch's RNG)."""
    S.check("model", config.kind)
    S.check("init", config.init)
    if config.kind == "softmax":
        net: nn.Module = SoftmaxRegression(config.n_features, config.n_classes, config.bias)
    elif config.kind == "logistic":
        if config.n_classes != 2:
            raise UserInputError(
                f"logistic regression separates two classes but the data has {config.n_classes}; "
                f"use {spell('model', 'softmax')} (or mlp) for more."
            )
        net = LogisticRegression(config.n_features, config.bias)
    else:
        if not config.hidden or any(int(h) < 1 for h in config.hidden):
            raise UserInputError(
                f"hidden layer sizes must be positive integers; got {config.hidden}. "
                f"Example: {spell('hidden', [100])} or {spell('hidden', [100, 100])}."
            )
        net = MLP(config.n_features, config.hidden, config.n_classes, config.activation, config.bias)
    if config.init == "zeros":
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
    if config.index_base is not None:
        _feature_major(net.linear if isinstance(net, LinearModel) else net.layers[0])
    return net


def _feature_major(layer: nn.Linear) -> None:
    """Store the first layer's weight (K, F) feature by feature (strides (1, K)), for sparse input:
    torch's CSR x dense product runs over ten times faster with W^T row-major, the gradient
    (softreg.models.sparse.t_mm) comes out in that layout, and the updates then run over memory in
    order. The values, the shape and the saved tensor are the same."""
    layer.weight = nn.Parameter(layer.weight.detach().t().contiguous().t())
