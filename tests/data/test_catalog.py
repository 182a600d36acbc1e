"""Tests for softreg.data.idx.catalog: cache folders, local IDX folders and downloads.

Downloads go to a throwaway HTTP server on 127.0.0.1; the registry's mirrors and
MD5s are monkeypatched to point at it, so nothing here needs the network.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest
import torch

from softreg.data.idx import catalog
from softreg.data.idx.catalog import (
    DATASETS,
    cache_dir,
    dataset_status,
    find_idx_files,
    load_idx_dataset,
)
from softreg.data.idx.files import read_idx, write_idx
from softreg.errors import UserInputError

STANDARD = list(catalog.IDX_FILES.values())  # the four standard .gz names


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No real cache, no system folders, no SOFTREG_DATA from the caller's shell."""
    monkeypatch.delenv("SOFTREG_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(catalog, "SYSTEM_DATA_DIRS", {})


def make_split(n: int, n_classes: int = 10, h: int = 6, w: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, h, w), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % n_classes
    return x, y


def write_folder(folder: Path, n_train=12, n_test=6, n_classes=10, names=None, gz=True):
    """Write an IDX folder; ``names`` maps role -> file name (default: standard names)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = dict(names or {})
    for role, std in catalog.IDX_FILES.items():
        names.setdefault(role, std if gz else std[:-3])
    xtr, ytr = make_split(n_train, n_classes, seed=1)
    data = {"train_images": xtr, "train_labels": ytr}
    if n_test:
        xte, yte = make_split(n_test, n_classes, seed=2)
        data.update(test_images=xte, test_labels=yte)
    for role, tensor in data.items():
        write_idx(folder / names[role], tensor)
    return data


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def visible_files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def refused_url() -> str:
    """A URL on a local port that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]  # set per server

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.requests.append(self.path)
        if self.path.startswith("/short/"):  # announce more bytes than are sent
            body = b"\x1f\x8b" + b"x" * 100
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www over HTTP; yields (base_url, www_folder, request_log, stop)."""
    www = tmp_path / "www"
    www.mkdir()
    log: list[str] = []
    handler = type("H", (_Handler,), {"requests": log})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(www))
    )
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            stopped.append(True)

    yield f"http://127.0.0.1:{httpd.server_address[1]}/", www, log, stop
    stop()
    thread.join(5)


@pytest.fixture
def fake_fashion(server, monkeypatch):
    """fashion-mnist's registry entry pointed at the local server (mirror folder "good/")."""
    base, www, log, stop = server
    data = write_folder(www / "good")
    md5 = {name: md5_of(www / "good" / name) for name in STANDARD}
    info = DATASETS["fashion-mnist"]
    monkeypatch.setattr(info, "mirrors", [base + "good/"])
    monkeypatch.setattr(info, "md5", md5)
    return info, data, base, www, log, stop


