"""The Open Inference Protocol (v2) and KServe v1 as the real clients speak them: Triton's tritonclient
and the KServe SDK against a real server, their answers held to ``Predictor`` on the same inputs."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install 'softreg[serve]'")
httpx = pytest.importorskip("httpx", reason="the serving tests use httpx (the test extra)")

from softreg.inference.images import png_bytes  # noqa: E402

MODELS = ("images", "mlp", "shop")  # a linear image model, an MLP, a table with text columns


def triton(server):
    http = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is a test dependency")
    return http, http.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)


def inputs_of(name: str, predictors, test_images) -> tuple[np.ndarray | list, torch.Tensor]:
    """(what a client sends as the input tensor, the Predictor's Scores of the same rows)."""
    predictor = predictors[name]
    if name == "shop":
        rows = [{"colour": c, "size": s, "shape": h} for c, s, h in
                (("red", 2.5, "round"), ("blue", 7.0, "square"), ("green", 9.5, "round"), ("purple", 1.0, "oval"))]
        return rows, predictor.score_rows(rows)
    X = test_images[:50].float()
    return X.numpy().astype(np.float32), predictor.score(X.reshape(50, -1))


def tensor_for(http, name: str, data, binary: bool):
    if name == "shop":
        tensor = http.InferInput("rows", [len(data)], "BYTES")
        tensor.set_data_from_numpy(np.array([json.dumps(r) for r in data], dtype=object), binary_data=binary)
    else:
        tensor = http.InferInput("features", list(data.shape), "FP32")  # image-shaped [N, 28, 28]
        tensor.set_data_from_numpy(data, binary_data=binary)
    return tensor


# ------------------------------------------------------------------ tritonclient


def test_triton_health_and_metadata(server, predictors):
    http, client = triton(server)
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "softreg" and "binary_tensor_data" in meta["extensions"]
    for name in MODELS:
        assert client.is_model_ready(name) and client.is_model_ready(name, "1")
        assert not client.is_model_ready(name, "2")
        doc = client.get_model_metadata(name)
        assert doc["name"] == name and doc["versions"] == ["1"]
        outputs = {t["name"]: t for t in doc["outputs"]}
        assert outputs["probabilities"] == {"name": "probabilities", "datatype": "FP32",
                                            "shape": [-1, len(predictors[name].classes)]}
        inputs = {t["name"]: t for t in doc["inputs"]}
        assert "rows" in inputs and (("images" in inputs) == (name != "shop"))
        if name != "shop":
            assert inputs["features"]["shape"] == [-1, 784]
    assert not client.is_model_ready("nope")
    with pytest.raises(http.InferenceServerException, match="no model named 'nope'"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("name", MODELS)
def test_triton_infer_equals_the_predictor(server, predictors, test_images, name, binary):
    http, client = triton(server)
    data, expected = inputs_of(name, predictors, test_images)
    outputs = [http.InferRequestedOutput(n, binary_data=binary) for n in ("probabilities", "label", "label_index")]
    result = client.infer(name, [tensor_for(http, name, data, binary)], outputs=outputs, request_id="req-7")
    assert result.get_response()["id"] == "req-7" and result.get_response()["model_version"] == "1"
    probs = result.as_numpy("probabilities")
    assert probs.dtype == np.float32 and probs.shape == tuple(expected.probabilities.shape)
    np.testing.assert_allclose(probs, expected.probabilities.numpy(), atol=1e-6)
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()]
    assert labels == expected.labels
    assert result.as_numpy("label_index").tolist() == expected.indices.tolist()


def test_triton_default_outputs_are_binary_and_classification_works(server, predictors, test_images):
    http, client = triton(server)
    data, expected = inputs_of("images", predictors, test_images)
    result = client.infer("images", [tensor_for(http, "images", data, True)])  # asks binary_data_output
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected.probabilities.numpy(), atol=1e-6)
    top = client.infer("images", [tensor_for(http, "images", data, False)],
                       outputs=[http.InferRequestedOutput("probabilities", binary_data=False, class_count=2)])
    best = top.as_numpy("probabilities")
    assert best.shape == (50, 2)
    first = [(v.decode() if isinstance(v, bytes) else v).split(":") for v in best[:, 0]]
    assert [int(i) for _, i, _ in first] == expected.indices.tolist()
    assert [label for _, _, label in first] == expected.labels
    np.testing.assert_allclose([float(p) for p, _, _ in first], expected.probabilities.max(dim=1).values, atol=1e-6)


