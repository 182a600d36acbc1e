"""A body over the limit: the 413 JSON reaches urllib, requests, httpx and curl (v1 and v2, sized and
chunked bodies, both of uvicorn's HTTP implementations), instead of a connection reset."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install 'softreg[serve]'")
httpx = pytest.importorskip("httpx", reason="the serving tests use httpx (the test extra)")

LIMIT = 1024 * 1024
BODY = b'{"instances": [[' + b"0, " * (20 * LIMIT // 3) + b"0]]}"  # 20 MB, as a large client would send
PATHS = ("/v1/models/table:predict", "/v2/models/table/infer")
IMPLEMENTATIONS = ["h11"] + (["httptools"] if importlib.util.find_spec("httptools") else [])


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def small(request, predictors):
    from softreg.serve.app import create_app
    from softreg.serve.server import BackgroundServer

    with BackgroundServer(create_app([predictors["table"]], max_body_bytes=LIMIT), http=request.param) as server:
        yield server.url


def _check(status: int, text: str | bytes) -> None:
    assert status == 413, text
    assert "over the limit of 1048576 bytes" in json.loads(text)["error"]


@pytest.mark.parametrize("path", PATHS)
def test_urllib_hears_the_413(small, path):
    request = urllib.request.Request(small + path, data=BODY, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    _check(caught.value.code, caught.value.read())


@pytest.mark.parametrize("path", PATHS)
def test_requests_hears_the_413(small, path):
    requests = pytest.importorskip("requests", reason="requests is a test dependency")
    response = requests.post(small + path, data=BODY, headers={"Content-Type": "application/json"}, timeout=60)
    _check(response.status_code, response.content)
    chunked = requests.post(small + path, data=iter([BODY[i : i + 65536] for i in range(0, len(BODY), 65536)]),
                            timeout=60)  # no Content-Length: the limit is found while reading
    _check(chunked.status_code, chunked.content)


@pytest.mark.parametrize("path", PATHS)
def test_httpx_hears_the_413(small, path):
    response = httpx.post(small + path, content=BODY, timeout=60)
    _check(response.status_code, response.content)
    streamed = httpx.post(small + path, content=(BODY[i : i + 65536] for i in range(0, len(BODY), 65536)), timeout=60)
    _check(streamed.status_code, streamed.content)


@pytest.mark.parametrize("path", PATHS)
def test_curl_hears_the_413(small, path, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    for extra in ([], ["-H", "Expect:"]):  # with curl's 100-continue (it then sends nothing), and without
        done = subprocess.run(["curl", "-sS", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}",
                               "--data-binary", f"@{body}", *extra, small + path],
                              capture_output=True, timeout=90)
        text, _, code = done.stdout.rpartition(b"\n")
        _check(int(code), text)


def test_a_body_under_the_limit_still_scores(small):
    response = httpx.post(small + PATHS[0], json={"instances": [[1, 2, 1, 1]]}, timeout=60)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


def test_a_compressed_bomb_is_refused(small):
    import gzip

    bomb = gzip.compress(b"[" + b" " * (50 * LIMIT) + b"]")  # 50 MB of spaces in 50 KB
    response = httpx.post(small + PATHS[1], content=bomb, headers={"Content-Encoding": "gzip"}, timeout=60)
    assert response.status_code == 413 and "inflates to more than the limit" in response.json()["error"]
