"""/openapi.json is a valid OpenAPI document, and every response it documents (path, method, status,
content type, schema) is what the server really sends: each one is produced here and checked."""

from __future__ import annotations

import base64
import gzip
import json
import threading

import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install 'softreg[serve]'")
httpx = pytest.importorskip("httpx", reason="the serving tests use httpx (the test extra)")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema comes with openapi-spec-validator (test extra)")

from softreg.inference.images import png_bytes  # noqa: E402

ROW = [1, 2, 1, 1]
V2 = {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
V2_BINARY = {**V2, "parameters": {"binary_data_output": True}}
BIG = b'{"instances": [[' + b"0, " * 200_000 + b"0]]}"  # over conftest's 512 KB limit
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PICTURE = base64.b64encode(png_bytes(__import__("torch").zeros(8, 8), 16.0)).decode()

# (method, documented path, status, concrete path, request keywords, which server)
CASES = [
    ("GET", "/", 200, "/", {}, "ready"),
    ("GET", "/", 200, "/", {"headers": BROWSER}, "ready"),
    ("GET", "/ui", 200, "/ui", {}, "ready"),
    ("GET", "/static/{file}", 200, "/static/page.css", {}, "ready"),
    ("GET", "/static/{file}", 200, "/static/page.js", {}, "ready"),
    ("GET", "/static/{file}", 404, "/static/app.py", {}, "ready"),
    ("GET", "/healthz", 200, "/healthz", {}, "ready"),
    ("GET", "/healthz", 503, "/healthz", {}, "loading"),
    ("GET", "/metrics", 200, "/metrics", {}, "ready"),
    ("GET", "/docs", 200, "/docs", {}, "ready"),
    ("GET", "/v1/models", 200, "/v1/models", {}, "ready"),
    ("GET", "/v1/models", 200, "/v1/models", {}, "loading"),
    ("GET", "/v1/models/{name}", 200, "/v1/models/shop", {}, "ready"),
    ("GET", "/v1/models/{name}", 404, "/v1/models/nope", {}, "ready"),
    ("GET", "/v1/models/{name}", 503, "/v1/models/table", {}, "loading"),
    ("GET", "/v1/models/{name}/versions/{version}", 200, "/v1/models/images/versions/1", {}, "ready"),
    ("GET", "/v1/models/{name}/versions/{version}", 404, "/v1/models/images/versions/2", {}, "ready"),
    ("GET", "/v1/models/{name}/versions/{version}", 503, "/v1/models/table/versions/1", {}, "loading"),
    ("GET", "/v1/models/{name}/metadata", 200, "/v1/models/images/metadata", {}, "ready"),
    ("GET", "/v1/models/{name}/metadata", 404, "/v1/models/nope/metadata", {}, "ready"),
    ("GET", "/v1/models/{name}/versions/{version}/metadata", 200, "/v1/models/sparse/versions/1/metadata", {},
     "ready"),
    ("GET", "/v1/models/{name}/versions/{version}/metadata", 404, "/v1/models/sparse/versions/9/metadata", {},
     "ready"),
    ("POST", "/v1/models/{name}:predict", 200, "/v1/models/table:predict", {"json": {"instances": [ROW]}}, "ready"),
    ("POST", "/v1/models/{name}:predict", 200, "/v1/models/images:predict",
     {"json": {"instances": [[0] * 784], "return_inputs": True}}, "ready"),
    ("POST", "/v1/models/{name}:predict", 200, "/v1/models/table:predict", {"json": {"inputs": {
        "x1": [1, 1], "x2": [2, 7], "x3": [1, 7], "x4": [1, 7]}}}, "ready"),
    ("POST", "/v1/models/{name}:predict", 400, "/v1/models/table:predict", {"content": b"[1"}, "ready"),
    ("POST", "/v1/models/{name}:predict", 404, "/v1/models/nope:predict", {"json": {"instances": [ROW]}}, "ready"),
    ("POST", "/v1/models/{name}:predict", 413, "/v1/models/table:predict", {"content": BIG}, "ready"),
    ("POST", "/v1/models/{name}:predict", 415, "/v1/models/table:predict",
     {"content": b"{}", "headers": {"Content-Encoding": "br"}}, "ready"),
    ("POST", "/v1/models/{name}:predict", 422, "/v1/models/table:predict", {"json": {"instances": [[1]]}}, "ready"),
    ("POST", "/v1/models/{name}:predict", 503, "/v1/models/table:predict", {"json": {"instances": [ROW]}}, "loading"),
    ("POST", "/v1/models/{name}/versions/{version}:predict", 200, "/v1/models/table/versions/1:predict",
     {"content": gzip.compress(json.dumps({"instances": [ROW]}).encode()), "headers": {"Content-Encoding": "gzip"}},
     "ready"),
    ("POST", "/v1/models/{name}/versions/{version}:predict", 400, "/v1/models/table/versions/1:predict",
     {"json": {"signature_name": "x", "instances": [ROW]}}, "ready"),
    ("POST", "/v1/models/{name}/versions/{version}:predict", 404, "/v1/models/table/versions/5:predict",
     {"json": {"instances": [ROW]}}, "ready"),
    ("POST", "/v1/models/{name}/versions/{version}:predict", 413, "/v1/models/table/versions/1:predict",
     {"content": BIG}, "ready"),
    ("POST", "/v1/models/{name}/versions/{version}:predict", 415, "/v1/models/table/versions/1:predict",
     {"content": b"{}", "headers": {"Content-Encoding": "zstd"}}, "ready"),
    ("POST", "/v1/models/{name}/versions/{version}:predict", 422, "/v1/models/table/versions/1:predict",
     {"json": {"instances": [{"b64": PICTURE}]}}, "ready"),
    ("POST", "/v1/models/{name}/versions/{version}:predict", 503, "/v1/models/table/versions/1:predict",
     {"json": {"instances": [ROW]}}, "loading"),
    ("GET", "/v1/models/{name}/weights", 200, "/v1/models/images/weights", {}, "ready"),
    ("GET", "/v1/models/{name}/weights", 404, "/v1/models/table/weights", {}, "ready"),
    ("GET", "/v1/models/{name}/weights", 503, "/v1/models/table/weights", {}, "loading"),
    ("GET", "/v1/models/{name}/samples/random", 200, "/v1/models/images/samples/random?seed=3", {}, "ready"),
    ("GET", "/v1/models/{name}/samples/random", 404, "/v1/models/nope/samples/random", {}, "ready"),
    ("GET", "/v1/models/{name}/samples/random", 422, "/v1/models/images/samples/random?seed=x", {}, "ready"),
    ("GET", "/v1/models/{name}/samples/random", 503, "/v1/models/table/samples/random", {}, "loading"),
    ("GET", "/v2", 200, "/v2", {}, "ready"),
    ("GET", "/v2/health/live", 200, "/v2/health/live", {}, "loading"),
    ("GET", "/v2/health/ready", 200, "/v2/health/ready", {}, "ready"),
    ("GET", "/v2/health/ready", 503, "/v2/health/ready", {}, "loading"),
    ("GET", "/v2/models/{name}", 200, "/v2/models/shop", {}, "ready"),
    ("GET", "/v2/models/{name}", 200, "/v2/models/table", {}, "loading"),
    ("GET", "/v2/models/{name}", 404, "/v2/models/nope", {}, "ready"),
    ("GET", "/v2/models/{name}/versions/{version}", 200, "/v2/models/mlp/versions/1", {}, "ready"),
    ("GET", "/v2/models/{name}/versions/{version}", 404, "/v2/models/mlp/versions/0", {}, "ready"),
    ("GET", "/v2/models/{name}/ready", 200, "/v2/models/mlp/ready", {}, "ready"),
    ("GET", "/v2/models/{name}/ready", 404, "/v2/models/nope/ready", {}, "ready"),
    ("GET", "/v2/models/{name}/ready", 503, "/v2/models/table/ready", {}, "loading"),
    ("GET", "/v2/models/{name}/versions/{version}/ready", 200, "/v2/models/mlp/versions/1/ready", {}, "ready"),
    ("GET", "/v2/models/{name}/versions/{version}/ready", 404, "/v2/models/mlp/versions/2/ready", {}, "ready"),
    ("GET", "/v2/models/{name}/versions/{version}/ready", 503, "/v2/models/table/versions/1/ready", {}, "loading"),
    ("POST", "/v2/models/{name}/infer", 200, "/v2/models/table/infer", {"json": {**V2, "id": "a"}}, "ready"),
    ("POST", "/v2/models/{name}/infer", 200, "/v2/models/table/infer", {"json": V2_BINARY}, "ready"),
    ("POST", "/v2/models/{name}/infer", 200, "/v2/models/images/infer", {"json": {"inputs": [{
        "name": "features", "shape": [1, 784], "datatype": "UINT8", "data": [0] * 784}]}}, "ready"),
    ("POST", "/v2/models/{name}/infer", 400, "/v2/models/table/infer", {"json": {"inputs": []}}, "ready"),
    ("POST", "/v2/models/{name}/infer", 404, "/v2/models/nope/infer", {"json": V2}, "ready"),
    ("POST", "/v2/models/{name}/infer", 413, "/v2/models/table/infer", {"content": BIG}, "ready"),
    ("POST", "/v2/models/{name}/infer", 415, "/v2/models/table/infer",
     {"content": b"{}", "headers": {"Content-Encoding": "compress"}}, "ready"),
    ("POST", "/v2/models/{name}/infer", 503, "/v2/models/table/infer", {"json": V2}, "loading"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", 200, "/v2/models/table/versions/1/infer", {"json": V2},
     "ready"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", 200, "/v2/models/table/versions/1/infer",
     {"json": V2_BINARY}, "ready"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", 400, "/v2/models/table/versions/1/infer",
     {"content": b"nope"}, "ready"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", 404, "/v2/models/table/versions/7/infer", {"json": V2},
     "ready"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", 413, "/v2/models/table/versions/1/infer",
     {"content": BIG}, "ready"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", 415, "/v2/models/table/versions/1/infer",
     {"content": b"{}", "headers": {"Content-Encoding": "br"}}, "ready"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", 503, "/v2/models/table/versions/1/infer", {"json": V2},
     "loading"),
]


@pytest.fixture(scope="module")
def loading(runs):
    """A server whose model (the toy table) never finishes loading while the tests run."""
    from softreg.inference.predictor import Predictor
    from softreg.serve.app import create_app
    from softreg.serve.server import bind, make_server, url_of

    release = threading.Event()
    predictor = Predictor.from_run(runs["table"])
    predictor.warm_up = lambda: release.wait(60)  # readiness stays false until the test lets go
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app([predictor]), 5.0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(3000):
        if server.started:
            break
        threading.Event().wait(0.01)
    yield url_of(sock).rstrip("/"), release
    release.set()
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def document(server) -> dict:
    return httpx.get(server.url + "/openapi.json", timeout=30).json()


def test_the_document_is_valid_openapi(document):
    from openapi_spec_validator import validate

    validate(document)
    assert document["openapi"].startswith("3.")
    text = json.dumps(document)
    assert "HTTPValidationError" not in text and '"detail"' not in text  # FastAPI's shape, never sent here


def test_every_documented_response_is_produced_below(document):
    documented = {(m.upper(), p, int(c)) for p, ms in document["paths"].items() for m, op in ms.items()
                  for c in op["responses"]}
    covered = {(m, p, c) for m, p, c, *_ in CASES}
    assert documented == covered, (documented - covered, covered - documented)


def _schema_of(document: dict, method: str, path: str, status: int, content_type: str) -> dict:
    content = document["paths"][path][method.lower()]["responses"][str(status)].get("content", {})
    assert content_type in content, f"{method} {path} {status} answered {content_type}; documented {list(content)}"
    return {**content[content_type].get("schema", {}), "components": document["components"]}


@pytest.mark.parametrize("case", CASES, ids=[f"{m} {u} {c} {w}" for m, _, c, u, _, w in CASES])
def test_a_real_response_matches_its_documentation(document, server, loading, case):
    method, path, status, url, kwargs, which = case
    base = server.url if which == "ready" else loading[0]
    response = httpx.request(method, base + url, timeout=30, **kwargs)
    assert response.status_code == status, response.text
    content_type = response.headers["content-type"].split(";")[0].strip()
    schema = _schema_of(document, method, path, status, content_type)
    if content_type == "application/json":
        body = response.json()
    elif content_type == "application/octet-stream":  # the JSON object, then the binary outputs
        length = int(response.headers["inference-header-content-length"])
        body = json.loads(response.content[:length])
        schema = _schema_of(document, method, path, status, "application/json")
        sizes = sum(o["parameters"]["binary_data_size"] for o in body["outputs"])
        assert len(response.content) == length + sizes
    else:
        body = response.text
        assert body
    jsonschema.Draft202012Validator(schema).validate(body)