# ------------------------------------------------------------------ cache folder


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "softreg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "softreg"
    monkeypatch.setenv("SOFTREG_DATA", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"  # explicit argument wins
    assert cache_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_load_uses_env_cache_then_data_dir_wins(tmp_path, monkeypatch):
    info = DATASETS["mnist"]
    monkeypatch.setattr(info, "mirrors", [refused_url()])  # any download would fail
    write_folder(tmp_path / "env" / "mnist", n_train=10)
    write_folder(tmp_path / "arg" / "mnist", n_train=14)
    monkeypatch.setenv("SOFTREG_DATA", str(tmp_path / "env"))
    ds = load_idx_dataset("mnist")
    assert len(ds.train) == 10 and ds.origin == str(tmp_path / "env" / "mnist")
    ds = load_idx_dataset("mnist", data_dir=tmp_path / "arg")
    assert len(ds.train) == 14 and ds.origin == str(tmp_path / "arg" / "mnist")
    monkeypatch.delenv("SOFTREG_DATA")
    write_folder(tmp_path / "xdg" / "softreg" / "mnist", n_train=16)
    assert len(load_idx_dataset("mnist").train) == 16


def test_system_folder_after_cache(tmp_path, monkeypatch):
    info = DATASETS["fashion-mnist"]
    monkeypatch.setattr(info, "mirrors", [refused_url()])
    system = tmp_path / "usr-share" / "fashion-mnist"
    write_folder(system, n_train=11, gz=False)
    monkeypatch.setattr(catalog, "SYSTEM_DATA_DIRS", {"fashion-mnist": [system]})
    ds = load_idx_dataset("fashion-mnist", data_dir=tmp_path / "cache")
    assert ds.origin == str(system) and len(ds.train) == 11
    assert ds.classes[0] == "T-shirt/top" and ds.classes[-1] == "Ankle boot"
    write_folder(tmp_path / "cache" / "fashion-mnist", n_train=13)
    ds = load_idx_dataset("fashion-mnist", data_dir=tmp_path / "cache")
    assert ds.origin == str(tmp_path / "cache" / "fashion-mnist") and len(ds.train) == 13


def test_not_local_and_download_off(tmp_path):
    with pytest.raises(
        UserInputError,
        match=r"kmnist is not available locally \(looked in .*\) and downloading is off; "
        r"put the IDX files in .*kmnist or allow downloading\.",
    ):
        load_idx_dataset("kmnist", data_dir=tmp_path / "c", download=False)


# ---------------------------------------------------------------------- download


def test_download_fills_cache_and_second_load_needs_no_server(tmp_path, fake_fashion):
    info, data, base, www, log, stop = fake_fashion
    seen = []
    cache = tmp_path / "cache"
    ds = load_idx_dataset(
        "fashion-mnist", data_dir=cache, progress=lambda url, done, total: seen.append(url)
    )
    assert torch.equal(ds.train.X, data["train_images"])
    assert torch.equal(ds.train.y, data["train_labels"])
    assert torch.equal(ds.test.X, data["test_images"])
    assert ds.train.y.dtype == torch.int64 and ds.train.X.dtype == torch.uint8
    assert ds.image_shape == (6, 5) and ds.pixel_max == 255.0 and ds.n_classes == 10
    assert ds.name == "fashion-mnist"
    assert visible_files(cache / "fashion-mnist") == sorted(STANDARD)  # no temp files
    for name in STANDARD:
        assert md5_of(cache / "fashion-mnist" / name) == info.md5[name]
    assert sorted(log) == sorted(f"/good/{n}" for n in STANDARD)
    assert set(seen) == {base + "good/" + n for n in STANDARD}

    stop()
    ds2 = load_idx_dataset("fashion-mnist", data_dir=cache)
    assert torch.equal(ds2.train.X, ds.train.X)
    assert len(log) == 4


def test_bad_checksum_on_first_mirror_falls_through(tmp_path, fake_fashion):
    info, data, base, www, log, stop = fake_fashion
    write_folder(www / "evil", n_train=30, n_test=7)  # valid IDX files, wrong content
    info.mirrors = [base + "evil/", base + "good"]  # second one without trailing slash
    ds = load_idx_dataset("fashion-mnist", data_dir=tmp_path / "c")
    assert torch.equal(ds.train.X, data["train_images"])
    assert visible_files(tmp_path / "c" / "fashion-mnist") == sorted(STANDARD)
    assert [p.split("/")[1] for p in log] == ["evil", "good"] * 4


def test_truncated_transfer_falls_through(tmp_path, fake_fashion):
    info, data, base, www, log, stop = fake_fashion
    info.mirrors = [base + "short/", base + "good/"]
    ds = load_idx_dataset("fashion-mnist", data_dir=tmp_path / "c")
    assert torch.equal(ds.test.y, data["test_labels"])
    assert visible_files(tmp_path / "c" / "fashion-mnist") == sorted(STANDARD)


def test_all_mirrors_fail_gives_clear_error_and_leaves_nothing(tmp_path, fake_fashion):
    info, data, base, www, log, stop = fake_fashion
    info.mirrors = [refused_url(), base + "missing/", base + "short/"]
    cache = tmp_path / "c"
    with pytest.raises(UserInputError) as err:
        load_idx_dataset("fashion-mnist", data_dir=cache)
    msg = str(err.value)
    assert msg.startswith("could not download fashion-mnist (no network?): ")
    assert "refused" in msg.lower() and "HTTP 404" in msg
    assert f"put the IDX files in {cache / 'fashion-mnist'} or pass data='PATH'" in msg
    assert "\n" not in msg
    assert visible_files(cache / "fashion-mnist") == []


def test_checksum_mismatch_everywhere(tmp_path, fake_fashion):
    info, data, base, www, log, stop = fake_fashion
    info.md5 = {n: "0" * 32 for n in STANDARD}
    with pytest.raises(
        UserInputError, match=r"could not download .*MD5 mismatch \(got [0-9a-f]{32}"
    ):
        load_idx_dataset("fashion-mnist", data_dir=tmp_path / "c")
    assert visible_files(tmp_path / "c" / "fashion-mnist") == []


def test_server_stopped(tmp_path, fake_fashion):
    info, data, base, www, log, stop = fake_fashion
    stop()
    with pytest.raises(UserInputError, match=r"could not download fashion-mnist \(no network\?\)"):
        load_idx_dataset("fashion-mnist", data_dir=tmp_path / "c")
    assert visible_files(tmp_path / "c" / "fashion-mnist") == []


def test_partial_cache_downloads_only_missing(tmp_path, fake_fashion):
    info, data, base, www, log, stop = fake_fashion
    folder = tmp_path / "c" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in STANDARD[:2]:  # train files, uncompressed, as a user might leave them
        write_idx(folder / name[:-3], read_idx(www / "good" / name))
    load_idx_dataset("fashion-mnist", data_dir=tmp_path / "c")
    assert sorted(log) == sorted(f"/good/{n}" for n in STANDARD[2:])


def test_unwritable_cache(tmp_path, fake_fashion):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserInputError, match=r"cannot create the data folder .*SOFTREG_DATA"):
        load_idx_dataset("fashion-mnist", data_dir=blocker)


