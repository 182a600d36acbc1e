"""softreg serve: every endpoint and bad request against a real server on 127.0.0.1, and the command."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from helpers import assert_user_error

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install 'softreg[serve]'")
httpx = pytest.importorskip("httpx", reason="the serving tests use httpx (the test extra)")

from softreg.data import load_dataset  # noqa: E402
from softreg.inference.images import png_bytes  # noqa: E402
from softreg.serve.app import create_app  # noqa: E402
from softreg.serve.batching import MicroBatcher  # noqa: E402
from softreg.serve.server import BackgroundServer  # noqa: E402

N_TEST = 1000  # test images of the runs in conftest.py
BODY_LIMIT = 512 * 1024  # the body limit of conftest.py's server


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def predict(client, name: str, instances, **extra) -> httpx.Response:
    return client.post(f"/v1/models/{name}:predict", json={"instances": instances, **extra})


# ------------------------------------------------------------------ endpoints


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "models": ["images", "mlp", "shop", "sparse", "table"]}


def test_model_status_is_the_predictors_description(client, predictors):
    for name, predictor in predictors.items():
        doc = client.get(f"/v1/models/{name}").json()
        assert doc == predictor.describe()
        assert doc["name"] == name and doc["ready"] is True and doc["classes"] == predictor.classes
    assert client.get("/v1/models/images").json()["image_shape"] == [28, 28]
    assert client.get("/v1/models/images").json()["test_samples"] == N_TEST
    assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["images", "mlp", "shop", "sparse", "table"]


def test_a_thousand_test_images_as_feature_lists_score_as_the_library(client, predictors, test_images):
    X = test_images.reshape(N_TEST, -1).float()
    expected = predictors["images"].predict_proba(X)
    got = []
    for start in range(0, N_TEST, 100):
        response = predict(client, "images", X[start : start + 100].int().tolist())
        assert response.status_code == 200, response.text
        got += response.json()["predictions"]
    assert len(got) == N_TEST
    assert torch.allclose(torch.tensor([p["probabilities"] for p in got], dtype=expected.dtype), expected, atol=1e-6)
    assert [p["label"] for p in got] == [predictors["images"].classes[i] for i in expected.argmax(1).tolist()]


def test_a_thousand_test_images_as_png_bytes_score_as_the_library(client, predictors, test_images):
    X = test_images.reshape(N_TEST, -1).float()
    expected = predictors["images"].predict_proba(X)
    got = []
    for start in range(0, N_TEST, 100):
        instances = [{"b64": base64.b64encode(png_bytes(img.float(), 255.0)).decode()}
                     for img in test_images[start : start + 100]]
        response = predict(client, "images", instances)
        assert response.status_code == 200, response.text
        got += response.json()["predictions"]
    assert torch.allclose(torch.tensor([p["probabilities"] for p in got], dtype=expected.dtype), expected, atol=1e-6)
    assert [p["label"] for p in got] == [predictors["images"].classes[i] for i in expected.argmax(1).tolist()]


def test_mixed_instances_and_returned_inputs(client, predictors, test_images):
    row = test_images[0].reshape(-1).int().tolist()
    picture = {"b64": base64.b64encode(png_bytes(test_images[1].float(), 255.0)).decode()}
    response = predict(client, "images", [row, picture], return_inputs=True)
    assert response.status_code == 200
    got = response.json()["predictions"]
    assert got[0]["input"] == [float(v) for v in row]
    assert got[1]["input"] == test_images[1].reshape(-1).float().tolist()
    expected = predictors["images"].predict_proba(test_images[:2].reshape(2, -1).float())
    assert torch.allclose(torch.tensor([p["probabilities"] for p in got], dtype=expected.dtype), expected, atol=1e-6)


def test_a_large_drawing_is_brought_to_the_convention(client, predictors):
    drawing = torch.zeros(300, 300)
    drawing[40:260, 100:200] = 255.0
    response = predict(client, "images", [{"b64": base64.b64encode(png_bytes(drawing, 255.0)).decode()}],
                       return_inputs=True)
    seen = torch.tensor(response.json()["predictions"][0]["input"]).reshape(28, 28)
    prepared = predictors["images"].prepare_image(png_bytes(drawing, 255.0)).pixels
    assert torch.allclose(seen, prepared, atol=1e-3)
    rows = torch.nonzero(seen.amax(dim=1) > 127)
    assert int(rows.max() - rows.min()) + 1 == 20  # the 20-pixel box of MNIST


def test_table_rows_by_position_and_by_name(client, predictors):
    rows = [[1, 2, 1, 1], {"x1": 1, "x2": 7, "x3": 7, "x4": 7}]
    got = predict(client, "table", rows).json()["predictions"]
    expected = predictors["table"].predict_proba(torch.tensor([[1.0, 2, 1, 1], [1, 7, 7, 7]]))
    assert torch.allclose(torch.tensor([p["probabilities"] for p in got], dtype=expected.dtype), expected, atol=1e-6)


def test_sparse_rows_as_text_and_mappings(client, predictors):
    """A svmlight model takes "index:value" text or {index: value} (numbered as in its file), kept sparse."""
    rows = ["1:0.9 2:0.1 3:0.2 40:1.5", {"2": 0.8, "3": 0.1, "499": 1.0}, "3:1"]
    got = predict(client, "sparse", rows, return_inputs=True).json()["predictions"]
    expected = predictors["sparse"].predict_proba(predictors["sparse"].encode_rows(rows))
    assert torch.allclose(torch.tensor([p["probabilities"] for p in got], dtype=expected.dtype), expected, atol=1e-6)
    assert [p["label"] for p in got][:2] == ["1", "2"]
    assert got[1]["input"] == {"2": 0.8, "3": 0.1, "499": 1.0}
    for bad, words in ((["7:1 600:2"], "outside the model's features"), ([[0.5] * 500], "index:value"),
                       ([{"b64": "AAAA"}], "not images")):
        response = predict(client, "sparse", bad)
        assert response.status_code == 422 and words in response.json()["error"], response.text


def test_concurrent_sparse_requests_are_batched_correctly(server, predictors):
    rows = [f"{1 + i % 3}:{1 + i % 5} {10 + i}:0.5" for i in range(40)]
    expected = predictors["sparse"].predict_proba(predictors["sparse"].encode_rows(rows))

    def one(i: int) -> list:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return predict(c, "sparse", [rows[i]]).json()["predictions"][0]["probabilities"]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(len(rows))))
    assert torch.allclose(torch.tensor(got, dtype=expected.dtype), expected, atol=1e-6)


def test_empty_and_far_inputs_carry_warnings(client):
    got = predict(client, "images", [[0] * 784, [255] * 784]).json()["predictions"]
    assert "empty" in got[0]["warnings"][0]
    assert "far from the training images" in got[1]["warnings"][0]


def test_weights_and_random_samples(client, predictors, test_images):
    from softreg.models.classifier import weight_templates

    doc = client.get("/v1/models/images/weights").json()
    expected = weight_templates(predictors["images"].model, (28, 28)).float()
    assert doc["shape"] == [28, 28] and doc["titles"] == predictors["images"].classes
    assert torch.allclose(torch.tensor(doc["templates"]).reshape(expected.shape), expected, atol=1e-4)
    assert client.get("/v1/models/table/weights").status_code == 404
    first = client.get("/v1/models/images/samples/random", params={"seed": 5}).json()
    assert first == client.get("/v1/models/images/samples/random", params={"seed": 5}).json()
    i = first["index"]
    assert first["instance"] == test_images[i].reshape(-1).float().tolist()
    split = load_dataset(str(predictors["images"].run.data["source"]["spec"])).test
    assert first["label"] == predictors["images"].classes[int(split.y[i])]


def test_metrics_count_requests_and_instances(client):
    def value(text: str, prefix: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    ok = 'softreg_requests_total{route="/v1/models/{name}:predict",method="POST",code="200"}'
    bad = 'softreg_requests_total{route="/v1/models/{name}:predict",method="POST",code="422"}'
    instances = 'softreg_instances_total{model="images"}'
    before = client.get("/metrics").text
    predict(client, "images", [[0] * 784] * 3)
    predict(client, "images", [[0] * 5])
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert value(after.text, ok) == value(before, ok) + 1
    assert value(after.text, bad) == value(before, bad) + 1
    assert value(after.text, instances) == value(before, instances) + 3
    assert "softreg_request_duration_seconds_bucket{" in after.text
    assert "softreg_batch_rows_count{" in after.text


def test_docs_and_openapi_work_offline(client):
    schema = client.get("/openapi.json").json()
    assert "requestBody" in schema["paths"]["/v1/models/{name}:predict"]["post"]
    page = client.get("/docs")
    assert page.status_code == 200 and "/v1/models/{name}:predict" in page.text
    assert "http" not in page.text.replace("http-equiv", "").split("<body", 1)[0]  # nothing from elsewhere


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize("accept, page", [(BROWSER_ACCEPT, True), ("text/html", True), ("*/*", False),
                                          ("application/json", False), ("", False),
                                          ("application/json, text/html;q=0.5", False),
                                          ("text/html;q=0, */*", False)])
def test_root_is_the_page_for_browsers_and_liveness_for_the_rest(client, accept, page):
    response = client.get("/", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200 and response.headers["vary"] == "Accept"
    if page:
        assert response.headers["content-type"].startswith("text/html") and "<canvas" in response.text
    else:
        assert response.json() == {"status": "alive"}


def test_the_page_and_only_its_files(client):
    for path, headers in (("/", {"Accept": BROWSER_ACCEPT}), ("/ui", {})):
        page = client.get(path, headers=headers)
        assert page.status_code == 200 and "<canvas" in page.text
    page = client.get("/ui")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text and "http://" not in page.text  # no CDN
    for path in ("/static/page.js", "/static/page.css"):
        response = client.get(path)
        assert response.status_code == 200 and "https://" not in response.text
    for path in ("/static/app.py", "/static/../app.py", "/static/%2e%2e/app.py", "/static/index.html/..",
                 "/etc/passwd", "/static/", "/../pyproject.toml"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "error" in response.json()


# ------------------------------------------------------------------ bad requests


BAD_REQUESTS = {
    "malformed-json": ("images", b'{"instances": [[1, 2', 400, "not valid JSON"),
    "not-an-object": ("images", b"[[1, 2, 3]]", 400, "must be a JSON object"),
    "no-instances": ("images", b'{"rows": [[1]]}', 400, "exactly one of \"instances\""),
    "both-forms": ("images", b'{"instances": [[1]], "inputs": [[1]]}', 400, "exactly one of"),
    "signature": ("table", b'{"signature_name": "other", "instances": [[1, 2, 1, 1]]}', 400,
                  "signature_name 'other' is not a signature"),
    "columns-unknown": ("table", b'{"inputs": {"x1": [1], "size": [2]}}', 422, "unknown column(s) ['size']"),
    "columns-uneven": ("table", b'{"inputs": {"x1": [1, 2], "x2": [2], "x3": [1], "x4": [1]}}', 422,
                       "different lengths"),
    "columns-unnamed": ("images", b'{"inputs": {"a": [1]}}', 422, "have no names"),
    "image-not-only-b64": ("images", b'{"instances": [{"b64": "AAAA", "x": 1}]}', 422, "an image instance is"),
    "instances-not-a-list": ("images", b'{"instances": 5}', 422, "non-empty list"),
    "empty-instances": ("images", b'{"instances": []}', 422, "non-empty list"),
    "wrong-feature-count": ("images", b'{"instances": [[1, 2, 3]]}', 422, "instance 0 has 3 values but the model expects 784"),
    "nan": ("table", b'{"instances": [[1, NaN, 3, 4]]}', 422, "NaN"),
    "infinity": ("table", b'{"instances": [[1, 2, -Infinity, 4]]}', 422, "-Infinity"),
    "text-value": ("table", b'{"instances": [[1, "two", 3, 4]]}', 422, "instance 0 has 'two' at position 1"),
    "pixel-out-of-range": ("images", json.dumps({"instances": [[300] + [0] * 783]}).encode(), 422,
                           "pixel value 300 at position 0"),
    "undecodable-image": ("images", b'{"instances": [{"b64": "aGVsbG8gd29ybGQ="}]}', 422,
                          "instance 0: image: not a readable image"),
    "bad-base64": ("images", b'{"instances": [{"b64": "***"}]}', 422, "not valid base64"),
    "image-to-a-table": ("table", json.dumps({"instances": [{"b64": base64.b64encode(
        png_bytes(torch.zeros(8, 8), 16.0)).decode()}]}).encode(), 422, "trained on a table"),
    "unknown-feature-name": ("table", b'{"instances": [{"x1": 1, "x2": 2, "x3": 3, "size": 4}]}', 422,
                             "unknown ['size']"),
    "unknown-model": ("nope", b'{"instances": [[1]]}', 404, "no model named 'nope'"),
    "over-the-limit": ("images", b'{"instances": [[' + b"0, " * (BODY_LIMIT // 3) + b'0]]}', 413,
                       f"over the limit of {BODY_LIMIT}"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_json_error(client, case):
    name, body, status, words = BAD_REQUESTS[case]
    response = client.post(f"/v1/models/{name}:predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"]


def test_a_streamed_body_over_the_limit_is_cut_off(client):
    def chunks():
        yield b'{"instances": [['
        for _ in range(BODY_LIMIT // 1000 + 10):
            yield b"0, " * 333 + b" "
        yield b"0]]}"

    response = client.post("/v1/models/images:predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "over the limit" in response.json()["error"]


@pytest.mark.parametrize("method, path, status", [("GET", "/v1/models/nope", 404), ("GET", "/nothing", 404),
                                                  ("GET", "/v1/models/images:predict", 404),
                                                  ("DELETE", "/v1/models/images", 405),
                                                  ("GET", "/v1/models/nope/weights", 404)])
def test_unknown_routes_and_methods(client, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status and response.json()["error"]


# ------------------------------------------------------------------ load and batching


@pytest.mark.slow
def test_a_thousand_requests_from_eight_threads(server, predictors, test_images):
    X = test_images.reshape(N_TEST, -1).float()
    expected = predictors["images"].predict_proba(X)
    errors, results = [], {}

    def worker(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for i in range(k, N_TEST, 8):
                response = predict(c, "images", [X[i].int().tolist()])
                if response.status_code != 200:
                    errors.append(response.text)
                else:
                    results[i] = response.json()["predictions"][0]["probabilities"]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == N_TEST
    assert torch.allclose(torch.tensor([results[i] for i in range(N_TEST)]), expected, atol=1e-6)


def test_batching_off_gives_the_same_answers(predictors, test_images):
    app = create_app([predictors["images"]], batching=False)
    with BackgroundServer(app) as running, httpx.Client(base_url=running.url, timeout=30) as c:
        rows = test_images[:20].reshape(20, -1).int().tolist()
        got = predict(c, "images", rows).json()["predictions"]
    expected = predictors["images"].predict_proba(test_images[:20].reshape(20, -1).float())
    assert torch.allclose(torch.tensor([p["probabilities"] for p in got], dtype=expected.dtype), expected, atol=1e-6)


def test_micro_batcher_scores_concurrent_requests_together(predictors):
    import time

    predictor, calls = predictors["table"], []

    def score(X: torch.Tensor, notes):
        calls.append(X.shape[0])
        time.sleep(0.05)  # while this batch is scored, the others queue up
        return predictor.score(X, notes)

    blocks = [torch.rand(i + 1, 4) * 7 for i in range(6)]
    notes = [[[f"request {i} row {j}"] for j in range(i + 1)] for i in range(6)]

    async def main():
        batcher = MicroBatcher(score, max_wait=0.0)
        results = await asyncio.gather(*(batcher.submit(b, n) for b, n in zip(blocks, notes)))
        await batcher.close()
        return results

    results = asyncio.run(main())
    for block, note, got in zip(blocks, notes, results):
        alone = predictor.score(block, note)
        assert torch.allclose(got.probabilities, alone.probabilities, atol=1e-6)
        assert got.labels == alone.labels and got.warnings == note and torch.equal(got.indices, alone.indices)
    assert sum(calls) == 21 and len(calls) < 6  # fewer calls than requests


# ------------------------------------------------------------------ the command


@pytest.mark.slow
def test_serve_command_binds_loopback_and_stops_on_ctrl_c(runs):
    proc = subprocess.Popen([sys.executable, "-m", "softreg", "serve", str(runs["images"]), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving images at http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        for _ in range(300):  # the models load in the background: "loading" (503) until then
            health = httpx.get(url + "healthz", timeout=10)
            if health.json()["status"] == "ok":
                break
            assert health.status_code == 503
            time.sleep(0.1)
        assert health.status_code == 200
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert proc.returncode == 130 and err.strip() == "softreg: interrupted", err  # the Ctrl-C contract


def test_serve_mistakes_exit_2(run_cli, runs, tmp_path):
    import shutil

    code, _, err = run_cli("serve", tmp_path / "missing")
    assert_user_error(code, err, "no such run folder")
    twin = tmp_path / "a" / "images"
    shutil.copytree(runs["images"], twin)
    code, _, err = run_cli("serve", runs["images"], twin)
    assert_user_error(code, err, "two runs are named 'images'", "rename one")
    code, _, err = run_cli("serve", runs["images"], "--max-body-mb", "0")
    assert_user_error(code, err, "--max-body-mb must be in (0, 1024]", "got 0.0")
    code, _, err = run_cli("serve", runs["images"], "--port", "70000")
    assert_user_error(code, err, "--port must be in [0, 65535]", "got 70000")
    code, _, err = run_cli("serve", runs["images"], "--workers", "0")
    assert_user_error(code, err, "--workers must be in [1, 64]", "got 0")
    code, _, err = run_cli("serve", runs["images"], "--drain-seconds", "-1")
    assert_user_error(code, err, "--drain-seconds must be in [0, 3600]", "got -1.0")


def test_serve_port_in_use(run_cli, runs):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, _, err = run_cli("serve", runs["images"], "--port", port)
    assert_user_error(code, err, f"cannot listen on 127.0.0.1:{port}", "pick another --port")


def test_serve_without_the_extra_names_the_fix(run_cli, runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now fails
    code, _, err = run_cli("serve", runs["images"])
    assert_user_error(code, err, "uvicorn is not installed", "pip install 'softreg[serve]'")
