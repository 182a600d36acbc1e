"""A bounded load test of `softreg serve` on 127.0.0.1: throughput and p50 / p99 latency.

--compare batching (the default): single-instance and 100-instance requests, at 1, 8 and 32
concurrent clients, with micro-batching on and off; then 1,000 requests from 8 threads.
--compare protocols: the same images through v1 JSON (pixel lists), v1 pictures ({"b64": PNG}),
v2 JSON (an FP32 tensor) and v2 binary tensor data, from one server, at 1 and 8 clients; then
1,000 v2 requests from 8 threads. Errors are counted. The server runs in its own process
(`python -m softreg serve RUN --port 0`); the clients are threads of this process, each with its
own keep-alive connection. Every request loop is bounded in count and time.

    .venv/bin/python bench/serve.py                       # Fashion-MNIST when installed, else digits
    .venv/bin/python bench/serve.py --run runs/fm --repeats 3 --out bench/results/serve.md
    .venv/bin/python bench/serve.py --run runs/fm --compare protocols --repeats 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TIME_LIMIT = 120.0  # seconds for one configuration, whatever happens


def start_server(run: Path, batching: bool, max_wait_ms: float) -> tuple[subprocess.Popen, str, int]:
    args = [sys.executable, "-m", "softreg", "serve", str(run), "--port", "0", "--max-body-mb", "16",
            "--max-wait-ms", str(max_wait_ms), "--batching" if batching else "--no-batching"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stderr.read()}")
    address = line.split(" at http://", 1)[1].split("/", 1)[0]
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + TIME_LIMIT  # the model loads in the background: wait until it is ready
    while True:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                break
        finally:
            conn.close()
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the server did not become ready")
        time.sleep(0.2)
    return proc, host, int(port)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


JSON = {"Content-Type": "application/json"}


def load(host: str, port: int, path: str, body: bytes, clients: int, requests: int, headers: dict = JSON,
         expect: bytes = b'{"predictions"') -> dict:
    """``requests`` POSTs of ``body`` from ``clients`` threads; an answer is right when it is a 200 that
    starts with ``expect``; latencies in seconds."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.monotonic() + TIME_LIMIT

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                start = time.perf_counter()
                try:
                    conn.request("POST", path, body, headers)
                    response = conn.getresponse()
                    data = response.read()
                    ok = response.status == 200 and data.startswith(expect)
                except (OSError, http.client.HTTPException) as exc:
                    ok, data = False, str(exc).encode()
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors.append(data[:200].decode(errors="replace"))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIME_LIMIT + 30)
    wall = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "errors": len(errors), "first_error": errors[0] if errors else None,
            "seconds": wall, "throughput": n / wall if wall else 0.0,
            "p50_ms": 1000 * latencies[n // 2] if n else float("nan"),
            "p99_ms": 1000 * latencies[min(n - 1, int(0.99 * n))] if n else float("nan")}


def bodies(run: Path) -> tuple[str, dict[int, bytes]]:
    from softreg.inference.predictor import Predictor

    predictor = Predictor.from_run(run)
    split = predictor.test_split()
    if split is None:
        raise SystemExit(f"the run's data is not available: {predictor.data_problem}")
    X = split[0].X.reshape(len(split[0]), -1)
    rows = [[int(v) if float(v).is_integer() else float(v) for v in X[i].tolist()] for i in range(100)]
    return predictor.name, {n: json.dumps({"instances": rows[:n]}).encode() for n in (1, 100)}


def protocol_bodies(run: Path) -> tuple[str, dict]:
    """{(form, n): (path, body, headers, expected start)} for n = 1 and 100 test images."""
    import base64

    import numpy as np

    from softreg.inference.images import png_bytes
    from softreg.inference.predictor import Predictor

    predictor = Predictor.from_run(run)
    split = predictor.test_split()
    if split is None:
        raise SystemExit(f"the run's data is not available: {predictor.data_problem}")
    images = split[0].X[:100]
    X = images.reshape(100, -1).numpy().astype(np.float32)
    rows = [[int(v) if float(v).is_integer() else float(v) for v in X[i].tolist()] for i in range(100)]
    pictures = [base64.b64encode(png_bytes(img.float(), predictor.pixel_max)).decode() for img in images]
    v1, v2 = f"/v1/models/{predictor.name}:predict", f"/v2/models/{predictor.name}/infer"
    out = {}
    for n in (1, 100):
        out["v1 JSON", n] = (v1, json.dumps({"instances": rows[:n]}).encode(), JSON, b'{"predictions"')
        out["v1 b64 PNG", n] = (v1, json.dumps({"instances": [{"b64": b} for b in pictures[:n]]}).encode(), JSON,
                                b'{"predictions"')
        tensor = {"name": "features", "shape": [n, X.shape[1]], "datatype": "FP32"}
        doc = {"inputs": [{**tensor, "data": [v for r in rows[:n] for v in r]}]}
        out["v2 JSON", n] = (v2, json.dumps(doc).encode(), JSON, b'{"model_name"')
        header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": X[:n].nbytes}}],
                             "parameters": {"binary_data_output": True}}).encode()
        out["v2 binary", n] = (v2, header + X[:n].tobytes(), {"Content-Type": "application/octet-stream",
                                                            "Inference-Header-Content-Length": str(len(header))},
                               b'{"model_name"')
    return predictor.name, out


