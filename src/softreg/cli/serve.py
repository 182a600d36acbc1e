"""`softreg serve`: trained runs behind TF-Serving / KServe v1 and Open Inference Protocol v2 endpoints, with a page."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from softreg.cli.app import app, echo
from softreg.errors import UserInputError


@app.command()
def serve(
    runs: List[Path] = typer.Argument(..., help="run folders written by `softreg train`; each is served "
                                                "under its folder's name"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, "--port", help="port to listen on (0: a free one)"),
    max_body_mb: float = typer.Option(4.0, "--max-body-mb", help="largest request body, in MB (larger: 413)"),
    batching: bool = typer.Option(True, "--batching/--no-batching",
                                  help="score requests that arrive together in one call"),
    max_wait_ms: float = typer.Option(0.0, "--max-wait-ms",
                                      help="with batching, how long a request may wait for others"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder (random test samples)"),
    workers: int = typer.Option(1, "--workers", help="server processes behind the one port (each loads the models)"),
    drain_seconds: float = typer.Option(25.0, "--drain-seconds",
                                        help="on SIGTERM or Ctrl-C, how long requests in flight may take to finish"),
) -> None:
    """Serve runs over HTTP: v1 (/v1/models/NAME:predict), v2 (/v2/models/NAME/infer), a drawing page at /."""
    from softreg.serve import require_serving

    require_serving()
    from softreg.inference.predictor import Predictor
    from softreg.serve.app import create_app
    from softreg.serve.server import serve as run_server

    if not max_body_mb > 0 or max_body_mb > 1024:
        raise UserInputError(f"--max-body-mb must be in (0, 1024]; got {max_body_mb}.")
    if not 0 <= max_wait_ms <= 1000:
        raise UserInputError(f"--max-wait-ms must be in [0, 1000]; got {max_wait_ms}.")
    if not 1 <= workers <= 64:
        raise UserInputError(f"--workers must be in [1, 64]; got {workers}.")
    if not 0 <= drain_seconds <= 3600:
        raise UserInputError(f"--drain-seconds must be in [0, 3600]; got {drain_seconds}.")
    predictors = [Predictor.from_run(run, data_dir=data_dir) for run in runs]
    keys = [(p.name, p.version) for p in predictors]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        name, version = twice[0]
        raise UserInputError(f"two runs are named {name!r}" + (f" (version {version})" if version != "1" else "")
                             + "; models are named by folder, so rename one.")
    names = sorted({p.name for p in predictors})
    options = {"max_body_bytes": int(max_body_mb * 1024 * 1024), "batching": batching, "max_wait_ms": max_wait_ms}

    def ready(url: str) -> None:
        echo(f"serving {', '.join(names)} at {url} (API reference: {url}docs; Ctrl-C stops)")
        sys.stdout.flush()  # a script reading the address through a pipe needs it now

    if workers > 1:
        from softreg.serve.workers import serve_workers

        del predictors  # each worker loads its own
        serve_workers([str(r) for r in runs], {**options, "data_dir": data_dir, "drain_seconds": drain_seconds},
                      host, port, workers, on_ready=ready)
        return
    run_server(create_app(predictors, **options), host, port, on_ready=ready, drain_seconds=drain_seconds)
