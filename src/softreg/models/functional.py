"""Softmax, log-softmax, cross-entropy and sigmoid losses built from tensor primitives."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from softreg.errors import UserInputError

_REDUCTIONS = ("none", "mean", "sum")


def _is_integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise UserInputError(f"reduction={reduction!r} is not valid; use 'none', 'mean' or 'sum'")


def _reduce(losses: Tensor, reduction: str, denominator: Tensor | int) -> Tensor:
    """Apply ``reduction``; 'mean' divides the sum by ``denominator`` (NaN when it is 0)."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / denominator


def _check_weight(weight: Tensor | None, n_classes: int) -> None:
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise UserInputError(
            f"weight has shape {tuple(weight.shape)} but the input has {n_classes} classes; "
            f"pass one weight per class, a tensor of shape ({n_classes},)"
        )


def _check_binary(input: Tensor, target: Tensor, reduction: str, **weights: Tensor | None) -> None:
    """Check the reduction, that target has the input's shape and weights broadcast to it."""
    _check_reduction(reduction)
    if target.shape != input.shape:
        raise UserInputError(
            f"target has shape {tuple(target.shape)} but input has shape "
            f"{tuple(input.shape)}; they must be the same"
        )
    for name, other in weights.items():
        try:
            ok = other is None or torch.broadcast_shapes(other.shape, input.shape) == input.shape
        except RuntimeError:
            ok = False
        if not ok:
            raise UserInputError(
                f"{name} has shape {tuple(other.shape)}, which does not broadcast to the input "
                f"shape {tuple(input.shape)}; reshape it so it does"
            )


def _check_not_scalar(input: Tensor) -> None:
    if input.dim() == 0:
        raise UserInputError("input must have shape (C,), (N, C) or (N, C, d1, ...); got a scalar")


