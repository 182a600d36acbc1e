"""Update rules: the hand-written SGD and Adam equal torch.optim's, penalties, averaging."""

import pytest
import torch
from torch import nn

from softreg.training.updates import SGD, Adam, WeightAverage


def _twin_nets(seed=0):
    torch.manual_seed(seed)
    a = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    b = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    b.load_state_dict(a.state_dict())
    return a, b


def _grads(net, x, y):
    loss = nn.functional.cross_entropy(net(x), y)
    return torch.autograd.grad(loss, list(net.parameters()))


@pytest.mark.parametrize("kind, momentum, l2", [("sgd", 0.0, 0.0), ("sgd", 0.9, 0.0), ("sgd", 0.0, 0.1),
                                                ("sgd", 0.9, 0.1), ("adam", 0.0, 0.0)])
def test_updates_equal_torch_optim(kind, momentum, l2):
    ours, ref = _twin_nets()
    params = list(ours.parameters())
    if kind == "sgd":  # penalties on every parameter, as torch.optim's weight_decay
        updater = SGD(params, [True] * len(params), l2, 0.0, momentum)
        opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=momentum, weight_decay=l2)
    else:
        updater = Adam(params, [True] * len(params), 0.0, 0.0)
        opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
        updater.step([t.clone() for t in _grads(ours, x, y)], 0.05)
        opt.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_l2_is_added_to_weights_only_and_l1_makes_exact_zeros():
    w = nn.Parameter(torch.tensor([[0.5, -0.01]]))
    b = nn.Parameter(torch.tensor([0.5]))
    updater = SGD([w, b], [True, False], l2=0.1, l1=0.0, momentum=0.0)
    updater.step([torch.zeros(1, 2), torch.zeros(1)], lr=1.0)
    torch.testing.assert_close(w.detach(), torch.tensor([[0.45, -0.009]]))  # w -= lr * l2 * w
    assert float(b.detach()) == 0.5  # biases are not penalised
    sparse = SGD([w, b], [True, False], l2=0.0, l1=0.02, momentum=0.0)
    sparse.step([torch.zeros(1, 2), torch.zeros(1)], lr=1.0)
    assert float(w.detach()[0, 1]) == 0.0 and float(w.detach()[0, 0]) == pytest.approx(0.43)


def test_weight_average_is_the_mean_of_the_iterates_from_start():
    p = nn.Parameter(torch.zeros(2))
    average = WeightAverage([p], start=3)
    seen = []
    for step in range(1, 6):
        with torch.no_grad():
            p.fill_(float(step))
        average.update(step)
        if step >= 3:
            seen.append(float(step))
    average.apply()
    torch.testing.assert_close(p.detach(), torch.full((2,), sum(seen) / len(seen)))


def test_momentum_carries_the_l2_penalty_of_weights_only():
    w = nn.Parameter(torch.tensor([[1.0, -2.0]]))
    b = nn.Parameter(torch.tensor([0.5]))
    updater = SGD([w, b], [True, False], l2=0.1, l1=0.0, momentum=0.9)
    expected, velocity = torch.tensor([[1.0, -2.0]]), torch.zeros(1, 2)
    for _ in range(3):
        updater.step([torch.zeros(1, 2), torch.zeros(1)], lr=0.5)
        velocity = 0.9 * velocity + 0.1 * expected
        expected = expected - 0.5 * velocity
    torch.testing.assert_close(w.detach(), expected)
    assert float(b.detach()) == 0.5