def test_triton_pictures_as_bytes_and_compressed_requests(server, predictors, test_images):
    http, client = triton(server)
    pictures = [png_bytes(img.float(), 255.0) for img in test_images[:20]]
    tensor = http.InferInput("images", [20], "BYTES")
    tensor.set_data_from_numpy(np.array(pictures, dtype=object), binary_data=True)
    expected = predictors["images"].score(test_images[:20].reshape(20, -1).float())
    for compression in (None, "gzip", "deflate"):
        result = client.infer("images", [tensor], request_compression_algorithm=compression)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected.probabilities.numpy(), atol=1e-6)


def test_triton_errors_are_the_servers_messages(server):
    http, client = triton(server)
    wrong = http.InferInput("features", [2, 5], "FP32")
    wrong.set_data_from_numpy(np.zeros((2, 5), np.float32))
    with pytest.raises(http.InferenceServerException, match=r"features\[0\] has 5 values but the model expects 784"):
        client.infer("images", [wrong])
    with pytest.raises(http.InferenceServerException, match="no version '3'"):
        client.infer("images", [wrong], model_version="3")


def test_warnings_travel_in_the_response_parameters(server):
    http, client = triton(server)
    tensor = http.InferInput("features", [2, 784], "UINT8")
    tensor.set_data_from_numpy(np.stack([np.zeros(784, np.uint8), np.full(784, 255, np.uint8)]))
    parameters = client.infer("images", [tensor]).get_response()["parameters"]
    warnings = json.loads(parameters["warnings"])
    assert "empty" in warnings[0][0] and "far from the training images" in warnings[1][0]


@pytest.mark.slow
def test_a_thousand_v2_requests_from_eight_threads(server, predictors, test_images):
    http = pytest.importorskip("tritonclient.http")
    X = test_images.reshape(len(test_images), -1).numpy().astype(np.float32)
    expected = predictors["images"].score(torch.from_numpy(X)).probabilities.numpy()
    errors, got = [], {}

    def worker(k: int) -> None:
        client = http.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)
        try:
            for i in range(k, 1000, 8):
                tensor = http.InferInput("features", [1, 784], "FP32")
                tensor.set_data_from_numpy(X[i : i + 1], binary_data=i % 2 == 0)  # JSON and binary, mixed
                got[i] = client.infer("images", [tensor]).as_numpy("probabilities")[0]
        except Exception as exc:  # noqa: BLE001  counted, then the test fails with it
            errors.append(repr(exc))
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(got) == 1000, errors[:3]
    np.testing.assert_allclose(np.stack([got[i] for i in range(1000)]), expected[:1000], atol=1e-6)


# ------------------------------------------------------------------ the KServe SDK


def kserve_python() -> str:
    """The interpreter that has kserve: SOFTREG_KSERVE_PYTHON (the Makefile's .ci-venvs/kserve), or this one."""
    import importlib.util

    path = os.environ.get("SOFTREG_KSERVE_PYTHON")
    if path and Path(path).is_file():
        return path
    if importlib.util.find_spec("kserve") is not None:
        return sys.executable
    reason = "kserve is not installed (make test puts it in .ci-venvs/kserve; see .ci/kserve.txt)"
    if os.environ.get("SOFTREG_REQUIRE_KSERVE") == "1":
        pytest.fail(f"SOFTREG_REQUIRE_KSERVE=1 but {reason}")
    pytest.skip(reason)


