"""The training loop: the lessons' reference figures, the fast path against the reference loop, options."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from softreg.models import functional as SF
from softreg.data import load_dataset
from softreg.data.base import Dataset, Split
from softreg.data.lessons import TOY_X, TOY_Y
from softreg.data.sources import batch_bounds
from softreg.errors import UserInputError
from softreg.models import Classifier, LogisticRegression, Preprocess, SoftmaxRegression
from softreg.training import Callback, make_config, split_validation, train

TOY_COSTS = [1.098612, 0.761050, 0.689991, 0.643229, 0.604117, 0.568255,
             0.533922, 0.500291, 0.466908, 0.433507, 0.399962]


def _toy(**kw):
    return train(load_dataset("toy"), make_config(data_name="toy", **kw))


def test_toy_zero_weights_no_bias_follows_the_lesson_costs():
    result = _toy(init="zeros", bias=False)
    costs = result.history.avg_cost  # epoch k's cost is measured after k - 1 updates
    got = [costs[k] for k in range(0, 1000, 100)] + [result.metrics["train_loss"]]
    assert [round(c, 6) for c in got] == TOY_COSTS


def test_toy_zero_weights_with_one_bias_per_class():
    assert round(_toy(init="zeros").metrics["train_loss"], 6) == 0.248155


def test_toy_default_init_seed_1():
    result = _toy(seed=1)
    assert round(result.history.avg_cost[0], 4) == 1.6168
    assert round(result.metrics["train_loss"], 4) == 0.2541
    assert result.metrics["train_accuracy"] == 1.0


def test_double_softmax_mistake_ends_at_a_different_cost():
    """The lessons' slip (softmax applied twice) trains to 0.738749, not 0.399962."""
    X, y = torch.tensor(TOY_X, dtype=torch.float32), torch.tensor(TOY_Y)
    W = torch.zeros(4, 3, requires_grad=True)
    opt = torch.optim.SGD([W], lr=0.1)
    for _ in range(1001):
        cost = SF.double_softmax_cross_entropy(X @ W, y)
        opt.zero_grad()
        cost.backward()
        opt.step()
    assert round(cost.item(), 6) == 0.738749
    assert round(_toy(init="zeros", bias=False).metrics["train_loss"], 6) == 0.399962


def test_logistic_regression_on_the_pass_fail_table():
    result = train(load_dataset("toy-binary"),
                   make_config(data_name="toy-binary", model="logistic", lr=1.0, epochs=1000))
    assert result.metrics["train_accuracy"] == 1.0
    assert result.metrics["train_loss"] < 0.1


@pytest.mark.slow
def test_xor_needs_hidden_layers():
    data = load_dataset("xor")
    linear = train(data, make_config(data_name="xor", model="logistic", lr=1.0, epochs=2000, seed=777))
    assert linear.metrics["train_accuracy"] <= 0.75  # no line separates XOR
    mlp = train(data, make_config(data_name="xor", model="mlp", hidden=[10, 10, 10],
                                  activation="sigmoid", lr=1.0, epochs=10001, seed=777))
    costs = mlp.history.avg_cost
    assert all(abs(c - 0.69) < 0.01 for c in costs[:1000])  # the plateau the lesson shows
    assert mlp.metrics["train_loss"] < 3e-4  # the lesson ends near 1.6e-4
    assert mlp.metrics["train_accuracy"] == 1.0


