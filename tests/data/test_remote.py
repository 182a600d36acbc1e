"""Tables read from object storage and web servers: a real S3-compatible server (moto's standalone
server) and Python's http.server, both started here on 127.0.0.1, against the same files on disk."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_user_error, run_subprocess
from softreg.data.source import DataSource, open_data
from softreg.errors import UserInputError
from softreg.system import storage

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")
pd = pytest.importorskip("pandas")

BUCKET = "tables"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc=None, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def _table(n: int = 240, seed: int = 0) -> "pd.DataFrame":
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + y[:, None]
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["colour"] = np.array(["red", "green", "blue"])[rng.integers(0, 3, n)]
    df["species"] = np.array(["x", "y", "z"])[y]
    return df


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("remote-files")
    df = _table()
    df.to_csv(root / "one.csv", index=False)
    df.to_parquet(root / "one.parquet", index=False, row_group_size=50)
    (root / "shards").mkdir()
    for i in range(3):
        df.iloc[i::3].to_parquet(root / "shards" / f"part-{i}.parquet", index=False)
    (root / "shards" / "_SUCCESS").write_text("")
    (root / "notes.json").write_text("{}")
    _table(60, seed=1).to_csv(root / "test.csv", index=False)
    return root


@pytest.fixture(scope="module")
def s3(files):
    """The endpoint of a moto S3 server holding ``files`` under s3://tables/."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        for f in files.rglob("*"):
            if f.is_file():
                client.upload_file(str(f), BUCKET, str(f.relative_to(files)))
        for name in ("one.csv", "one.parquet"):  # readable over plain HTTP, where S3 takes range requests
            client.upload_file(str(files / name), BUCKET, f"public/{name}", ExtraArgs={"ACL": "public-read"})
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def aws(s3, monkeypatch):
    for k, v in {**KEYS, "AWS_ENDPOINT_URL": s3}.items():
        monkeypatch.setenv(k, v)
    return {**KEYS, "AWS_ENDPOINT_URL": s3}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web(files):
    """http://127.0.0.1:PORT serving ``files`` with Python's http.server (no range requests)."""
    handler = lambda *a, **k: _Quiet(*a, directory=str(files), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _same(a, b) -> None:
    assert a.classes == b.classes and a.feature_names == b.feature_names
    for split in ("train", "test"):
        x, y = getattr(a, split), getattr(b, split)
        assert torch.equal(x.X, y.X) and torch.equal(x.y, y.y)


def _stream_rows(data) -> tuple[np.ndarray, np.ndarray]:
    """Every training row of a streamed dataset, in row order (the pieces' order is shuffled)."""
    xs, ys = [], []
    for batch in data.train.chunks(64):
        xs.append(batch.X.numpy())
        ys.append(batch.y.numpy())
    X, y = np.concatenate(xs), np.concatenate(ys)
    order = np.lexsort(X.T[::-1])
    return X[order], y[order]


@pytest.mark.parametrize("name", ["one.csv", "one.parquet", "shards"])
def test_a_table_in_s3_reads_as_the_same_file_on_disk(files, aws, name):
    remote = open_data(DataSource(spec=f"s3://{BUCKET}/{name}"))
    local = open_data(DataSource(spec=str(files / name)))
    _same(remote, local)
    assert remote.origin == f"s3://{BUCKET}/{name}" and remote.name == name


@pytest.mark.parametrize("name", ["one.csv", "one.parquet", "shards/"])
def test_streaming_a_table_from_s3_gives_the_rows_on_disk(files, aws, name):
    remote = open_data(DataSource(spec=f"s3://{BUCKET}/{name}", stream=True))
    local = open_data(DataSource(spec=str(files / name), stream=True))
    assert remote.classes == local.classes
    a, b = remote.preprocess.state_dict(), local.preprocess.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for a, b in zip(_stream_rows(remote), _stream_rows(local)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["one.csv", "one.parquet"])
def test_a_table_on_a_web_server_reads_as_the_same_file_on_disk(files, web, name):
    _same(open_data(DataSource(spec=f"{web}/{name}")), open_data(DataSource(spec=str(files / name))))
    _same(open_data(DataSource(spec=f"file://{files / name}")), open_data(DataSource(spec=str(files / name))))


@pytest.mark.parametrize("name", ["one.csv", "one.parquet"])
def test_a_web_server_that_takes_ranges_is_read_in_ranges(files, s3, monkeypatch, name):
    """moto serves public objects over plain HTTP with Accept-Ranges: the ranged reader reads the
    file on disk."""
    from softreg.system import http_files

    ranges = []
    request = http_files._request

    def spy(url, method="GET", headers=None, **kwargs):
        if headers and "Range" in headers:
            ranges.append(headers["Range"])
        return request(url, method, headers, **kwargs)

    monkeypatch.setattr(http_files, "_request", spy)
    monkeypatch.setattr(storage, "_FILE_SYSTEMS", {})
    _same(open_data(DataSource(spec=f"{s3}/{BUCKET}/public/{name}")), open_data(DataSource(spec=str(files / name))))
    assert bool(ranges) == name.endswith(".parquet")  # CSV is read as one stream; Parquet by ranges


def test_a_streamed_parquet_file_parses_its_footer_once_a_pass(files, monkeypatch):
    """Opening the file for every row group made a pass quadratic in a large file's size."""
    import pyarrow.parquet as pq

    from softreg.data.tables import reader

    opened = []

    class Counted(pq.ParquetFile):
        def __init__(self, *args, **kwargs):
            opened.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pq, "ParquetFile", Counted)
    assert reader.TableReader(files / "one.parquet").fragments().__len__() == 5  # 240 rows in groups of 50
    data = open_data(DataSource(spec=str(files / "one.parquet"), stream=True))
    before = len(opened)
    assert sum(len(b.y) for b in data.train.chunks(32)) == len(data.train)
    assert len(opened) - before <= 1