def test_the_kserve_sdk_v1_and_v2(server, predictors, test_images):
    python = kserve_python()
    mlp, mlp_expected = inputs_of("mlp", predictors, test_images)
    request = {"v1": {"model": "mlp", "instances": mlp.reshape(50, -1).tolist()}, "v2": []}
    expected = {}
    for name in MODELS:
        data, expected[name] = inputs_of(name, predictors, test_images)
        if name == "shop":
            request["v2"].append({"model": name, "input": "rows", "shape": [len(data)], "datatype": "BYTES",
                                  "data": [json.dumps(r) for r in data]})
        else:
            request["v2"].append({"model": name, "input": "features", "shape": list(data.shape), "datatype": "FP32",
                                  "data": data.tolist()})
    done = subprocess.run([python, str(Path(__file__).with_name("kserve_calls.py")), server.url],
                          input=json.dumps(request), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout)
    assert answers["v1"]["live"] is True and answers["v1"]["ready"] is True  # GET / is {"status": "alive"}
    np.testing.assert_allclose(answers["v1"]["probabilities"], mlp_expected.probabilities.numpy(), atol=1e-6)
    assert answers["v2"]["live"] is True and answers["v2"]["ready"] is True
    for name, got in zip(MODELS, answers["v2"]["models"]):
        assert got["model_ready"] is True
        for form in ("json", "binary"):
            assert got[form]["id"] == f"k-{form == 'binary'}"
            np.testing.assert_allclose(got[form]["probabilities"], expected[name].probabilities.numpy(), atol=1e-6)
            assert got[form]["labels"] == expected[name].labels, (name, form)


# ------------------------------------------------------------------ malformed v2 requests (raw HTTP)


def _binary(doc: dict, blob: bytes) -> tuple[bytes, dict]:
    header = json.dumps(doc).encode()
    return header + blob, {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}


