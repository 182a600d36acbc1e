"""Updates: gradients in, new weights out. Momentum SGD and Adam written out (their state is plain
tensors that checkpoints save), L-BFGS (softreg.training.lbfgs), the L2 / L1 penalties, weight
averaging.

torch.optim is not used: an optimizer's constructor imports TorchDynamo (about 2 s on a fresh
process) and its per-call overhead dominates small minibatches. The arithmetic of SGD and Adam
is the same as torch.optim.SGD(momentum) and torch.optim.Adam (tests compare them).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from softreg.models.sparse import SparseProduct, densify
from softreg.errors import UserInputError


def weight_names(net: nn.Module) -> list[bool]:
    """For each parameter, whether penalties apply to it (weight matrices, not biases)."""
    return [name.endswith("weight") for name, _ in net.named_parameters()]


class Updater:
    """Applies one update from gradients; its state is a dict of named tensors plus scalars."""

    name = "base"

    def __init__(self, params: list[torch.Tensor], penalised: list[bool], l2: float, l1: float):
        self.params = params
        self.penalised = penalised
        self.l2 = l2
        self.l1 = l1
        self.state: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, grads: list, lr: float) -> None:
        """One update from ``grads``: tensors shaped as the parameters, or ``SparseProduct``s
        (a linear layer's weight gradient on sparse rows), which SGD adds in place."""
        grads = [densify(g) for g in grads]
        if self.l2:
            for p, g, pen in zip(self.params, grads, self.penalised):
                if pen:
                    g.add_(p, alpha=self.l2)
        self._apply(grads, lr)
        self._prox(lr)

    def _prox(self, lr: float) -> None:
        if self.l1:  # proximal step of the L1 penalty: soft-threshold, exact zeros appear
            threshold = lr * self.l1
            for p, pen in zip(self.params, self.penalised):
                if pen:
                    p.copy_(p.sign() * (p.abs() - threshold).clamp_(min=0))

    def _apply(self, grads: list[torch.Tensor], lr: float) -> None:
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.state)

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """The state saved by ``state_tensors``; a per-parameter tensor ("name.i") takes its
        parameter's memory layout again (a file stores it row-major; a sparse model's weight is
        feature-major, and its updates add into a buffer of that layout in place)."""
        self.state = {}
        for name, value in tensors.items():
            index = name.rpartition(".")[2]
            param = self.params[int(index)] if index.isdigit() and int(index) < len(self.params) else None
            if param is not None and param.shape == value.shape:
                self.state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)
            else:
                self.state[name] = value.to(self.params[0].device)


class SGD(Updater):
    """p -= lr * v with v = momentum * v + g + l2 * p (torch.optim.SGD's form with weight_decay;
    v starts at the first g + l2 * p).

    With momentum the penalty goes into v directly and v's update is one fused pass
    (``torch.add(g, v, alpha=momentum, out=v)``): two passes over a weight matrix fewer than
    adding the penalty to g and scaling v apart, which counts for wide sparse models (20 x 74,731
    weights: a pass is about 0.1 ms, a third of an update's time is such passes).
    """

    name = "sgd"

    def __init__(self, params, penalised, l2, l1, momentum: float):
        super().__init__(params, penalised, l2, l1)
        self.momentum = momentum

    @torch.no_grad()
    def step(self, grads: list, lr: float) -> None:
        for i, (p, g, pen) in enumerate(zip(self.params, grads, self.penalised)):
            decay = self.l2 if pen else 0.0
            if not self.momentum:  # p -= lr * (g + l2 * p)
                if isinstance(g, SparseProduct):
                    if decay:
                        p.mul_(1.0 - lr * decay)
                    g.add_to(p, alpha=-lr)
                    continue
                if decay:
                    g.add_(p, alpha=decay)
                p.sub_(g, alpha=lr)
                continue
            buf = self.state.get(f"momentum.{i}")
            if buf is None:
                buf = self.state[f"momentum.{i}"] = densify(g).clone()
            elif isinstance(g, SparseProduct):
                buf.mul_(self.momentum)
                g.add_to(buf)  # only the batch's columns are touched
            else:
                torch.add(g, buf, alpha=self.momentum, out=buf)
            if decay:
                buf.add_(p, alpha=decay)
            p.sub_(buf, alpha=lr)
        self._prox(lr)