# ------------------------------------------------------------------ local folders


def test_folder_with_spelling_variants_and_classes_txt(tmp_path):
    folder = tmp_path / "letters"
    names = {
        "train_images": "train-images.idx3-ubyte",
        "train_labels": "train-labels.idx1-ubyte.gz",
        "test_images": "test-images-idx3-ubyte.gz",
        "test_labels": "test-labels.idx1-ubyte",
    }
    data = write_folder(folder, n_classes=3, names=names)
    (folder / "classes.txt").write_text("alpha\nbeta\ngamma\n\n")
    found = find_idx_files(folder)
    assert {r: p.name for r, p in found.items()} == names
    ds = load_idx_dataset(folder)
    assert ds.classes == ["alpha", "beta", "gamma"]
    assert ds.name == "letters" and ds.origin == str(folder)
    assert torch.equal(ds.test.X, data["test_images"])
    assert ds.train.X.shape == (12, 6, 5) and ds.image_shape == (6, 5)
    assert load_idx_dataset(str(folder)).n_classes == 3


def test_folder_without_test_files_and_without_classes_txt(tmp_path):
    folder = tmp_path / "mine"
    write_folder(folder, n_test=0, n_classes=4, gz=False)
    ds = load_idx_dataset(folder)
    assert ds.test is None
    assert ds.classes == ["0", "1", "2", "3"]
    assert ds.pixel_max == 255.0


def test_folder_t10k_preferred_and_raw_preferred(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder)
    write_idx(folder / "test-images-idx3-ubyte", torch.zeros(1, 6, 5, dtype=torch.uint8))
    found = find_idx_files(folder)
    assert found["test_images"].name == "t10k-images-idx3-ubyte.gz"
    write_idx(folder / "t10k-images-idx3-ubyte", torch.zeros(6, 6, 5, dtype=torch.uint8))
    assert find_idx_files(folder)["test_images"].name == "t10k-images-idx3-ubyte"


def test_folder_missing_train_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        UserInputError, match=r"no train images in .*empty \(looked for train-images-idx3-ubyte"
    ):
        load_idx_dataset(tmp_path / "empty")


def test_folder_test_images_without_labels(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserInputError, match=r"has test images .* but no test labels"):
        load_idx_dataset(folder)