FEATURES = {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 1, 1]}
BAD_V2 = {
    "not-json": (b"{\"inputs\": [", {}, 400, "not valid JSON"),
    "not-an-object": (b"[1, 2]", {}, 400, "must be a JSON object"),
    "no-inputs": (b"{}", {}, 400, "needs \"inputs\""),
    "empty-inputs": (b'{"inputs": []}', {}, 400, "needs \"inputs\""),
    "input-not-object": (b'{"inputs": [5]}', {}, 400, "input 0 must be an object"),
    "no-name": (json.dumps({"inputs": [{**FEATURES, "name": ""}]}).encode(), {}, 400, "needs a \"name\""),
    "unknown-datatype": (json.dumps({"inputs": [{**FEATURES, "datatype": "FP8"}]}).encode(), {}, 400, "datatype 'FP8'"),
    "bool": (json.dumps({"inputs": [{**FEATURES, "datatype": "BOOL", "data": [True] * 4}]}).encode(), {}, 400,
             "BOOL tensors are not taken"),
    "bad-shape": (json.dumps({"inputs": [{**FEATURES, "shape": [1, -4]}]}).encode(), {}, 400, "non-negative integers"),
    "huge-shape": (json.dumps({"inputs": [{**FEATURES, "shape": [10 ** 9, 10 ** 9]}]}).encode(), {}, 400, "far larger"),
    "count-mismatch": (json.dumps({"inputs": [{**FEATURES, "shape": [2, 4]}]}).encode(), {}, 400,
                       "has 4 values in \"data\" but its shape [2, 4] holds 8"),
    "text-in-fp32": (json.dumps({"inputs": [{**FEATURES, "data": [1, "a", 1, 1]}]}).encode(), {}, 400,
                     "element 1 is 'a'"),
    "float-in-int": (json.dumps({"inputs": [{**FEATURES, "datatype": "INT32", "data": [1, 2.5, 1, 1]}]}).encode(), {},
                     400, "INT32 data must be integers"),
    "out-of-range": (json.dumps({"inputs": [{**FEATURES, "datatype": "UINT8", "data": [1, 300, 1, 1]}]}).encode(), {},
                     400, "300 does not fit UINT8"),
    "nan": (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, NaN, 1, 1]}]}', {},
            422, "NaN"),
    "no-data": (json.dumps({"inputs": [{k: v for k, v in FEATURES.items() if k != "data"}]}).encode(), {}, 400,
                "has no \"data\""),
    "two-inputs": (json.dumps({"inputs": [FEATURES, FEATURES]}).encode(), {}, 400, "send one input tensor"),
    "unknown-input": (json.dumps({"inputs": [{**FEATURES, "name": "pixels"}]}).encode(), {}, 400,
                      "no input 'pixels'; its inputs are features, rows"),
    "wrong-width": (json.dumps({"inputs": [{**FEATURES, "shape": [1, 3], "data": [1, 2, 3]}]}).encode(), {}, 400,
                    "features[0] has 3 values but the model expects 4"),
    "wrong-rank": (json.dumps({"inputs": [{**FEATURES, "shape": [1, 2, 2]}]}).encode(), {}, 400,
                   "shape [1, 2, 2]; this model takes [N, 4]"),
    "zero-rows": (json.dumps({"inputs": [{**FEATURES, "shape": [0, 4], "data": []}]}).encode(), {}, 400, "has 0 rows"),
    "images-to-a-table": (json.dumps({"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES",
                                                  "data": ["x"]}]}).encode(), {}, 400, "no input 'images'"),
    "rows-not-json": (json.dumps({"inputs": [{"name": "rows", "shape": [1], "datatype": "BYTES",
                                              "data": ["{nope"]}]}).encode(), {}, 400, "rows[0] is not valid JSON"),
    "rows-bad-row": (json.dumps({"inputs": [{"name": "rows", "shape": [1], "datatype": "BYTES",
                                             "data": ["[1, 2]"]}]}).encode(), {}, 400, "rows[0] has 2 values"),
    "rows-number": (json.dumps({"inputs": [{"name": "rows", "shape": [1], "datatype": "BYTES",
                                            "data": ["5"]}]}).encode(), {}, 400, "must be a JSON list or object"),
    "rows-not-bytes": (json.dumps({"inputs": [{"name": "rows", "shape": [1], "datatype": "FP32",
                                               "data": [1]}]}).encode(), {}, 400, "is a BYTES tensor of shape [N]"),
    "unknown-output": (json.dumps({"inputs": [FEATURES], "outputs": [{"name": "logits"}]}).encode(), {}, 400,
                       "output 0 is 'logits'"),
    "output-twice": (json.dumps({"inputs": [FEATURES], "outputs": [{"name": "label"}, {"name": "label"}]}).encode(),
                     {}, 400, "asked for twice"),
    "bad-classification": (json.dumps({"inputs": [FEATURES], "outputs": [{"name": "label", "parameters": {
        "classification": 2}}]}).encode(), {}, 400, "applies to the \"probabilities\" output only"),
    "bad-parameters": (json.dumps({"inputs": [FEATURES], "parameters": {"binary_data_output": "yes"}}).encode(), {},
                       400, "must be true or false"),
    "nested-parameters": (json.dumps({"inputs": [FEATURES], "parameters": {"a": [1]}}).encode(), {}, 400,
                          "booleans, numbers and strings"),
    "id-not-string": (json.dumps({"id": 5, "inputs": [FEATURES]}).encode(), {}, 400, "\"id\" must be a string"),
    "header-too-long": (b"{}", {"Inference-Header-Content-Length": "99"}, 400, "at most the body's 2 bytes"),
    "header-not-number": (b"{}", {"Inference-Header-Content-Length": "x"}, 400, "Inference-Header-Content-Length"),
    "binary-short": (*_binary({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32",
                                           "parameters": {"binary_data_size": 16}}]}, b"\0" * 8), 400,
                     "only 8 bytes of binary data"),
    "binary-wrong-size": (*_binary({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32",
                                                "parameters": {"binary_data_size": 8}}]}, b"\0" * 8), 400,
                          "needs 16 bytes"),
    "binary-extra": (*_binary({"inputs": [FEATURES]}, b"\0" * 8), 400, "8 bytes follow the JSON part"),
    "binary-and-data": (json.dumps({"inputs": [{**FEATURES, "parameters": {"binary_data_size": 16}}]}).encode(), {},
                        400, "both \"data\" and binary_data_size"),
    "binary-bytes-cut": (*_binary({"inputs": [{"name": "rows", "shape": [1], "datatype": "BYTES",
                                               "parameters": {"binary_data_size": 6}}]},
                                  struct.pack("<I", 10) + b"[1"), 400, "says 10 bytes but fewer follow"),
    "binary-nan": (*_binary({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32",
                                         "parameters": {"binary_data_size": 16}}]},
                            np.array([1, np.nan, 1, 1], np.float32).tobytes()), 400, "finite numbers"),
    "bad-gzip": (b"not gzip", {"Content-Encoding": "gzip"}, 400, "not valid gzip data"),
    "unknown-encoding": (b"{}", {"Content-Encoding": "br"}, 415, "Content-Encoding 'br'"),
}