class Adam(Updater):
    """Adam (Kingma and Ba) with torch.optim.Adam's defaults: betas (0.9, 0.999), eps 1e-8."""

    name = "adam"
    betas = (0.9, 0.999)
    eps = 1e-8

    def _apply(self, grads, lr):
        b1, b2 = self.betas
        step = self.state.get("step")
        step = self.state["step"] = torch.ones((), dtype=torch.float64) if step is None else step + 1
        t = float(step)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            m = self.state.setdefault(f"exp_avg.{i}", torch.zeros_like(p))
            v = self.state.setdefault(f"exp_avg_sq.{i}", torch.zeros_like(p))
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1**t))


def make_updater(net: nn.Module, optimizer: str, momentum: float, l2: float, l1: float) -> Updater:
    """The minibatch update rule named ``optimizer`` (L-BFGS, full batch, is ``LBFGS``)."""
    params = list(net.parameters())
    penalised = weight_names(net)
    if optimizer == "adam":
        return Adam(params, penalised, l2, l1)
    if optimizer == "sgd":
        return SGD(params, penalised, l2, l1, momentum)
    raise UserInputError(f"optimizer {optimizer!r} has no minibatch update rule; use sgd or adam.")


def l2_penalty(params: list[torch.Tensor], penalised: list[bool], l2: float) -> float:
    """l2/2 times the squared norm of every weight matrix."""
    if not l2:
        return 0.0
    return 0.5 * l2 * sum(float((p.detach().double() ** 2).sum()) for p, pen in zip(params, penalised) if pen)


class LBFGS:
    """Full-batch L-BFGS (softreg.training.lbfgs, with a backtracking line search).

    ``evaluate()`` must return (cost, correct, grads) over the whole training set (all
    processes together); the L2 penalty is added here. Its state (curvature pairs, last
    direction and step) is saved in checkpoints (see TrainState).
    """

    name = "lbfgs"

    def __init__(self, net: nn.Module, lr: float, l2: float):
        self.params = list(net.parameters())
        self.penalised = weight_names(net)
        self.l2 = l2
        from softreg.training.lbfgs import LBFGSMethod

        self.optimizer = LBFGSMethod(self.params, lr=lr, max_iter=20, history_size=20)

    def epoch(self, evaluate) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step (up to 20 evaluations); returns the first evaluation's cost and correct."""
        first: dict = {}

        def closure():
            cost, correct, grads = evaluate()
            for p, g, pen in zip(self.params, grads, self.penalised):
                if self.l2 and pen:
                    g = g + self.l2 * p.detach()
                p.grad = g
            first.setdefault("cost", cost)
            first.setdefault("correct", correct)
            return float(cost) + l2_penalty(self.params, self.penalised, self.l2)

        self.optimizer.step(closure)
        return first["cost"], first["correct"]


class WeightAverage:
    """Running mean of the parameters from update ``start`` on (Polyak-Ruppert averaging).

    SGD's last iterate jitters around the optimum; the mean of the iterates sits closer to it.
    """

    def __init__(self, params: list[torch.Tensor], start: int):
        self.params = params
        self.start = start
        self.count = 0
        self.mean = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Call after update ``step`` (1-based)."""
        if step < self.start:
            return
        self.count += 1
        for mean, p in zip(self.mean, self.params):
            mean.lerp_(p, 1.0 / self.count)

    @torch.no_grad()
    def apply(self) -> None:
        if self.count:
            for mean, p in zip(self.mean, self.params):
                p.copy_(mean)