def _check_index_target(input: Tensor, target: Tensor, hint: str = "") -> None:
    """Check ``target`` holds integer class indices of the shape ``input`` needs."""
    _check_not_scalar(input)
    # (C,) -> (); (N, C, d1, ...) -> (N, d1, ...)
    expected = () if input.dim() == 1 else (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != tuple(expected):
        raise UserInputError(
            f"target has shape {tuple(target.shape)} but input of shape {tuple(input.shape)} "
            f"needs class indices of shape {tuple(expected)}{hint}"
        )
    if not _is_integer(target.dtype):
        msg = f"target must hold integer class indices, got dtype {target.dtype}; use .long()"
        raise UserInputError(msg + hint)


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """Encode integer class labels as one-hot rows.

    Parameters
    ----------
    labels : Tensor of shape (...), integer dtype, values in [0, num_classes)
    num_classes : int, default -1
        Number of classes C; -1 means ``labels.max() + 1``.

    Returns
    -------
    Tensor of shape (..., C), dtype int64, with a single 1 in each last-axis row.
    """
    if not _is_integer(labels.dtype):
        raise UserInputError(f"one_hot needs integer labels, got {labels.dtype}; use .long()")
    low, top = (int(labels.min()), int(labels.max())) if labels.numel() else (0, -1)
    if low < 0:
        raise UserInputError(
            f"one_hot got negative label {low}; labels must be in [0, num_classes); remap "
            "them, e.g. with torch.unique(labels, return_inverse=True)"
        )
    if num_classes == -1:
        if labels.numel() == 0:
            raise UserInputError("one_hot cannot infer num_classes from empty labels; pass it")
        num_classes = top + 1
    elif num_classes < 0:
        raise UserInputError(f"num_classes={num_classes} is invalid; pass -1 (infer) or >= 0")
    elif top >= num_classes:
        raise UserInputError(
            f"one_hot got label {top} but num_classes={num_classes}, so labels must be in "
            f"[0, {num_classes - 1}]; pass num_classes={top + 1} or more, or fix the labels"
        )
    # (...,) -> (..., 1) compared with (C,) broadcasts to (..., C)
    classes = torch.arange(num_classes, device=labels.device)
    return (labels.unsqueeze(-1) == classes).long()


def logsumexp(input: Tensor, dim: int | tuple[int, ...], keepdim: bool = False) -> Tensor:
    """Compute ``log(sum(exp(input), dim))`` without overflow.

    The maximum ``m`` is subtracted first: ``m + log(sum(exp(x - m)))``. A slice of
    all ``-inf`` gives ``-inf`` and a slice holding ``+inf`` gives ``+inf`` (never NaN).

    Parameters
    ----------
    input : Tensor of shape (d0, d1, ...)
    dim : int or tuple of int, the axes to reduce
    keepdim : bool, default False, keep the reduced axes with size 1

    Returns
    -------
    Tensor with the ``dim`` axes removed (or of size 1 when ``keepdim``).
    """
    # (d0, ..., dk, ...) -> (d0, ..., 1, ...): the shift carries no gradient (it cancels)
    shift = input.detach().amax(dim=dim, keepdim=True)
    # an all -inf or a +inf slice would give inf - inf = NaN; shift those by 0 instead
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    out = shift + torch.log(torch.exp(input - shift).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def softmax(input: Tensor, dim: int = -1, dtype: torch.dtype | None = None) -> Tensor:
    """Turn scores into probabilities along ``dim``: ``exp(x - max) / sum(exp(x - max))``.

    Unlike torch, ``dim`` defaults to -1 (the last axis) instead of a deprecated guess.

    Parameters
    ----------
    input : Tensor of shape (d0, d1, ...), the scores (logits)
    dim : int, default -1, the axis whose entries sum to 1
    dtype : torch.dtype, optional, cast ``input`` to this type first

    Returns
    -------
    Tensor of the same shape as ``input``.
    """
    if dtype is not None:
        input = input.to(dtype)
    # (..., C, ...) -> (..., 1, ...): shifting by the max keeps exp() <= 1
    shifted = torch.exp(input - input.detach().amax(dim=dim, keepdim=True))
    return shifted / shifted.sum(dim=dim, keepdim=True)


def log_softmax(input: Tensor, dim: int = -1, dtype: torch.dtype | None = None) -> Tensor:
    """Log of :func:`softmax`: with ``s = x - max(x)``, it is ``s - logsumexp(s, dim)``.

    Subtracting the max first keeps full precision: ``x - logsumexp(x)`` would round
    ``1e4 - (1e4 + log 2)`` in float32 to an error of about 1e-3.

    Parameters
    ----------
    input : Tensor of shape (d0, d1, ...), the scores (logits)
    dim : int, default -1 (torch has no default), the class axis
    dtype : torch.dtype, optional, cast ``input`` to this type first

    Returns
    -------
    Tensor of the same shape as ``input``; ``exp`` of it sums to 1 along ``dim``.
    """
    if dtype is not None:
        input = input.to(dtype)
    # (..., C, ...) minus (..., 1, ...): the largest score in each slice becomes 0
    shifted = input - input.detach().amax(dim=dim, keepdim=True)
    return shifted - logsumexp(shifted, dim, keepdim=True)


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of the target classes: ``-weight[y] * input[y]``.

    Parameters
    ----------
    input : Tensor of shape (N, C) or (N, C, d1, ...) or (C,), log-probabilities
    target : Tensor of shape (N,) or (N, d1, ...) or (), integer class indices in [0, C)
    weight : Tensor of shape (C,), optional, a rescaling weight per class
    ignore_index : int, default -100, targets equal to it add nothing (also not to the mean)
    reduction : {'none', 'mean', 'sum'}; 'mean' divides by the summed weight of the
        non-ignored targets (their count when ``weight`` is None)

    Returns
    -------
    Tensor of the target's shape for 'none', else a scalar.
    """
    _check_reduction(reduction)
    _check_index_target(input, target)
    class_dim = 0 if input.dim() == 1 else 1
    n_classes = input.shape[class_dim]
    _check_weight(weight, n_classes)
    ignored = target == ignore_index  # same shape as target
    bad = target[~ignored]
    bad = bad[(bad < 0) | (bad >= n_classes)]
    if bad.numel():
        raise UserInputError(
            f"target value {int(bad[0])} is out of range for {n_classes} classes; targets "
            f"must be in [0, {n_classes - 1}] or equal ignore_index={ignore_index}"
        )
    safe = torch.where(ignored, torch.zeros_like(target), target).long()
    # (N, d1, ...) -> (N, 1, d1, ...) -> gather -> (N, d1, ...): the log-prob of each target
    picked = input.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim)
    w = torch.ones_like(picked) if weight is None else weight.to(picked.dtype)[safe]
    w = torch.where(ignored, torch.zeros_like(w), w)
    losses = torch.where(ignored, torch.zeros_like(picked), -w * picked)
    return _reduce(losses, reduction, w.sum())


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of raw scores against targets: ``nll_loss(log_softmax(input))``.

    A ``target`` of the input's shape holds class probabilities, otherwise class indices.
    ``label_smoothing`` = s mixes the target with uniform: ``(1 - s) * target + s / C``.
    As in torch, 'mean' divides by the summed weight of the kept targets for indices
    (smoothing term included) but by the row count N * d1 * ... for probabilities.

    Parameters
    ----------
    input : Tensor of shape (N, C) or (N, C, d1, ...) or (C,), raw scores (logits)
    target : Tensor of shape (N,) or (N, d1, ...) or () with integer class indices, or of
        the same shape as ``input`` with float class probabilities
    weight : Tensor of shape (C,), optional, a rescaling weight per class
    ignore_index : int, default -100, index targets equal to it are skipped; must be
        negative (unused) for probability targets
    reduction : {'none', 'mean', 'sum'}
    label_smoothing : float in [0, 1], default 0.0

    Returns
    -------
    Tensor of shape (N,) or (N, d1, ...) or () for 'none', else a scalar.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise UserInputError(f"label_smoothing={label_smoothing} is out of range; use [0, 1]")
    _check_not_scalar(input)
    class_dim = 0 if input.dim() == 1 else 1
    n_classes = input.shape[class_dim]
    _check_weight(weight, n_classes)
    log_q = log_softmax(input, class_dim)
    # (C,) -> (1, C, 1, ...) so the weight broadcasts along the class axis of the input
    w_shape = [1] * input.dim()
    w_shape[class_dim] = n_classes
    w_b = None if weight is None else weight.to(log_q.dtype).reshape(w_shape)

    if target.shape == input.shape:  # class probabilities
        if not target.is_floating_point():
            raise UserInputError(
                f"target has the same shape as input, so it is read as class probabilities, "
                f"which must be floating point; got {target.dtype}. For class indices pass "
                f"a target without the class axis"
            )
        if ignore_index >= 0:
            raise UserInputError(f"ignore_index={ignore_index} cannot be used with probabilities")
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        terms = -log_q * target if w_b is None else -log_q * target * w_b
        losses = terms.sum(class_dim)  # (N, C, d1, ...) -> (N, d1, ...)
        return _reduce(losses, reduction, losses.numel())

    hint = "; for class probabilities pass a float target with the input's shape"
    _check_index_target(input, target, hint)
    nll = nll_loss(log_q, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    ignored = target == ignore_index
    # (N, C, d1, ...) -> (N, d1, ...): -sum_c w_c log q_c, the cost against a uniform target
    smooth = -(log_q if w_b is None else log_q * w_b).sum(class_dim)
    smooth = torch.where(ignored, torch.zeros_like(smooth), smooth)
    kept = target[~ignored].long()  # the non-ignored targets, flattened
    denominator = kept.numel() if weight is None else weight.to(log_q.dtype)[kept].sum()
    smooth = _reduce(smooth, reduction, denominator)
    return (1 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth


def sigmoid(input: Tensor) -> Tensor:
    """Logistic ``1 / (1 + exp(-x))``, never overflowing: with ``e = exp(-|x|) <= 1`` it is
    ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` for x < 0.

    Parameters
    ----------
    input : Tensor of any shape (d0, ...)

    Returns
    -------
    Tensor of the same shape with values in [0, 1].
    """
    e = torch.exp(torch.where(input < 0, input, -input))
    return torch.where(input < 0, e / (1 + e), 1 / (1 + e))


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))`` computed stably as ``min(x, 0) - log1p(exp(-|x|))``.

    Parameters
    ----------
    input : Tensor of any shape (d0, ...)

    Returns
    -------
    Tensor of the same shape with values <= 0.
    """
    e = torch.exp(torch.where(input < 0, input, -input))  # exp(-|x|), grad right at 0
    return torch.where(input < 0, input, torch.zeros_like(input)) - torch.log1p(e)


def _clamped_log(p: Tensor) -> Tensor:
    """``max(log(p), -100)`` with a finite (zero) gradient where p == 0."""
    positive = p > 0
    safe = torch.where(positive, p, torch.ones_like(p))  # log(0) = -inf would poison grads
    return torch.where(positive, torch.log(safe), torch.full_like(p, -100.0)).clamp(min=-100.0)


def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy on probabilities: ``-w (y log p + (1 - y) log(1 - p))``.

    Each log is clamped at -100, like torch, so p = 0 or 1 gives a finite loss. The
    gradient is autograd's: it is zero where a log is clamped, whereas torch's own
    backward returns ``(p - y) / max(p (1 - p), 1e-12)`` there.

    Parameters
    ----------
    input : Tensor of shape (d0, ...), probabilities in [0, 1]
    target : Tensor of the same shape, values in [0, 1]
    weight : Tensor broadcastable to the input's shape, optional
    reduction : {'none', 'mean', 'sum'}

    Returns
    -------
    Tensor of the input's shape for 'none', else a scalar.
    """
    _check_binary(input, target, reduction, weight=weight)
    for name, t in (("input", input), ("target", target)):
        if t.numel() and not bool(((t >= 0) & (t <= 1)).all()):
            raise UserInputError(
                f"binary_cross_entropy needs {name} values in [0, 1], got values in "
                f"[{float(t.min())}, {float(t.max())}]; pass raw scores to "
                "binary_cross_entropy_with_logits instead"
            )
    losses = -(target * _clamped_log(input) + (1 - target) * _clamped_log(1 - input))
    losses = losses if weight is None else losses * weight
    return _reduce(losses, reduction, losses.numel())


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross-entropy on raw scores, stable via :func:`logsigmoid`.

    ``loss = -w (pos_weight * y * logsigmoid(x) + (1 - y) * logsigmoid(-x))``.

    Parameters
    ----------
    input : Tensor of shape (d0, ..., C), raw scores (logits)
    target : Tensor of the same shape, values usually in [0, 1]
    weight : Tensor broadcastable to the input's shape, optional
    reduction : {'none', 'mean', 'sum'}
    pos_weight : Tensor broadcastable to the input's shape, e.g. (C,), optional;
        the weight of the positive term per class

    Returns
    -------
    Tensor of the input's shape for 'none', else a scalar.
    """
    _check_binary(input, target, reduction, weight=weight, pos_weight=pos_weight)
    positive = target * logsigmoid(input)
    positive = positive if pos_weight is None else pos_weight * positive
    losses = -(positive + (1 - target) * logsigmoid(-input))
    losses = losses if weight is None else losses * weight
    return _reduce(losses, reduction, losses.numel())


# Each takes z : Tensor of shape (N, C), raw scores, and y : Tensor of shape (N,), class
# indices, and returns the mean cross-entropy as a scalar; all five agree.
def cross_entropy_onehot_log_softmax_manual(z: Tensor, y: Tensor) -> Tensor:
    """Form 1: ``mean_i sum_c onehot(y)_ic * -log(softmax(z)_ic)``; log(0) risk at extremes."""
    # (N,) -> (N, C) zeros with a 1 at each target class
    return (one_hot(y, z.shape[1]) * -torch.log(softmax(z, 1))).sum(1).mean()


def cross_entropy_onehot_log_softmax(z: Tensor, y: Tensor) -> Tensor:
    """Form 2: as form 1 but with the stable ``log_softmax``."""
    return (one_hot(y, z.shape[1]) * -log_softmax(z, 1)).sum(1).mean()


def cross_entropy_nll_log_softmax(z: Tensor, y: Tensor) -> Tensor:
    """Form 3: ``nll_loss(log_softmax(z), y)``."""
    return nll_loss(log_softmax(z, 1), y)


def cross_entropy_from_scores(z: Tensor, y: Tensor) -> Tensor:
    """Form 4: ``cross_entropy(z, y)`` straight on the raw scores."""
    return cross_entropy(z, y)


def cross_entropy_gather(z: Tensor, y: Tensor) -> Tensor:
    """Form 5: pick each row's target log-probability with ``gather``."""
    # (N,) -> (N, 1) indices; gather -> (N, 1) log-probabilities
    return -log_softmax(z, 1).gather(1, y.long().unsqueeze(1)).mean()


CROSS_ENTROPY_FORMS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "onehot_log_softmax_manual": cross_entropy_onehot_log_softmax_manual,
    "onehot_log_softmax": cross_entropy_onehot_log_softmax,
    "nll_log_softmax": cross_entropy_nll_log_softmax,
    "from_scores": cross_entropy_from_scores,
    "gather": cross_entropy_gather,
}


def double_softmax_cross_entropy(z: Tensor, y: Tensor) -> Tensor:
    """WRONG on purpose: ``cross_entropy(softmax(z), y)``, a classic mistake.

    :func:`cross_entropy` applies softmax itself, so feeding it probabilities computes the
    cost of ``softmax(softmax(z))``: squashed towards log(C), with tiny gradients. Takes
    z of shape (N, C) and y of shape (N,) like the forms above; kept to show the difference.
    """
    return cross_entropy(softmax(z, 1), y)