@pytest.mark.parametrize("case", BAD_V2, ids=list(BAD_V2))
def test_malformed_v2_requests_get_a_4xx_json_error(server, case):
    body, headers, status, words = BAD_V2[case]
    response = httpx.post(server.url + "/v2/models/table/infer", content=body, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"], response.json()["error"]


def test_v2_unknown_models_versions_and_methods(server):
    for method, path, status in (("GET", "/v2/models/nope", 404), ("GET", "/v2/models/table/versions/2", 404),
                                 ("GET", "/v2/models/nope/ready", 404), ("POST", "/v2/models/nope/infer", 404),
                                 ("GET", "/v2/models/table/infer", 405), ("DELETE", "/v2", 405),
                                 ("GET", "/v2/repository/index", 404)):
        response = httpx.request(method, server.url + path, timeout=30)
        assert response.status_code == status and response.json()["error"], (path, response.text)


def test_v2_json_nested_data_and_integer_pixels(server, predictors, test_images):
    """Nested JSON data and an integer datatype score as the flat FP32 rows do."""
    X = test_images[:3].reshape(3, -1)
    doc = {"inputs": [{"name": "features", "shape": [3, 28, 28], "datatype": "UINT8",
                       "data": test_images[:3].tolist()}], "outputs": [{"name": "probabilities"}]}
    got = httpx.post(server.url + "/v2/models/images/infer", json=doc, timeout=30).json()
    assert [o["name"] for o in got["outputs"]] == ["probabilities"] and "id" not in got
    expected = predictors["images"].score(X.float()).probabilities
    assert torch.allclose(torch.tensor(got["outputs"][0]["data"]).reshape(3, -1), expected, atol=1e-6)


def test_v2_sparse_rows(server, predictors):
    rows = ["1:0.9 2:0.1 3:0.2 40:1.5", '{"2": 0.8, "3": 0.1, "499": 1.0}']
    doc = {"inputs": [{"name": "rows", "shape": [2], "datatype": "BYTES", "data": rows}]}
    got = httpx.post(server.url + "/v2/models/sparse/infer", json=doc, timeout=30).json()
    expected = predictors["sparse"].score_rows(["1:0.9 2:0.1 3:0.2 40:1.5", {"2": 0.8, "3": 0.1, "499": 1.0}])
    probs = next(o for o in got["outputs"] if o["name"] == "probabilities")
    assert torch.allclose(torch.tensor(probs["data"]).reshape(2, -1), expected.probabilities, atol=1e-6)
