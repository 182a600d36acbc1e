"""Models: the lessons' three ways of writing softmax regression, heads, init, preprocessing."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from softreg.data.lessons import TOY_X, TOY_Y
from softreg.errors import UserInputError
from softreg.models import (
    MLP,
    Classifier,
    LogisticRegression,
    ModelConfig,
    Preprocess,
    SoftmaxRegression,
    build_model,
    scores_to_log_proba,
)

X = torch.tensor(TOY_X, dtype=torch.float32)
Y = torch.tensor(TOY_Y)


def _costs_raw(W0, b0, steps=200):
    """Lesson way 1: raw tensors with requires_grad and a hand-written cost."""
    W = W0.clone().requires_grad_(True)  # (F, C)
    b = b0.clone().requires_grad_(True)
    opt = torch.optim.SGD([W, b], lr=0.1)
    costs = []
    for _ in range(steps):
        p = torch.softmax(X @ W + b, dim=1)
        cost = (F.one_hot(Y, 3) * -torch.log(p)).sum(dim=1).mean()
        opt.zero_grad()
        cost.backward()
        opt.step()
        costs.append(cost.item())
    return costs


def _costs_module(module, steps=200):
    """Lesson ways 2 and 3: nn.Linear, or an nn.Module class, with F.cross_entropy."""
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    costs = []
    for _ in range(steps):
        cost = F.cross_entropy(module(X), Y)
        opt.zero_grad()
        cost.backward()
        opt.step()
        costs.append(cost.item())
    return costs


def test_three_ways_of_softmax_regression_give_identical_costs():
    torch.manual_seed(3)
    W0, b0 = torch.randn(4, 3), torch.randn(3)
    linear = nn.Linear(4, 3)
    module = SoftmaxRegression(4, 3)
    with torch.no_grad():
        for layer in (linear, module.linear):
            layer.weight.copy_(W0.t())  # nn.Linear stores W as (C, F)
            layer.bias.copy_(b0)
    raw, lin, mod = _costs_raw(W0, b0), _costs_module(linear), _costs_module(module)
    assert raw[0] == pytest.approx(lin[0], abs=1e-6)
    torch.testing.assert_close(torch.tensor(raw), torch.tensor(lin), atol=1e-5, rtol=0)
    assert lin == mod  # the same layer inside a class: bit-identical
    assert raw[-1] < raw[0] / 2  # and it did learn


def test_binary_heads_have_one_output_and_two_probabilities():
    torch.manual_seed(0)
    x = torch.randn(5, 3)
    assert LogisticRegression(3)(x).shape == (5,)
    mlp = MLP(3, [4], 2, "tanh")
    assert mlp(x).shape == (5,)
    assert MLP(3, [4, 4], 3, "relu")(x).shape == (5, 3)
    logp = scores_to_log_proba(mlp(x))
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(5))
    z = mlp(x)
    torch.testing.assert_close(logp[:, 1].exp(), torch.sigmoid(z))


def test_mlp_layers_follow_hidden_sizes_and_activation():
    mlp = MLP(2, [10, 10, 10], 2, "sigmoid")
    linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 10), (10, 10), (10, 10), (10, 1)]
    assert sum(isinstance(m, nn.Sigmoid) for m in mlp.layers) == 3


def test_zero_init_and_no_bias():
    net = build_model(ModelConfig(kind="softmax", n_features=4, n_classes=3, bias=False, init="zeros"))
    assert net.linear.bias is None
    assert torch.count_nonzero(net.linear.weight) == 0


def test_default_init_matches_nn_linear_under_the_same_seed():
    torch.manual_seed(1)
    ref = nn.Linear(4, 3)
    torch.manual_seed(1)
    net = build_model(ModelConfig(kind="softmax", n_features=4, n_classes=3))
    torch.testing.assert_close(net.linear.weight, ref.weight, rtol=0, atol=0)


@pytest.mark.parametrize(
    "config, match",
    [
        (ModelConfig(kind="tree", n_features=2, n_classes=2), "model must be one of softmax, logistic, mlp; got 'tree'"),
        (ModelConfig(kind="logistic", n_features=2, n_classes=3), "two classes but the data has 3"),
        (ModelConfig(kind="mlp", n_features=2, n_classes=3, hidden=[0]), "positive integers"),
        (ModelConfig(kind="mlp", n_features=2, n_classes=3, activation="gelu"), "activation must be one of sigmoid, tanh, relu; got 'gelu'"),
        (ModelConfig(kind="softmax", n_features=2, n_classes=3, init="he"), "init must be one of default, zeros; got 'he'"),
    ],
)
def test_build_model_rejects_bad_settings(config, match):
    with pytest.raises(UserInputError, match=match):
        build_model(config)


def test_preprocess_pixels_and_standardize():
    raw = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8).repeat(3, 1, 1)  # (3, 2, 2)
    pixels = Preprocess.fit("pixels", raw, 255.0)
    torch.testing.assert_close(pixels(raw)[0], torch.tensor([0.0, 1.0, 0.2, 0.4]))
    table = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    std = Preprocess.fit("standardize", table, None)
    out = std(table)
    torch.testing.assert_close(out.mean(0), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, 0].std(unbiased=False), torch.tensor(1.0))
    assert torch.all(out[:, 1] == 0)  # a constant column stays finite
    with pytest.raises(UserInputError, match="needs image data"):
        Preprocess.fit("pixels", table, None)


def test_classifier_applies_its_own_preprocessing():
    """Raw 0-255 pixels in, the same scores as [0, 1] inputs to the bare network: the lesson's bug cannot happen."""
    torch.manual_seed(0)
    raw = torch.randint(0, 256, (6, 4, 4), dtype=torch.uint8)
    net = SoftmaxRegression(16, 3)
    clf = Classifier(net, Preprocess.fit("pixels", raw, 255.0), 3)
    torch.testing.assert_close(clf(raw), net(raw.reshape(6, -1).float() / 255))
    assert clf.predict(raw).shape == (6,)
    torch.testing.assert_close(clf.predict_proba(raw).sum(1), torch.ones(6))
