"""Limited-memory BFGS written out on flat tensors: no torch.optim object (whose constructor
imports TorchDynamo, 1-2 s on a process's first fit), and its state is plain tensors and
numbers, so checkpoints save it.

``step(closure)`` follows torch.optim.LBFGS's protocol: ``closure()`` evaluates the objective
at the current parameters, fills each parameter's ``.grad`` and returns the objective; one
step runs up to ``max_iter`` iterations (``max_eval`` evaluations). Directions come from the
two-loop recursion over the last ``history_size`` pairs (Nocedal and Wright, algorithm 7.4);
steps from a line search for the strong Wolfe conditions (their algorithms 3.5 and 3.6, with
cubic interpolation), which uses each evaluation's slope as well as its value: near the optimum,
in float32, the slope still says which way to go when values differ by less than their rounding.
The first step is scaled by the gradient's size, as torch does; a pair whose curvature s^T y is
not positive is skipped, so the implicit Hessian stays positive definite.
"""

from __future__ import annotations

import torch

def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """a . b as a float (BLAS). Its last bits depend on where the vectors sit in memory, so every
    vector of the state is a fresh (64-byte aligned) allocation, in a checkpointed run too."""
    return float(torch.dot(a, b))


def _flat_order(p: torch.Tensor) -> list[int]:
    """The dimensions of p from the largest stride to the smallest: p.permute(order) is contiguous,
    so flattening in that order follows p's memory (feature-major weights included)."""
    return sorted(range(p.dim()), key=lambda i: -p.stride(i))


ARMIJO, CURVATURE = 1e-4, 0.9  # the strong Wolfe conditions' constants (Nocedal and Wright, 3.6)
MAX_LINE_EVALS = 25  # evaluations in one line search


def _cubic_min(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float) -> float:
    """The minimiser of the cubic through (t1, f1) and (t2, f2) with slopes g1, g2, kept inside
    the middle 80% of the interval (its midpoint when the cubic has no minimum there)."""
    lo, hi = min(t1, t2), max(t1, t2)
    d1 = g1 + g2 - 3.0 * (f1 - f2) / (t1 - t2)
    square = d1 * d1 - g1 * g2
    if square >= 0.0:
        d2 = (1.0 if t2 > t1 else -1.0) * square ** 0.5
        denom = g2 - g1 + 2.0 * d2
        t = t2 - (t2 - t1) * (g2 + d2 - d1) / denom if denom != 0.0 else (lo + hi) / 2
    else:
        t = (lo + hi) / 2
    margin = 0.1 * (hi - lo)
    return min(max(t, lo + margin), hi - margin)


