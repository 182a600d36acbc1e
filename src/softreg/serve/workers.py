"""``softreg serve --workers N``: N server processes behind one port.

The parent binds the socket and starts N processes (``spawn``: each loads its own models, no
torch state is shared across a fork); the kernel hands each new connection to one of them. A
worker that dies is started again. On SIGTERM or Ctrl-C the parent passes SIGTERM on, waits for
every worker to drain its requests in flight, then raises the signal again for the command
line's handler (exit 143 or 130). Each worker has its own micro-batcher and its own /metrics
counts (a scrape sees the worker that answered it).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Callable

from softreg.serve.server import bind, url_of

RESTART_PAUSE = 1.0  # seconds between restarts of a worker that keeps dying


def _worker(sock, runs: list[str], options: dict, threads: int) -> None:
    """One worker process: load the runs, serve on the inherited socket."""
    import torch

    from softreg.inference.predictor import Predictor
    from softreg.serve.app import create_app
    from softreg.serve.server import make_server

    torch.set_num_threads(threads)  # this process is ours: the workers share the cores
    data_dir, drain = options.pop("data_dir", None), options.pop("drain_seconds")
    predictors = [Predictor.from_run(run, data_dir=data_dir) for run in runs]
    make_server(create_app(predictors, **options), drain).run(sockets=[sock])


def serve_workers(runs: list[str], options: dict, host: str, port: int, workers: int,
                  on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``runs`` from ``workers`` processes on (host, port) until SIGTERM or SIGINT.

    options : create_app's keywords, plus data_dir and drain_seconds.
    """
    sock = bind(host, port)
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)

    def start():
        process = context.Process(target=_worker, args=(sock, runs, dict(options), threads), daemon=False)
        process.start()
        return process

    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    try:
        if on_ready is not None:
            on_ready(url_of(sock))
        while not received:
            for i, process in enumerate(processes):
                if not process.is_alive() and not received:
                    time.sleep(RESTART_PAUSE)
                    processes[i] = start()
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + options.get("drain_seconds", 25.0) + 10
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        signal.raise_signal(received[0])  # the command line reports it: exit 143 or 130