def compare_protocols(run: Path, repeats: int, requests: int, batch_requests: int) -> list[str]:
    """One server, every request form in turn (so a change in machine load hits all of them alike)."""
    name, payloads = protocol_bodies(run)
    lines = [f"run `{name}`; {os.cpu_count()} CPUs; batching on; load average before: "
             + " ".join(f"{v:.2f}" for v in os.getloadavg()), "",
             "| instances / request | clients | protocol, encoding | body bytes | requests/s | p50 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|---|---|"]
    proc, host, port = start_server(run, True, 0.0)
    try:
        for (path, body, headers, expect) in payloads.values():  # warm-up: imports, first batches
            load(host, port, path, body, 4, 20, headers, expect)
        forms = list(dict.fromkeys(form for form, _ in payloads))  # in the order above
        for size in (1, 100):
            for clients in (1, 8):
                count = requests if size == 1 else batch_requests
                reps = {form: [] for form in forms}
                for _ in range(repeats):
                    for form in forms:
                        path, body, headers, expect = payloads[form, size]
                        reps[form].append(load(host, port, path, body, clients, count, headers, expect))
                for form in forms:
                    med = {k: statistics.median(r[k] for r in reps[form]) for k in ("throughput", "p50_ms", "p99_ms")}
                    lines.append(f"| {size} | {clients} | {form} | {len(payloads[form, size][1])} | "
                                 f"{med['throughput']:.0f} | {med['p50_ms']:.1f} | {med['p99_ms']:.1f} | "
                                 f"{sum(r['errors'] for r in reps[form])} |")
                    print(lines[-1], flush=True)
        for form in ("v2 JSON", "v2 binary"):
            path, body, headers, expect = payloads[form, 1]
            check = load(host, port, path, body, 8, 1000, headers, expect)
            lines += ["", f"1,000 single-instance {form} requests from 8 threads: {check['requests']} answered, "
                          f"{check['errors']} errors, {check['throughput']:.0f} requests/s"
                          + (f"; first error: {check['first_error']}" if check["errors"] else "")]
    finally:
        stop_server(proc)
    return lines


def default_run(tmp: Path) -> Path:
    data = "fashion-mnist" if Path("/usr/share/datasets/fashion-mnist").is_dir() else "digits"
    out = tmp / f"{data}-softmax"
    subprocess.run([sys.executable, "-m", "softreg", "train", "--data", data, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a run folder (default: train one)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (medians reported)")
    parser.add_argument("--requests", type=int, default=400, help="single-instance requests per configuration")
    parser.add_argument("--batch-requests", type=int, default=60, help="100-instance requests per configuration")
    parser.add_argument("--modes", default="off,on", help="batching modes: off, on, on-wait2 (2 ms wait)")
    parser.add_argument("--compare", choices=("batching", "protocols"), default="batching",
                        help="batching modes (one server each), or v1 / v2 request forms (one server)")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or default_run(Path(tmp))
        if args.compare == "protocols":
            lines = compare_protocols(run, args.repeats, args.requests, args.batch_requests)
            lines.append("load average after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
            text = "\n".join(lines) + "\n"
            print(text)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(text)
            return
        name, payload = bodies(run)
        path = f"/v1/models/{name}:predict"
        lines = [f"run `{name}`; {os.cpu_count()} CPUs; load average before: "
                 + " ".join(f"{v:.2f}" for v in os.getloadavg()), "",
                 "| instances / request | clients | batching | requests/s | instances/s | p50 ms | p99 ms | errors |",
                 "|---|---|---|---|---|---|---|---|"]
        modes = args.modes.split(",")
        servers = {}
        try:
            for mode in modes:  # all up at once, loaded in turn: a change in machine load hits every mode
                servers[mode] = start_server(run, mode != "off", 2.0 if mode == "on-wait2" else 0.0)
                load(*servers[mode][1:], path, payload[1], 4, 50)  # warm-up: imports, first batches
            for size in (1, 100):
                for clients in (1, 8, 32):
                    count = args.requests if size == 1 else args.batch_requests
                    reps = {mode: [] for mode in modes}
                    for _ in range(args.repeats):
                        for mode in modes:
                            reps[mode].append(load(*servers[mode][1:], path, payload[size], clients, count))
                    for mode in modes:
                        med = {k: statistics.median(r[k] for r in reps[mode]) for k in ("throughput", "p50_ms", "p99_ms")}
                        errors = sum(r["errors"] for r in reps[mode])
                        lines.append(f"| {size} | {clients} | {mode} | {med['throughput']:.0f} | "
                                     f"{med['throughput'] * size:.0f} | {med['p50_ms']:.1f} | {med['p99_ms']:.1f} | "
                                     f"{errors} |")
                        print(lines[-1], flush=True)
            mode = "on" if "on" in modes else modes[0]
            check = load(*servers[mode][1:], path, payload[1], 8, 1000)
            lines += ["", f"1,000 single-instance requests from 8 threads (batching {mode}): "
                          f"{check['requests']} answered, {check['errors']} errors, "
                          f"{check['throughput']:.0f} requests/s"
                          + (f"; first error: {check['first_error']}" if check["errors"] else "")]
        finally:
            for proc, _, _ in servers.values():
                stop_server(proc)
        lines.append("load average after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
        text = "\n".join(lines) + "\n"
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)


if __name__ == "__main__":
    main()
