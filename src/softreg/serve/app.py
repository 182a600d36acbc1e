"""The HTTP application: v1 and v2 endpoints over the same models, health, metrics, docs and the page.

Serves only what is built in: the JSON endpoints and the page's three files, read from the
package at start-up. Nothing on the file system is reachable through a URL.

``GET /`` answers by the request's ``Accept``: a browser (``text/html`` preferred) gets the drawing
page, any other client KServe v1's liveness ``{"status": "alive"}``; ``/ui`` is always the page.
"""


import time
from contextlib import asynccontextmanager
from importlib import resources

from softreg.errors import UserInputError
from softreg.serve import schemas as s
from softreg.serve import v1, v2
from softreg.serve.errors import RequestError, error_response, json_response, response_of
from softreg.serve.metrics import Metrics
from softreg.serve.served import Served

MAX_BODY_BYTES = 4 * 1024 * 1024  # default body limit: a 100-instance 28x28 request is about 0.3 MB
STATIC = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
# the page loads nothing from elsewhere, and nothing else may be injected into it
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                           "base-uri 'none'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
HTML = {"text/html": {"schema": {"type": "string"}}}


def wants_html(accept: str) -> bool:
    """Whether an Accept header prefers text/html to JSON (browsers do; curl, httpx and the SDKs send */*)."""
    best = {"html": 0.0, "json": 0.0}
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = kind.strip().lower()
        if kind in ("text/html", "application/xhtml+xml"):
            best["html"] = max(best["html"], q)
        elif kind in ("application/json", "*/*"):
            best["json"] = max(best["json"], q)
    return best["html"] > 0 and best["html"] >= best["json"]


def create_app(predictors: list, *, max_body_bytes: int = MAX_BODY_BYTES, batching: bool = True,
               max_wait_ms: float = 0.0, max_batch_rows: int = 2048):
    """A FastAPI app serving ``predictors`` (``softreg.inference.predictor.Predictor``, named by run folder).

    The models load (``Predictor.warm_up``) in the background once the server starts; until then
    readiness is false and scoring answers 503. ``app.state.served`` holds them (``Served``).
    batching : score concurrent requests for one model in one call (``MicroBatcher``).
    max_body_bytes : larger bodies get 413 (read and dropped up to a bound, so the client hears it).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    metrics = Metrics()
    served = Served(predictors, metrics, batching=batching, max_wait_ms=max_wait_ms, max_batch_rows=max_batch_rows)
    files = resources.files("softreg.serve").joinpath("static")
    page = files.joinpath("index.html").read_bytes()
    assets = {name: files.joinpath(name).read_bytes() for name in STATIC}

    @asynccontextmanager
    async def lifespan(_app):
        served.start_loading()
        yield
        await served.close()

    app = FastAPI(title="softreg", version=_version(), docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Softmax / logistic regression and MLP classifiers trained with softreg, over "
                              "TF-Serving / KServe v1 and the Open Inference Protocol (v2). Every error is "
                              "{\"error\": \"...\"}.")
    app.state.metrics = metrics
    app.state.served = served
    app.state.max_body_bytes = max_body_bytes

    @app.middleware("http")
    async def count(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.request(getattr(route, "path", "unmatched"), request.method, response.status_code,
                        time.perf_counter() - start)
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        text = {404: f"no such endpoint {request.url.path}; see /docs",
                405: f"{request.method} is not allowed on {request.url.path}; see /docs"}
        return error_response(exc.status_code, text.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error_response(422, "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}"
                                             for e in exc.errors()))

    @app.get("/", summary="KServe v1 liveness; the drawing page for a browser",
             responses={200: {"model": s.Alive, "content": HTML,
                              "description": "{\"status\": \"alive\"}, or the page when Accept prefers text/html"}})
    async def root(request: Request):
        if wants_html(request.headers.get("accept", "")):
            return HTMLResponse(page, headers={**PAGE_HEADERS, "Vary": "Accept"})
        return json_response({"status": "alive"}, headers={"Vary": "Accept"})

    @app.get("/ui", summary="The drawing page", response_class=HTMLResponse,
             responses={200: {"content": HTML, "description": "the page"}})
    async def ui():
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/static/{file}", summary="The page's style sheet and script", response_class=Response,
             responses={200: {"content": {t.split(";")[0]: {"schema": {"type": "string"}} for t in STATIC.values()},
                              "description": "page.css or page.js"}, 404: s.error("no such file")})
    async def static(file: str):
        if file not in assets:
            return error_response(404, f"no such file /static/{file}")
        return Response(assets[file], media_type=STATIC[file], headers=PAGE_HEADERS)

    @app.get("/healthz", summary="Liveness and readiness", responses={200: {"model": s.Health},
                                                                       503: {"model": s.Health, "description": "loading"}})
    async def healthz():
        ready = served.all_ready()
        return json_response({"status": "ok" if ready else "loading", "models": served.names()}, 200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics: requests, latency, instances, batch sizes",
             response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus' text format 0.0.4"}})
    async def metrics_text():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    v1.add_routes(app, served, max_body_bytes)
    v2.add_routes(app, served, max_body_bytes, _version())

    def page_model(name: str):
        predictor = served.get(name)
        served.require_ready(predictor)
        return predictor

    @app.get("/v1/models/{name}/weights", summary="Weight templates of a linear image model (for the page)",
             responses={200: {"model": s.Weights}, 404: s.error("no such model, or not a linear image model"),
                        503: {"model": s.NotReady, "description": "still loading"}})
    async def weights(name: str):
        try:
            predictor = page_model(name)
        except RequestError as exc:
            return response_of(exc)
        templates = predictor.weight_templates()
        if templates is None:
            return error_response(404, f"{name} is a {predictor.kind} model"
                                       + ("" if predictor.image_shape else " on a table")
                                       + "; weight templates exist for softmax and logistic image models.")
        limit = float(templates.abs().flatten().quantile(0.995)) or 1.0
        return json_response({"shape": list(predictor.image_shape), "limit": limit,
                              "titles": predictor.template_titles(),
                              "templates": [[round(v, 5) for v in t.reshape(-1).tolist()] for t in templates]})

    @app.get("/v1/models/{name}/samples/random", summary="A random test sample of the run's dataset",
             responses={200: {"model": s.Sample}, 404: s.error("no such model, or its data is not available"),
                        422: s.error("seed is not an integer"), 503: {"model": s.NotReady, "description": "loading"}})
    async def random_sample(name: str, seed: int | None = None):
        try:
            instance, label, what = await run_in_threadpool(_sample, page_model(name), seed)
        except RequestError as exc:
            return response_of(exc)
        return json_response({"index": int(what.rsplit(" ", 1)[1]), "label": label, "instance": instance})

    @app.get("/docs", summary="This reference, as HTML", response_class=HTMLResponse,
             responses={200: {"content": HTML, "description": "the page"}})
    async def docs():
        from softreg.serve.docs import render_docs

        return HTMLResponse(render_docs(app.openapi()), headers=PAGE_HEADERS)

    from softreg.serve.openapi import install

    install(app)
    return app


def _sample(predictor, seed):
    """(instance as a client sends it, true label, "test sample N") of a random test sample."""
    try:
        x, label, what = predictor.test_sample(predictor.random_test_index(seed))
    except UserInputError as exc:
        raise RequestError(404, str(exc)) from None
    return predictor.as_instance(x), label, what


def _version() -> str:
    from softreg import __version__

    return __version__