def _blobs(n=300, f=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, f, generator=g) * 3
    y = torch.randint(0, c, (n,), generator=g)
    X = centers[y] + torch.randn(n, f, generator=g)
    return X, y


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", ["none", "pixels", "standardize"])
def test_closed_form_gradients_match_autograd(binary, weighted, kind):
    """The linear models' closed-form gradients, with the preprocessing folded into the layer,
    equal autograd's through softreg.models.functional's cross-entropy on preprocessed inputs."""
    X, y = _blobs(c=2 if binary else 4)
    X = X * 7 + 30  # raw values with an offset, so the folded shift matters
    w = torch.rand(len(y)) + 0.5 if weighted else None
    torch.manual_seed(0)
    net = LogisticRegression(6) if binary else SoftmaxRegression(6, 4)
    model = Classifier(net, Preprocess.fit(kind, X, 255.0), 2 if binary else 4).double()
    X = X.double()
    cost, correct, grads = model.gradients(X[:50], y[:50], None if w is None else w[:50].double(), 50)
    x = model.preprocess(X[:50])
    scores = net(x)
    if binary:
        losses = SF.binary_cross_entropy_with_logits(scores, y[:50].double(), reduction="none")
    else:
        losses = SF.cross_entropy(scores, y[:50], reduction="none")
    ref_cost = (losses if w is None else losses * w[:50].double()).sum() / 50
    ref_grads = torch.autograd.grad(ref_cost, list(net.parameters()))
    torch.testing.assert_close(cost, ref_cost.detach())
    for got, ref in zip(grads, ref_grads):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-12)
    predicted = (scores >= 0).long() if binary else scores.argmax(1)
    assert int(correct) == int((predicted == y[:50]).sum())


def test_folded_scores_equal_the_preprocessed_forward():
    X, y = _blobs(c=3)
    raw = (X * 20 + 100).clamp(0, 255).round().to(torch.uint8)
    torch.manual_seed(1)
    model = Classifier(SoftmaxRegression(6, 3), Preprocess.fit("standardize", raw, 255.0), 3)
    with torch.no_grad():
        folded = model(raw)
        plain = model.net(model.preprocess(raw))
    torch.testing.assert_close(folded, plain, rtol=1e-5, atol=1e-5)


