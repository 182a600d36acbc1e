"""`softreg serve` as a process: readiness while loading, SIGTERM drains the requests in flight and
exits 143, and --workers N serves from N processes behind one port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # process-level runs: `make test-fast` leaves them out

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install 'softreg[serve]'")
httpx = pytest.importorskip("httpx", reason="the serving tests use httpx (the test extra)")

WAIT = 120  # seconds for a server process to start and load


def start(*args) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "softreg", "serve", *map(str, args), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        proc.kill()
        pytest.fail(line + proc.stderr.read())
    return proc, line.split(" at ", 1)[1].split(" ", 1)[0].rstrip("/")


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v2/health/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} never became ready")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_readiness_is_false_until_the_models_have_loaded(predictors, runs):
    from softreg.inference.predictor import Predictor
    from softreg.serve.app import create_app
    from softreg.serve.server import bind, make_server, url_of

    release = threading.Event()
    predictor = Predictor.from_run(runs["images"])
    loaded = predictor.warm_up
    predictor.warm_up = lambda: (release.wait(60), loaded())
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app([predictor]), 5.0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = url_of(sock).rstrip("/")
    try:
        for _ in range(3000):
            if server.started:
                break
            time.sleep(0.01)
        assert httpx.get(url + "/v2/health/live").json() == {"live": True}
        assert httpx.get(url + "/", headers={"Accept": "*/*"}).json() == {"status": "alive"}
        for path in ("/v2/health/ready", "/v2/models/images/ready", "/healthz", "/v1/models/images"):
            assert httpx.get(url + path).status_code == 503, path
        refused = httpx.post(url + "/v2/models/images/infer", json={"inputs": [
            {"name": "features", "shape": [1, 784], "datatype": "FP32", "data": [0] * 784}]})
        assert refused.status_code == 503 and "still loading" in refused.json()["error"]
        assert refused.headers["retry-after"] == "1"
        release.set()
        deadline = time.monotonic() + WAIT
        while httpx.get(url + "/v2/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(url + "/v2/models/images/ready").json() == {"name": "images", "ready": True}
        assert httpx.get(url + "/v1/models/images").json()["ready"] is True
    finally:
        release.set()
        server.should_exit = True
        thread.join(10)


def test_sigterm_finishes_the_request_in_flight_then_exits_143(runs):
    proc, url = start(runs["table"])
    try:
        wait_ready(url)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        body = json.dumps({"instances": [[1, 2, 1, 1], [1, 7, 7, 7]]}).encode()
        client = socket.create_connection((host, int(port)), timeout=30)
        client.sendall(b"POST /v1/models/table:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        time.sleep(0.5)  # the request is in flight: headers read, body still coming
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        with pytest.raises(httpx.TransportError):  # no new connections once draining
            httpx.get(url + "/healthz", timeout=5)
        assert proc.poll() is None  # still finishing the request
        client.sendall(body[10:])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
        client.close()
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answer
        assert len(json.loads(payload)["predictions"]) == 2
        proc.wait(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == 143 and proc.stderr.read().strip() == "softreg: terminated"


def _workers(pid: int) -> list[int]:
    """The live worker processes of server ``pid`` (multiprocessing's spawned children; not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts worker processes through /proc")
def test_workers_share_one_port_restart_and_stop_on_sigterm(runs, predictors):
    proc, url = start(runs["table"], "--workers", "2")
    try:
        deadline = time.monotonic() + WAIT
        while len(_workers(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _workers(proc.pid)
        assert len(workers) == 2
        wait_ready(url)
        expected = predictors["table"].score_rows([[1, 2, 1, 1]]).probabilities[0].tolist()
        for _ in range(20):  # a new connection each time: the kernel spreads them over the workers
            got = httpx.post(url + "/v1/models/table:predict", json={"instances": [[1, 2, 1, 1]]}, timeout=30)
            assert got.status_code == 200 and got.json()["predictions"][0]["probabilities"] == pytest.approx(expected)
        os.kill(workers[0], signal.SIGKILL)  # a worker dies: another takes its place
        deadline = time.monotonic() + WAIT
        while (workers[0] in _workers(proc.pid) or len(_workers(proc.pid)) < 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _workers(proc.pid)
        assert len(workers) == 2
        wait_ready(url)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 143 and "softreg: terminated" in proc.stderr.read()
    assert not any(_alive(w) for w in workers)  # the workers drained and ended with the server
