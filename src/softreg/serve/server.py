"""Running the app: bind the socket first (clear errors), then uvicorn, in the foreground or a thread.

SIGTERM (what Kubernetes sends) and Ctrl-C stop accepting connections, let the requests in
flight finish (up to ``drain_seconds``), then end the command with 143 or 130.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

from softreg.errors import UserInputError
from softreg.serve import require_serving


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. UserInputError when it cannot."""
    if not 0 <= port <= 65535:
        raise UserInputError(f"--port must be in [0, 65535]; got {port}.")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UserInputError(f"--host {host!r} is not an address of this machine ({exc}); "
                             "use 127.0.0.1 (the default) or 0.0.0.0.") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UserInputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                             "pick another --port (or stop what uses it).") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


DRAIN_SECONDS = 25.0  # Kubernetes waits 30 s after SIGTERM before it kills


def make_server(app, drain_seconds: float = DRAIN_SECONDS, http: str = "auto"):
    """A uvicorn server for ``app``. On SIGTERM / SIGINT it drains, then raises the signal again
    (uvicorn >= 0.30), so the command line's handler reports it and exits 143 / 130.

    http : uvicorn's HTTP implementation: auto (httptools when installed, else h11), h11, httptools.
    """
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", http=http,
                            timeout_graceful_shutdown=drain_seconds)
    return uvicorn.Server(config)


def serve(app, host: str = "127.0.0.1", port: int = 8000, on_ready: Callable[[str], None] | None = None,
          drain_seconds: float = DRAIN_SECONDS) -> None:
    """Serve ``app`` until SIGTERM or Ctrl-C; the requests in flight finish first."""
    require_serving()
    sock = bind(host, port)
    server = make_server(app, drain_seconds)
    if on_ready is not None:
        on_ready(url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """``app`` served from a thread on 127.0.0.1 and a free port (tests, benchmarks).

    with BackgroundServer(app) as server: ... server.url ...
    """

    def __init__(self, app, host: str = "127.0.0.1", http: str = "auto"):
        require_serving()
        self.sock = bind(host, 0)
        self.url = url_of(self.sock).rstrip("/")
        self.app = app
        self.server = make_server(app, 5.0, http)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        served = getattr(self.app.state, "served", None)
        if served is not None and not served.loaded.wait(120):  # the models warm up once the server runs
            raise RuntimeError("the test server's models did not load")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