class LBFGSMethod:
    """L-BFGS over ``params`` (tensors updated in place); see the module docstring."""

    def __init__(self, params: list[torch.Tensor], lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 history_size: int = 20, tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9):
        self.params = list(params)
        self.orders = [_flat_order(p) for p in self.params]
        self.lr, self.max_iter, self.history_size = lr, max_iter, history_size
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        self.state: dict = {"n_iter": 0, "old_dirs": [], "old_stps": [], "ro": []}

    # -- flat views of the parameters --------------------------------------------------------

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).permute(order).reshape(-1)
                          for p, order in zip(self.params, self.orders)])

    def _move(self, t: float, d: torch.Tensor) -> None:
        at = 0
        for p, order in zip(self.params, self.orders):
            n = p.numel()
            p.permute(order).reshape(-1).add_(d[at : at + n], alpha=t)  # a view: p's own memory order
            at += n

    # -- the method ---------------------------------------------------------------------------

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """-H g by the two-loop recursion (H: the inverse Hessian the stored pairs imply)."""
        s = self.state
        dirs, stps, ro = s["old_dirs"], s["old_stps"], s["ro"]
        q = -g
        alphas = []
        for y, st, r in zip(reversed(dirs), reversed(stps), reversed(ro)):
            a = _dot(st, q) * r
            alphas.append(a)
            q.add_(y, alpha=-a)
        d = q.mul_(s.get("H_diag", 1.0))
        for (y, st, r), a in zip(zip(dirs, stps, ro), reversed(alphas)):
            b = _dot(y, d) * r
            d.add_(st, alpha=a - b)
        return d

    def _remember(self, g: torch.Tensor) -> None:
        """Store the pair (s, y) of the last step, when its curvature allows."""
        s = self.state
        y = g - s["prev_flat_grad"]
        step = s["d"] * s["t"]
        ys = _dot(y, step)
        if ys > 1e-10:
            if len(s["old_dirs"]) == self.history_size:
                for key in ("old_dirs", "old_stps", "ro"):
                    s[key].pop(0)
            s["old_dirs"].append(y)
            s["old_stps"].append(step)
            s["ro"].append(1.0 / ys)
            s["H_diag"] = ys / _dot(y, y)

    @torch.no_grad()
    def step(self, closure) -> float:
        """Up to max_iter iterations from the current parameters; returns the first objective value."""
        s = self.state
        loss = float(closure())
        first = loss
        evals = 1
        g = self._flat_grad()
        if float(g.abs().max()) <= self.tolerance_grad:
            return first
        for _ in range(self.max_iter):
            s["n_iter"] += 1
            if "d" in s and "prev_flat_grad" in s:
                self._remember(g)
                d = self._direction(g)
            else:
                d = -g
            gtd = _dot(g, d)
            if gtd > -self.tolerance_change:  # not a descent direction any more: start afresh
                d, gtd = -g, -_dot(g, g)
                s["old_dirs"], s["old_stps"], s["ro"] = [], [], []
                s.pop("H_diag", None)
            t = min(1.0, 1.0 / float(g.abs().sum())) * self.lr if s["n_iter"] == 1 else self.lr
            s["prev_flat_grad"], s["prev_loss"] = g.clone(), loss
            t, new_loss, used = self._line_search(closure, d, t, loss, gtd)
            evals += used
            if t == 0.0:  # no better point along d: stay, and start afresh next time
                s.pop("d", None)
                break
            s["d"], s["t"] = d, t
            g = self._flat_grad()
            change = abs(new_loss - loss)
            loss = new_loss
            if evals >= self.max_eval or float(g.abs().max()) <= self.tolerance_grad:
                break
            if float(d.abs().max()) * t <= self.tolerance_change or change < self.tolerance_change:
                break
        return first

    def _line_search(self, closure, d: torch.Tensor, t: float, f0: float, g0: float) -> tuple[float, float, int]:
        """Move the parameters to x + t d for a t meeting the strong Wolfe conditions (or the best
        point tried); returns (t, objective there, evaluations). The gradients left in ``.grad``
        are those of the returned point; t = 0 means the parameters are back at x."""
        at = 0.0  # where the parameters are now, as a multiple of d
        evals = 0

        def evaluate(step: float) -> tuple[float, float]:
            nonlocal at, evals
            self._move(step - at, d)
            at = step
            evals += 1
            f = float(closure())
            return f, _dot(self._flat_grad(), d)

        best = (0.0, f0)
        prev_t, prev_f, prev_g = 0.0, f0, g0
        lo = hi = None
        while evals < MAX_LINE_EVALS:
            f, g = evaluate(t)
            if f < best[1]:
                best = (t, f)
            if f > f0 + ARMIJO * t * g0 or (evals > 1 and f >= prev_f):
                lo, hi = (prev_t, prev_f, prev_g), (t, f, g)
                break
            if abs(g) <= -CURVATURE * g0:
                return t, f, evals
            if g >= 0:
                lo, hi = (t, f, g), (prev_t, prev_f, prev_g)
                break
            prev_t, prev_f, prev_g = t, f, g
            t *= 2.0  # still going down steeply: try further
        while lo is not None and evals < MAX_LINE_EVALS and abs(hi[0] - lo[0]) * float(d.abs().max()) > 1e-12:
            t = _cubic_min(*lo, *hi)
            f, g = evaluate(t)
            if f < best[1]:
                best = (t, f)
            if f > f0 + ARMIJO * t * g0 or f >= lo[1]:
                hi = (t, f, g)
            else:
                if abs(g) <= -CURVATURE * g0:
                    return t, f, evals
                if g * (hi[0] - lo[0]) >= 0:
                    hi = lo
                lo = (t, f, g)
        if best[0] == 0.0:
            self._move(-at, d)
            return 0.0, f0, evals
        if at != best[0]:  # end on the best point, with its gradients
            evaluate(best[0])
        return best[0], best[1], evals

    # -- checkpoints: the shape torch.optim optimizers give, so TrainState saves it ---------------

    def state_dict(self) -> dict:
        return {"state": {0: dict(self.state)}, "param_groups": [{"lr": self.lr}]}

    def load_state_dict(self, state_dict: dict) -> None:
        saved = dict(state_dict["state"].get(0, {}))
        device = self.params[0].device
        state: dict = {"n_iter": 0, "old_dirs": [], "old_stps": [], "ro": []}
        for key, value in saved.items():
            if isinstance(value, torch.Tensor):  # fresh copies: aligned as the vectors of a run never saved
                value = value.to(device).clone()
            elif isinstance(value, list):
                value = [v.to(device).clone() if isinstance(v, torch.Tensor) else v for v in value]
            state[key] = value
        self.state = state