def test_train_evaluate_and_predict_a_run_whose_data_is_in_s3(files, aws, tmp_path, run_cli):
    import json

    from safetensors.torch import load_file

    remote, local = tmp_path / "remote", tmp_path / "local"
    result = run_cli("train", "--data", f"s3://{BUCKET}/one.csv", "--test", f"s3://{BUCKET}/test.csv", "--out", remote)
    assert result[0] == 0, result[2]
    assert run_cli("train", "--data", files / "one.csv", "--test", files / "test.csv", "--out", local)[0] == 0
    a, b = load_file(remote / "model.safetensors"), load_file(local / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    source = json.loads((remote / "config.json").read_text())["data"]["source"]
    assert source["spec"] == f"s3://{BUCKET}/one.csv" and source["test"] == f"s3://{BUCKET}/test.csv"
    evaluated = run_cli("evaluate", remote)
    assert evaluated[0] == 0, evaluated[2]
    assert evaluated[1].split("\n")[1] == run_cli("evaluate", local)[1].split("\n")[1]
    assert run_cli("predict", remote, f"s3://{BUCKET}/test.csv", "--out", tmp_path / "p.csv")[0] == 0
    assert run_cli("predict", local, files / "test.csv", "--out", tmp_path / "q.csv")[0] == 0
    assert (tmp_path / "p.csv").read_text() == (tmp_path / "q.csv").read_text()


def test_a_streamed_s3_shard_folder_trains_the_model_of_the_folder_on_disk(files, aws, tmp_path, run_cli):
    from safetensors.torch import load_file

    for name, spec in (("remote", f"s3://{BUCKET}/shards"), ("local", files / "shards")):
        result = run_cli("train", "--data", spec, "--stream", "--epochs", "3", "--out", tmp_path / name)
        assert result[0] == 0, result[2]
    a, b = load_file(tmp_path / "remote" / "model.safetensors"), load_file(tmp_path / "local" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert run_cli("evaluate", tmp_path / "remote")[0] == 0


@pytest.mark.parametrize("spec, words", [
    ("s3://tables/missing.csv", ["s3://tables/missing.csv", "no such file", "bucket and key"]),
    ("s3://tables/missing", ["--data s3://tables/missing", "no such file", "bucket and key"]),
    ("s3://no-such-bucket/one.csv", ["s3://no-such-bucket/one.csv", "no such file"]),
    ("s3:///one.csv", ["names no bucket", "s3://BUCKET/KEY"]),
    ("nosuch://x/one.csv", ["unknown URL scheme nosuch://"]),
    ("s3://tables/data.svm", ["svmlight files are read from local disk"]),
    ("s3://tables/notes.json", ["unsupported file type .json"]),
])
def test_a_bad_url_is_one_line_naming_it(aws, run_cli, tmp_path, spec, words):
    result = run_cli("train", "--data", spec, "--out", tmp_path / "r")
    assert_user_error(result[0], result[2], *words)
    assert not (tmp_path / "r").exists()


def test_a_bad_test_url_names_test(aws, run_cli, tmp_path, files):
    result = run_cli("train", "--data", files / "one.csv", "--test", "s3:///t.csv", "--out", tmp_path / "r")
    assert_user_error(result[0], result[2], "names no bucket")
    result = run_cli("train", "--data", files / "one.csv", "--test", "s3://tables/nope.data", "--out", tmp_path / "r")
    assert_user_error(result[0], result[2], "--test s3://tables/nope.data")


def test_web_server_failures_are_one_line(web, run_cli, tmp_path):
    result = run_cli("train", "--data", f"{web}/missing.csv", "--out", tmp_path / "r")
    assert_user_error(result[0], result[2], f"{web}/missing.csv", "no such file")
    result = run_cli("train", "--data", f"{web}/shards/", "--out", tmp_path / "r")
    assert_user_error(result[0], result[2], "single files")


def test_a_refused_connection_is_one_line_and_quick(run_cli, tmp_path):
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    result = run_cli("train", "--data", f"http://127.0.0.1:{port}/t.csv", "--out", tmp_path / "r")
    assert_user_error(result[0], result[2], f"http://127.0.0.1:{port}/t.csv", "cannot connect")
    assert time.monotonic() - start < 30


def test_a_server_that_never_answers_times_out(monkeypatch):
    """A listening socket that accepts and stays silent: bounded by the request timeout, not a hang."""
    monkeypatch.setattr(storage, "REQUEST_TIMEOUT", 0.5)
    monkeypatch.setattr(storage, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(storage, "ATTEMPTS", 2)
    monkeypatch.setattr(storage, "_FILE_SYSTEMS", {})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/t.csv"
        start = time.monotonic()
        with pytest.raises(UserInputError, match="did not answer in time"):
            open_data(DataSource(spec=url))
        assert time.monotonic() - start < 10


def test_transient_server_errors_are_retried(files, monkeypatch):
    """A server answering 503 to the first two requests: the read succeeds, as from disk."""
    failures = {"left": 2}

    class Flaky(_Quiet):
        def do_GET(self):
            if failures["left"] > 0:
                failures["left"] -= 1
                self.send_error(503, "busy")
                return
            super().do_GET()

        do_HEAD = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: Flaky(*a, directory=str(files), **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/one.csv"
        _same(open_data(DataSource(spec=url)), open_data(DataSource(spec=str(files / "one.csv"))))
        assert failures["left"] == 0
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_no_credentials_and_an_unreachable_store_are_one_line(s3, tmp_path):
    env = {"AWS_ENDPOINT_URL": s3, "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path),
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = run_subprocess("train", "--data", f"s3://{BUCKET}/one.csv", "--out", tmp_path / "r", env_extra=env)
    assert_user_error(result.returncode, result.stderr, f"s3://{BUCKET}/one.csv", "no AWS credentials")
    env = {**KEYS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"}
    result = run_subprocess("train", "--data", f"s3://{BUCKET}/one.csv", "--out", tmp_path / "r", env_extra=env)
    assert_user_error(result.returncode, result.stderr, f"s3://{BUCKET}/one.csv", "cannot connect", "AWS_ENDPOINT_URL")
