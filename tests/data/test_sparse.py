"""Sparse rows: CSR helpers against SciPy, the closed-form gradients on CSR against dense and
autograd, svmlight files against scikit-learn's reader, in-memory and streamed sources, and the
command line on svmlight data (training, scoring, prediction, every user-facing failure)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import dump_svmlight_file, load_svmlight_file
from sklearn.preprocessing import StandardScaler

from helpers import assert_user_error
from softreg.data import load_dataset
from softreg.data.base import Dataset, Split
from softreg.models import sparse as S
from softreg.data.svmlight import stream as sparse_stream
from softreg.data.shuffle import SparseShuffleBuffer
from softreg.data.sources import InMemorySource
from softreg.data.svmlight.files import load_svmlight, parse_pairs
from softreg.errors import UserInputError
from softreg.models import MLP, Classifier, LogisticRegression, Preprocess, SoftmaxRegression
from softreg.models.preprocess import Moments
from softreg.training import make_config, train


def _matrix(n=60, f=40, density=0.15, seed=0, dtype=np.float64):
    X = sp.random(n, f, density=density, format="csr", random_state=seed, dtype=dtype)
    X.data = np.round(X.data * 10, 3) + 0.5  # no stored zeros, some repeated values
    return X


# -- CSR helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("take", [S._take_rows_numpy, S._take_rows_torch, S.take_rows])
def test_row_gathers_equal_scipys_fancy_indexing(take):
    X = _matrix()
    T = S.from_scipy(X, torch.float64)
    rows = torch.tensor([5, 0, 59, 5, 17, 3])  # repeats and any order
    got = take(T, rows)
    assert got.layout == torch.sparse_csr and got.shape == (6, 40)
    assert np.array_equal(got.to_dense().numpy(), X[rows.numpy()].toarray())
    empty = take(T, torch.zeros(0, dtype=torch.int64))
    assert empty.shape == (0, 40)


def test_row_ranges_chunks_and_joins():
    X = _matrix()
    T = S.from_scipy(X)
    assert np.array_equal(S.row_range(T, 10, 25).to_dense().numpy(), X[10:25].toarray().astype(np.float32))
    assert S.row_range(T, 58, 100).shape == (2, 40)
    chunks = list(S.row_chunks(T, 16))
    assert [c.shape[0] for c in chunks] == [16, 16, 16, 12]
    joined = S.cat_rows(chunks)
    assert torch.equal(joined.to_dense(), T.to_dense())
    assert np.array_equal(S.to_scipy(joined).toarray(), X.toarray().astype(np.float32))


def test_products_scaling_and_column_sums_equal_dense_arithmetic():
    X = _matrix()
    T = S.from_scipy(X, torch.float64)
    dense = torch.from_numpy(X.toarray())
    D = torch.randn(60, 3, dtype=torch.float64)
    for product in (S.t_mm, S._t_mm_torch):  # SciPy's kernel on the CPU, torch's elsewhere
        torch.testing.assert_close(product(T, D), dense.T @ D)
    scale = torch.rand(40, dtype=torch.float64)
    torch.testing.assert_close(S.scale_columns(T, scale).to_dense(), dense * scale)
    total, squares = S.column_sums(T)
    torch.testing.assert_close(total, dense.sum(0))
    torch.testing.assert_close(squares, (dense**2).sum(0))


def test_scale_preprocessing_is_standard_scaler_without_centring():
    X = _matrix(n=500, f=30)
    T = S.from_scipy(X)
    pre = Preprocess.fit("scale", T, None)
    reference = StandardScaler(with_mean=False).fit(X)
    assert pre.kind == "scale" and float(pre.shift.abs().max()) == 0.0
    np.testing.assert_allclose(pre.scale.numpy(), 1 / reference.scale_, rtol=1e-5)
    out = pre(T)
    assert out.layout == torch.sparse_csr  # zeros stay zeros
    np.testing.assert_allclose(out.to_dense().numpy(), reference.transform(X).toarray(), rtol=1e-5, atol=1e-6)
    merged = Moments(30).update(S.row_range(T, 0, 200)).update(S.row_range(T, 200, 500))
    whole = Moments(30).update(torch.from_numpy(X.toarray()))
    torch.testing.assert_close(merged.std, whole.std)


# -- models on CSR rows ----------------------------------------------------------------------------


@pytest.mark.parametrize("Net, classes", [(SoftmaxRegression, 4), (LogisticRegression, 2)])
@pytest.mark.parametrize("folded", [False, True])
def test_closed_form_gradients_on_csr_equal_autograd_on_dense_rows(Net, classes, folded):
    torch.manual_seed(0)
    X = _matrix(n=50, f=30)
    T, dense = S.from_scipy(X, torch.float64), torch.from_numpy(X.toarray())
    y = torch.randint(0, classes, (50,))
    w = torch.rand(50, dtype=torch.float64)
    net = (Net(30, classes) if Net is SoftmaxRegression else Net(30)).double()
    shift = torch.rand(30, dtype=torch.float64) if folded else None
    scale = torch.rand(30, dtype=torch.float64) + 0.5 if folded else None
    cost, correct, grads = net.gradients(T, y, w, 50.0, shift, scale)
    params = list(net.parameters())
    seen = dense if not folded else (dense - shift) * scale
    with torch.enable_grad():
        scores = net(seen)
        from softreg.models import loss_from_scores

        reference = (loss_from_scores(scores, y, reduction="none") * w).sum() / 50.0
        expected = torch.autograd.grad(reference, params)
    torch.testing.assert_close(cost, reference.detach())
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("Net, classes", [(SoftmaxRegression, 4), (LogisticRegression, 2)])
def test_scaled_and_lazy_gradients_on_csr_equal_autograd(Net, classes):
    """Scale-only preprocessing (sparse data's) is folded into the rows' values; with lazy=True the
    weight gradient comes back as a SparseProduct that forms the same tensor."""
    torch.manual_seed(1)
    X = _matrix(n=50, f=30)
    T, dense = S.from_scipy(X, torch.float64), torch.from_numpy(X.toarray())
    y = torch.randint(0, classes, (50,))
    net = (Net(30, classes) if Net is SoftmaxRegression else Net(30)).double()
    scale = torch.rand(30, dtype=torch.float64) + 0.5
    cost, _, grads = net.gradients(T, y, None, 50.0, None, scale, lazy=True)
    assert isinstance(grads[0], S.SparseProduct) and grads[0].shape == net.linear.weight.shape
    with torch.enable_grad():
        from softreg.models import loss_from_scores

        reference = loss_from_scores(net(dense * scale), y, reduction="none").sum() / 50.0
        expected = torch.autograd.grad(reference, list(net.parameters()))
    torch.testing.assert_close(cost, reference.detach())
    torch.testing.assert_close(grads[0].dense(), expected[0])
    torch.testing.assert_close(grads[1], expected[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_product_adds_in_place_as_the_formed_product(monkeypatch, dtype):
    """add_to writes alpha * (X^T D)^T into a feature-major buffer through SciPy's kernel, the
    same numbers as forming the product; a row-major buffer, or no kernel, takes the formed path."""
    X = _matrix(n=40, f=500, density=0.02, dtype=np.float32 if dtype == torch.float32 else np.float64)
    T = S.from_scipy(X, dtype)
    D = torch.randn(40, 6, dtype=dtype)
    product = S.SparseProduct(T, D)
    expected = torch.from_numpy((X.T @ D.numpy()).T.copy())
    torch.testing.assert_close(product.dense(), expected)
    start = torch.randn(500, 6, dtype=dtype)
    for layout in ("feature-major", "row-major"):
        out = start.clone().t() if layout == "feature-major" else start.t().contiguous()
        before = out.data_ptr()
        product.add_to(out, alpha=-0.5)
        assert out.data_ptr() == before  # in place
        torch.testing.assert_close(out, start.t() - 0.5 * expected)
    calls = []
    kernel = S._accumulate_kernel()
    monkeypatch.setattr(S, "_accumulate_kernel", lambda: (lambda *a: calls.append(1) or kernel(*a)))
    product.add_to(start.clone().t())
    assert calls == [1]  # the feature-major buffer went through the kernel
    monkeypatch.setattr(S, "_accumulate_kernel", lambda: None)
    out = start.clone().t()
    product.add_to(out, alpha=2.0)
    torch.testing.assert_close(out, start.t() + 2.0 * expected)
    assert torch.equal(S.densify(product), product.dense()) and S.densify(D) is D


@pytest.mark.parametrize("momentum, l2", [(0.0, 0.0), (0.0, 0.05), (0.9, 0.05)])
def test_sgd_on_sparse_products_follows_formed_gradients(momentum, l2):
    from softreg.training.updates import SGD

    X = _matrix(n=64, f=200, density=0.05, dtype=np.float32)
    T = S.from_scipy(X)
    params = {}
    for lazy in (False, True):
        torch.manual_seed(0)
        net = SoftmaxRegression(200, 3)
        net.linear.weight = torch.nn.Parameter(net.linear.weight.detach().t().contiguous().t())  # feature-major
        updater = SGD(list(net.parameters()), [True, False], l2, 0.0, momentum)
        for step in range(5):
            rows = torch.arange(step * 12, step * 12 + 16) % 64
            xb = S.take_rows(T, rows)
            _, _, grads = net.gradients(xb, rows % 3, None, 16.0, lazy=lazy)
            assert isinstance(grads[0], S.SparseProduct) == lazy
            updater.step(grads, 0.5)
        params[lazy] = [p.detach().clone() for p in net.parameters()]
    for a, b in zip(params[False], params[True]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_mlp_takes_csr_rows_through_a_sparse_first_layer():
    torch.manual_seed(0)
    X = _matrix(n=40, f=25)
    T, dense = S.from_scipy(X, torch.float64), torch.from_numpy(X.toarray())
    y = torch.randint(0, 3, (40,))
    for bias in (True, False):
        net = MLP(25, [7], 3, bias=bias).double()
        a = net.gradients(dense, y, None, 40.0)
        b = net.gradients(T, y, None, 40.0)
        torch.testing.assert_close(a[0], b[0])
        for ga, gb in zip(a[2], b[2]):
            torch.testing.assert_close(ga, gb)


def test_sparse_models_store_their_weight_feature_major_and_save_it_as_usual():
    from softreg.models import ModelConfig, build_model

    net = build_model(ModelConfig(kind="softmax", n_features=1000, n_classes=5, index_base=1))
    assert net.linear.weight.shape == (5, 1000) and net.linear.weight.stride() == (1, 5)
    assert net.double().linear.weight.stride() == (1, 5)  # .to() keeps the layout
    copy = build_model(ModelConfig(kind="softmax", n_features=1000, n_classes=5))
    copy.load_state_dict({k: v.contiguous() for k, v in net.state_dict().items()})
    assert torch.equal(copy.linear.weight, net.linear.weight.float())
    mlp = build_model(ModelConfig(kind="mlp", n_features=1000, n_classes=3, hidden=[4], index_base=0))
    assert mlp.layers[0].weight.stride() == (1, 4)


def test_classifier_scores_csr_and_dense_rows_alike():
    X = _matrix(n=30, f=20)
    T = S.from_scipy(X)
    for kind in ("scale", "none"):
        model = Classifier(SoftmaxRegression(20, 3), Preprocess.fit(kind, T, None), 3).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(T), model(torch.from_numpy(X.toarray()).float()))


# -- sources ---------------------------------------------------------------------------------------


def test_in_memory_source_gathers_csr_batches_and_shares_rows():
    X = _matrix(n=100, f=12)
    T, y = S.from_scipy(X), torch.arange(100)
    source = InMemorySource(T, y)
    batches = list(source.batches(3, 32, False, True))
    rows = torch.cat([b.y for b in batches])
    assert sorted(rows.tolist()) == list(range(100)) and all(b.X.layout == torch.sparse_csr for b in batches)
    for b in batches:
        assert np.array_equal(b.X.to_dense().numpy(), X[b.y.numpy()].toarray().astype(np.float32))
    shares = [InMemorySource(T, y, rank=r, world=2) for r in range(2)]
    got = [torch.cat([b.y for b in s.batches(3, 32, False, True, rank=r, world=2)]) for r, s in enumerate(shares)]
    assert sorted(torch.cat(got).tolist()) == list(range(100))


def test_sparse_shuffle_buffer_releases_every_row_once_in_a_new_order():
    X = S.from_scipy(sp.csr_matrix(np.arange(1, 301, dtype=np.float32)[:, None]))
    ids = torch.arange(300)
    buffer = SparseShuffleBuffer(64, torch.Generator().manual_seed(0))
    out = []
    for start in range(0, 300, 23):
        out += list(buffer.feed(S.row_range(X, start, start + 23), ids[start : start + 23]))
        assert buffer.size < 64
    out += list(buffer.drain())
    seen = torch.cat([y for _, y in out])
    values = torch.cat([x.to_dense()[:, 0] for x, _ in out])
    assert sorted(seen.tolist()) == list(range(300)) and not torch.equal(seen, ids)
    assert torch.equal(values, seen.float() + 1)  # rows and labels travel together


# -- svmlight files --------------------------------------------------------------------------------


def _write(path, X, y, zero_based=False, comment=None):
    dump_svmlight_file(X, y, str(path), zero_based=zero_based, comment=comment)
    return path


def _problem(n=400, f=60, k=3, seed=0):
    """Sparse rows whose class shows in which features are large."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = sp.random(n, f, density=0.1, format="csr", random_state=seed).tolil()
    for i, c in enumerate(y):
        X[i, c * 7 : c * 7 + 3] = 2.0 + rng.random(3)
    return X.tocsr(), y


@pytest.mark.parametrize("zero_based", [False, True])
def test_svmlight_file_reads_as_scikit_learn_reads_it(tmp_path, zero_based):
    X, y = _problem()
    path = _write(tmp_path / "d.svm", X, y * 2 - 1, zero_based=zero_based)  # labels -1, 1, 3
    data = load_dataset(str(path))
    assert data.classes == ["-1", "1", "3"] and data.index_base == (0 if zero_based else 1)
    reference, labels = load_svmlight_file(str(path), zero_based="auto")
    n_train = len(data.train)
    assert n_train + len(data.test) == 400 and data.n_features == reference.shape[1]
    rows = torch.cat([data.train.X.to_dense(), data.test.X.to_dense()])
    assert sorted(map(tuple, rows.numpy().tolist())) == sorted(map(tuple, reference.toarray().astype(np.float32).tolist()))


def test_svmlight_test_file_shares_the_feature_numbering(tmp_path):
    X, y = _problem()
    narrow = X[:, :30]  # its largest index is smaller than the training file's
    train_path, test_path = _write(tmp_path / "a.svm", X, y), _write(tmp_path / "b.svm.gz", narrow[:50], y[:50])
    with open(test_path, "rb") as f:
        text = f.read()
    with gzip.open(test_path, "wb") as f:  # dump wrote plain text: compress it
        f.write(text)
    data = load_svmlight(train_path, test=test_path)
    assert data.test.X.shape == (50, 60) and len(data.train) == 400
    assert np.array_equal(data.test.X.to_dense().numpy()[:, :30], narrow[:50].toarray().astype(np.float32))


def test_parse_pairs_checks_every_index_and_value():
    cols, vals = parse_pairs("17:2 3:0.5,5:1e-3", index_base=1, n_features=20)
    assert cols.tolist() == [2, 4, 16] and vals.tolist() == [0.5, 1e-3, 2.0]
    assert parse_pairs({"3": 1, 0: 2}, 0, 5)[0].tolist() == [0, 3]
    for text, words in [("3", "is not index:value"), ("21:1", "outside the model's features 1 to 20"),
                        ("0:1", "outside"), ("a:1", "is not an integer"), ("3:nan", "finite number"),
                        ("3:1 3:2", "given twice"), ("3:x", "finite number")]:
        with pytest.raises(UserInputError, match=words):
            parse_pairs(text, 1, 20)


@pytest.mark.parametrize("text, words", [
    ("1 1:0.5 3:1\n2 5:1 3:2\n", ["line 2", "does not increase"]),
    ("1 1:0.5\nspam 3:1\n", ["line 2", "label 'spam' is not a number"]),
    ("1,2 1:0.5\n", ["line 1", "multi-label"]),
    ("1 1:x\n", ["line 1", "value 'x'"]),
    ("1 1-0.5\n", ["line 1", "is not <index>:<value>"]),
])
def test_malformed_svmlight_files_name_the_line(tmp_path, text, words):
    path = tmp_path / "bad.svm"
    path.write_text(text)
    for open_data in (lambda: load_dataset(str(path)),
                      lambda: sparse_stream.open_svmlight_stream(path, preprocess="standardize")):
        with pytest.raises(UserInputError) as info:
            open_data()
        for word in [str(path), *words]:
            assert word in str(info.value)


# -- streaming -------------------------------------------------------------------------------------


def test_streamed_svmlight_equals_the_in_memory_file(tmp_path, monkeypatch):
    X, y = _problem(n=900)
    path = _write(tmp_path / "d.svm", X, y)
    monkeypatch.setattr(sparse_stream, "PIECE_BYTES", 2000)  # many pieces, cut at line breaks
    stream = sparse_stream.open_svmlight_stream(path, preprocess="standardize")
    memory = load_dataset(str(path))
    assert len(stream.train.pieces) > 10 and stream.index_base == memory.index_base == 1
    assert len(stream.train) == len(memory.train) and len(stream.test) == len(memory.test)
    test_rows = S.cat_rows([b.X for b in stream.test.chunks(100)])
    assert torch.equal(test_rows.to_dense(), memory.test.X.to_dense())  # the same held-out rows, in order
    fitted = Preprocess.fit("scale", memory.train.X, None)
    torch.testing.assert_close(stream.preprocess.scale, fitted.scale, rtol=1e-5, atol=1e-6)
    seen = torch.cat([b.y for b in stream.train.batches(1, 64, False, True)])
    assert len(seen) == len(memory.train)  # every training row once per epoch
    config = make_config(epochs=4, batch_size=32)
    streamed, in_memory = train(stream, config), train(memory, config)
    assert streamed.metrics["test_accuracy"] > 0.9 and in_memory.metrics["test_accuracy"] > 0.9
    assert streamed.model.preprocess.kind == in_memory.model.preprocess.kind == "scale"


def test_streamed_compressed_file_is_read_in_order(tmp_path, monkeypatch):
    X, y = _problem(n=300)
    plain = _write(tmp_path / "d.svm", X, y)
    packed = tmp_path / "d.svm.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    monkeypatch.setattr(sparse_stream, "PIECE_BYTES", 1500)
    stream = sparse_stream.open_svmlight_stream(packed, preprocess="none", test=plain)
    assert stream.train.ordered and len(stream.train.pieces) == 1 and len(stream.train) == 300
    rows = S.cat_rows([b.X for b in stream.train.chunks(64)])
    assert np.array_equal(rows.to_dense().numpy(), X.toarray().astype(np.float32))
    bad = tmp_path / "bad.svm.gz"
    bad.write_bytes(gzip.compress(plain.read_bytes() + b"1 4:1 2:1\n"))
    with pytest.raises(UserInputError, match="line 301: feature index 2 does not increase"):
        sparse_stream.open_svmlight_stream(bad, preprocess="none")


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def svm_files(tmp_path):
    X, y = _problem(n=500, f=80)
    return _write(tmp_path / "train.svm", X[:400], y[:400]), _write(tmp_path / "test.svm", X[400:], y[400:])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("preprocess", [None, "standardize"])
def test_train_evaluate_predict_on_svmlight_files(run_cli, tmp_path, svm_files, stream, preprocess):
    """Sparse rows are used as they are unless --preprocess asks for scaling (standardize: each
    column divided by its spread, never centred)."""
    train_path, test_path = svm_files
    out = tmp_path / "run"
    args = ["train", "--data", train_path, "--test", test_path, "--out", out, "--epochs", "5"]
    code, stdout, err = run_cli(*args, *(["--stream"] if stream else []),
                                *(["--preprocess", preprocess] if preprocess else []))
    assert code == 0, err
    kind = "scale" if preprocess else "none"
    assert f"features: {kind}" in stdout and "1 thread" in stdout
    assert ("sparse rows: lr" in stdout) == (preprocess is None)
    config = json.loads((out / "config.json").read_text())
    assert config["preprocess"] == kind and config["model"]["index_base"] == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.9
    code, stdout, err = run_cli("evaluate", out)
    assert code == 0, err
    assert f"accuracy {metrics['test_accuracy']:.4f}" in stdout
    code, stdout, err = run_cli("evaluate", out, "--data", test_path, "--no-save")
    assert code == 0 and f"accuracy {metrics['test_accuracy']:.4f}" in stdout, err
    code, stdout, err = run_cli("predict", out, "--features", "1:2.5 2:2.2 3:2.9")  # class 0's features
    assert code == 0 and stdout.startswith("features: predicted 0"), (stdout, err)
    code, stdout, err = run_cli("predict", out, "--index", "3")
    assert code == 0 and "test sample 3" in stdout, err
    code, stdout, err = run_cli("predict", out, test_path, "--out", tmp_path / "p.csv")
    assert code == 0, err
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "predicted,p_0,p_1,p_2" and len(lines) == 101


def test_svmlight_user_errors_are_one_line(run_cli, tmp_path, svm_files):
    train_path, test_path = svm_files
    out = tmp_path / "run"
    assert run_cli("train", "--data", train_path, "--out", out, "--epochs", "2")[0] == 0
    wide = tmp_path / "wide.svm"
    wide.write_text("0 1:1 500:2\n")
    cases = [
        (("evaluate", out, "--data", wide), ["wide.svm", "feature index 500 is beyond the model's 80 features"]),
        (("predict", out, "--features", "81:1"), ["feature index 81 is outside the model's features 1 to 80"]),
        (("predict", out, "--features", "1,2,3"), ["'1' is not index:value"]),
        (("predict", out, test_path), ["writes a .csv file", "--out"]),
        (("train", "--data", train_path, "--preprocess", "pixels", "--out", tmp_path / "r2"), ["needs image data"]),
        (("train", "--data", train_path, "--drop", "x", "--out", tmp_path / "r3"), ["--drop applies to tables"]),
        (("train", "--data", train_path, "--label", "x", "--out", tmp_path / "r4"), ["--label applies to tables"]),
        (("train", "--data", train_path, "--stream", "--sep", ";", "--out", tmp_path / "r5"), ["--sep applies to tables"]),
    ]
    unknown_label = tmp_path / "other.svm"
    unknown_label.write_text("9 1:1\n")
    cases.append((("train", "--data", train_path, "--test", unknown_label, "--out", tmp_path / "r6"),
                  ["label(s) 9 do not occur in train.svm"]))
    empty = tmp_path / "empty.svm"
    empty.write_text("")
    cases.append((("train", "--data", empty, "--out", tmp_path / "r7"), ["has no samples"]))
    for args, words in cases:
        code, _, err = run_cli(*args)
        assert_user_error(code, err, *words)


def _text_like(tmp_path, n=1200, f=3000, k=5, seed=0):
    """Unit-length sparse rows of counts (as TF-IDF), in svmlight files; train and test paths."""
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    topic = rng.integers(0, f, (k, 40))  # each class's frequent words
    rows = []
    for label in y:
        words = np.concatenate([rng.choice(topic[label], 8), rng.integers(0, f, 12)])
        rows.append(np.bincount(words, minlength=f))
    X = normalize(sp.csr_matrix(np.array(rows, dtype=np.float64)))
    return _write(tmp_path / "t.svm", X[:1000], y[:1000]), _write(tmp_path / "t.t.svm", X[1000:], y[1000:])


def test_svmlight_defaults_are_the_estimators_rules(run_cli, tmp_path):
    """Left out on sparse rows, --lr, --l2 and --batch-size come from the data as the estimators
    set them (alpha = 1/n is LogisticRegression(C=1)); given ones are kept; the scores agree."""
    from softreg import SoftmaxRegressionClassifier

    train_path, test_path = _text_like(tmp_path)
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", "--data", train_path, "--test", test_path, "--out", out)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())["train"]
    X, y = load_svmlight_file(str(train_path), zero_based=False, n_features=3000)
    clf = SoftmaxRegressionClassifier(alpha=1 / 1000, optimizer="sgd", average=0.75, random_state=0)
    clf.fit(X.astype(np.float32), y)
    assert config["optim"]["l2"] == pytest.approx(1 / 1000)
    assert config["optim"]["batch_size"] == clf.batch_size_
    assert config["optim"]["lr"] == pytest.approx(clf.learning_rate_, rel=0.05)  # the probe's own rows
    assert f"sparse rows: lr {config['optim']['lr']:.3g} from the rows' scale, L2 1/n = 0.001" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    Xt, yt = load_svmlight_file(str(test_path), zero_based=False, n_features=3000)
    assert metrics["test_accuracy"] >= clf.score(Xt.astype(np.float32), yt) - 0.02 and metrics["test_accuracy"] > 0.8
    chosen = tmp_path / "chosen"
    code, stdout, err = run_cli("train", "--data", train_path, "--out", chosen, "--lr", "0.5", "--l2", "0.01",
                                "--batch-size", "64", "--epochs", "2")
    assert code == 0, err
    optim = json.loads((chosen / "config.json").read_text())["train"]["optim"]
    assert (optim["lr"], optim["l2"], optim["batch_size"]) == (0.5, 0.01, 64) and "sparse rows:" not in stdout


def test_sparse_defaults_apply_to_the_default_linear_recipe_only():
    from softreg.training import make_config
    from softreg.training.sparse_defaults import sparse_settings

    X = _matrix(n=300, f=50, dtype=np.float32)
    data = Dataset("s", Split(S.from_scipy(X), torch.arange(300) % 3), None, ["a", "b", "c"], index_base=0)
    auto = make_config(preprocess="auto")
    settings = sparse_settings(data, auto, frozenset())
    assert set(settings) == {"lr", "l2", "batch_size"} and settings["l2"] == pytest.approx(1 / 300)
    assert set(sparse_settings(data, auto, frozenset({"lr", "batch_size"}))) == {"l2"}
    for other in (make_config(preprocess="standardize"), make_config(model="mlp", preprocess="auto"),
                  make_config("lesson", preprocess="auto"), make_config(optimizer="adam", preprocess="auto")):
        assert sparse_settings(data, other, frozenset()) == {}
    dense = Dataset("d", Split(torch.ones(10, 3), torch.arange(10) % 2), None, ["a", "b"])
    assert sparse_settings(dense, auto, frozenset()) == {}


def test_sparse_rows_are_scaled_only_when_asked():
    assert [S.sparse_preprocess(k) for k in ("auto", "none", "standardize", "scale")] == ["none", "none", "scale", "scale"]