def test_folder_count_mismatch(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", torch.zeros(5, dtype=torch.uint8))
    with pytest.raises(UserInputError, match=r"the train split has 12 samples but 5 labels"):
        load_idx_dataset(folder)


def test_folder_labels_out_of_range_for_classes_txt(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder, n_classes=5)
    (folder / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(
        UserInputError, match=r"label 4 in the train split is out of range \[0, 2\]"
    ):
        load_idx_dataset(folder)


def test_folder_duplicate_class_names(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder, n_classes=2)
    (folder / "classes.txt").write_text("cat\ncat\n")
    with pytest.raises(UserInputError, match=r"lists class 'cat' twice"):
        load_idx_dataset(folder)


def test_folder_wrong_kinds_of_files(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder)
    write_idx(folder / "train-images-idx3-ubyte.gz", torch.zeros(12, 6, 5))
    with pytest.raises(UserInputError, match=r"holds float32 values; image files must hold uint8"):
        load_idx_dataset(folder)
    write_idx(folder / "train-images-idx3-ubyte.gz", torch.zeros(12, 30, dtype=torch.uint8))
    with pytest.raises(UserInputError, match=r"has shape \(12, 30\); an image file must have 3"):
        load_idx_dataset(folder)
    write_folder(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", torch.zeros(12, 2, dtype=torch.int32))
    with pytest.raises(UserInputError, match=r"a label file must have 1 dimension"):
        load_idx_dataset(folder)


def test_folder_corrupt_file_is_named(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder)
    p = folder / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:20])
    with pytest.raises(
        UserInputError, match=r"t10k-images-idx3-ubyte\.gz: the gzip data is truncated"
    ):
        load_idx_dataset(folder)


def test_path_is_a_file_or_unknown(tmp_path):
    folder = tmp_path / "f"
    write_folder(folder)
    with pytest.raises(UserInputError, match=r"is a file; give the folder that holds the IDX"):
        load_idx_dataset(folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(
        UserInputError,
        match=r"unknown dataset 'cifar-99': it is neither a known name \(mnist, fashion-mnist, "
        r"kmnist\) nor an existing folder",
    ):
        load_idx_dataset("cifar-99")


def test_aliases(tmp_path, monkeypatch):
    write_folder(tmp_path / "c" / "fashion-mnist")
    for alias in ("Fashion-MNIST", "fashion_mnist", "fmnist"):
        assert load_idx_dataset(alias, data_dir=tmp_path / "c").name == "fashion-mnist"


# ---------------------------------------------------------------------- status


def test_dataset_status(tmp_path):
    write_folder(tmp_path / "c" / "kmnist")
    rows = {r["name"]: r for r in dataset_status(tmp_path / "c")}
    assert set(rows) == {"mnist", "fashion-mnist", "kmnist"}
    assert rows["kmnist"]["available"] and rows["kmnist"]["path"] == str(tmp_path / "c" / "kmnist")
    assert rows["kmnist"]["location"] == str(tmp_path / "c" / "kmnist")
    assert rows["mnist"]["available"] is False and rows["mnist"]["path"] is None
    first_mirror = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert rows["mnist"]["location"] == f"download from {first_mirror}"
    assert all(r["classes"] == 10 for r in rows.values())


def test_registry_contents():
    assert DATASETS["mnist"].classes == [str(i) for i in range(10)]
    assert DATASETS["fashion-mnist"].classes == [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]
    assert DATASETS["kmnist"].classes == [
        "o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo",
    ]
    for info in DATASETS.values():
        assert sorted(info.md5) == sorted(STANDARD)
        assert all(len(h) == 32 and int(h, 16) >= 0 for h in info.md5.values())
        assert info.mirrors and all(m.endswith("/") for m in info.mirrors)
    assert DATASETS["mnist"].md5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"


# ------------------------------------------------------------- installed dataset

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's fashion-mnist is not installed")
def test_installed_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "SYSTEM_DATA_DIRS", {"fashion-mnist": [DEBIAN_FASHION]})
    ds = load_idx_dataset("fashion-mnist", data_dir=tmp_path / "empty-cache", download=False)
    assert ds.origin == str(DEBIAN_FASHION)
    assert ds.train.X.shape == (60000, 28, 28) and ds.train.X.dtype == torch.uint8
    assert ds.test.X.shape == (10000, 28, 28) and len(ds.test) == 10000
    for split in (ds.train, ds.test):
        assert split.y.dtype == torch.int64
        assert int(split.y.min()) == 0 and int(split.y.max()) == 9
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