def test_fast_path_reproduces_the_dataloader_loop():
    """The lessons' loop (TensorDataset + DataLoader(shuffle, drop_last) + nn.Linear + SGD)
    and softreg's in-tensor loop visit the same minibatches and give the same costs."""
    X, y = _blobs(n=250, f=8, c=3)
    config = make_config(batch_size=20, lr=0.1, momentum=0.0, epochs=3, drop_last=True,
                         shuffle=True, seed=777, preprocess="none", l2=0.0, average=0.0)
    data = Dataset("blobs", Split(X, y), None, ["a", "b", "c"])
    ours = train(data, config).history.avg_cost

    torch.manual_seed(777)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=20,
                                         shuffle=True, drop_last=True)
    model = nn.Linear(8, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reference = []
    for _ in range(3):
        costs = []
        for xb, yb in loader:
            cost = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            cost.backward()
            opt.step()
            costs.append(cost.item())
        reference.append(sum(costs) / len(costs))
    np.testing.assert_allclose(ours, reference, rtol=1e-5)


def test_same_seed_same_model_different_seed_different_model():
    data = load_dataset("digits")
    cfg = dict(epochs=2, batch_size=64)
    a = train(data, make_config(seed=5, **cfg)).model.net.linear.weight
    b = train(data, make_config(seed=5, **cfg)).model.net.linear.weight
    c = train(data, make_config(seed=6, **cfg)).model.net.linear.weight
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_digits_default_recipe_is_accurate():
    result = train(load_dataset("digits"), make_config())
    assert result.metrics["test_accuracy"] > 0.93
    assert result.metrics["train_seconds"] > 0


def test_mlp_with_adam_on_digits():
    result = train(load_dataset("digits"),
                   make_config(model="mlp", hidden=[32], optimizer="adam", lr=0.01, epochs=10))
    assert result.metrics["test_accuracy"] > 0.93


def test_lbfgs_reaches_the_l2_optimum_of_scikit_learn():
    from sklearn.linear_model import LogisticRegression as SkLogReg

    data = load_dataset("digits")
    X = data.train.X.reshape(len(data.train), -1).double() / 16
    y = data.train.y
    C = 1.0
    l2 = 1.0 / (C * len(y))  # sklearn minimises C * sum(loss) + ||W||^2 / 2
    sk = SkLogReg(C=C, max_iter=5000, tol=1e-10).fit(X.numpy(), y.numpy())
    result = train(data, make_config(optimizer="lbfgs", lr=1.0, epochs=60, l2=l2, preprocess="pixels"))
    net = result.model.net.linear

    def objective(W, b):
        z = X @ torch.as_tensor(W).double().T + torch.as_tensor(b).double()
        return F.cross_entropy(z, y).item() + 0.5 * l2 * float((torch.as_tensor(W).double() ** 2).sum())

    ours = objective(net.weight.detach(), net.bias.detach())
    theirs = objective(sk.coef_, sk.intercept_)
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_early_stopping_keeps_the_best_epoch():
    data = load_dataset("digits")
    config = make_config(model="mlp", hidden=[64], optimizer="adam", lr=0.01, epochs=200,
                         validation_fraction=0.2, early_stopping=True, patience=3)
    result = train(data, config)
    rows = result.history.rows
    assert len(rows) < 200
    best = min(rows, key=lambda r: r["val_loss"])
    assert result.history.best_epoch == best["epoch"]
    assert result.metrics["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert len(rows) - best["epoch"] >= 3


def test_validation_split_is_stratified_and_disjoint():
    data = load_dataset("digits")
    kept, val = split_validation(data, 0.25, seed=0)
    assert len(kept.train) + len(val) == len(data.train)
    assert abs(len(val) - 0.25 * len(data.train)) <= 1
    counts = torch.bincount(val.y, minlength=10).float() / len(val)
    assert float(counts.min()) > 0.07


def test_l1_gives_exact_zeros_and_cosine_schedule_decays():
    data = load_dataset("digits")
    seen = []
    class Seen(Callback):
        def on_epoch(self, state, row):
            seen.append(row["epoch"])

    sparse = train(data, make_config(l1=0.05, epochs=5, schedule="cosine", batch_size=128, preprocess="pixels"),
                   callbacks=[Seen()])
    weight = sparse.model.net.linear.weight
    assert (weight == 0).float().mean() > 0.3
    assert sparse.metrics["test_accuracy"] > 0.85
    assert seen == [1, 2, 3, 4, 5]
    dense = train(data, make_config(epochs=5, batch_size=128, preprocess="pixels"))
    assert (dense.model.net.linear.weight == 0).float().mean() < 0.01


def test_sample_weights_act_like_repeated_samples():
    X, y = _blobs(n=60, f=3, c=2)
    data = Dataset("b", Split(X, y), None, ["a", "b"])
    twice = Dataset("b2", Split(torch.cat([X, X[:10]]), torch.cat([y, y[:10]])), None, ["a", "b"])
    w = torch.ones(60)
    w[:10] = 2
    config = make_config(batch_size=0, lr=0.5, momentum=0, epochs=30, preprocess="none", shuffle=False,
                         average=0.0)
    m1 = train(data, config, sample_weight=w * 60 / 70).model
    m2 = train(twice, config).model
    torch.testing.assert_close(m1.net.linear.weight, m2.net.linear.weight, rtol=1e-4, atol=1e-5)


def test_batch_bounds():
    assert batch_bounds(10, 4, False) == [(0, 4), (4, 8), (8, 10)]
    assert batch_bounds(10, 4, True) == [(0, 4), (4, 8)]
    assert batch_bounds(10, 0, True) == [(0, 10)]


def test_unknown_recipe_and_diverging_training():
    with pytest.raises(UserInputError, match="unknown recipe 'fast'"):
        make_config("fast")
    data = Dataset("big", Split(torch.randn(50, 3) * 1e30, torch.randint(0, 2, (50,))), None, ["a", "b"])
    with pytest.raises(UserInputError, match="diverged"):
        train(data, make_config(preprocess="none", lr=10.0, epochs=3))


def test_weight_averaging_smooths_the_last_iterate():
    data = load_dataset("digits")
    plain = train(data, make_config(average=0.0, lr=0.5, batch_size=16, epochs=3, seed=3))
    averaged = train(data, make_config(average=0.75, lr=0.5, batch_size=16, epochs=3, seed=3))
    assert averaged.metrics["train_loss"] < plain.metrics["train_loss"]
