"""The HTTP application: TF-Serving / KServe v1 endpoints, health, metrics, docs and the page.

Serves only what is built in: the JSON endpoints and the page's three files, read from the
package at start-up. Nothing on the file system is reachable through a URL.
"""


import json
import time
from contextlib import asynccontextmanager
from importlib import resources

from softreg.errors import UserInputError
from softreg.serve.batching import MicroBatcher
from softreg.serve.metrics import Metrics
from softreg.serve.protocol import RequestError, decode_instances, parse_body, response_body

MAX_BODY_BYTES = 4 * 1024 * 1024  # default body limit: a 100-instance 28x28 request is about 0.3 MB
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/page.css": ("page.css", "text/css; charset=utf-8"),
          "/static/page.js": ("page.js", "text/javascript; charset=utf-8")}
# the page loads nothing from elsewhere, and nothing else may be injected into it
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                           "base-uri 'none'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

PREDICT_BODY = {
    "required": True,
    "content": {"application/json": {
        "schema": {"type": "object", "required": ["instances"], "properties": {
            "instances": {"type": "array", "minItems": 1, "items": {"oneOf": [
                {"type": "array", "items": {"type": "number"}, "description": "raw feature values "
                 "(for image models the flattened pixels, 0..pixel_max)"},
                {"type": "object", "required": ["b64"], "properties": {"b64": {
                    "type": "string", "description": "base64 of a PNG, JPEG, GIF, BMP or WebP image"}}},
                {"type": "object", "description": "{feature name: value}, for tables with named features"}]}},
            "return_inputs": {"type": "boolean", "description": "also return what the model saw"}}},
        "example": {"instances": [[0, 0, 5, 13, 9, 1, 0, 0] + [0] * 56]}}},
}


def _json(doc, status: int = 200):
    from fastapi.responses import Response

    return Response(json.dumps(doc, separators=(",", ":")), status_code=status, media_type="application/json")


def _error(status: int, message: str):
    return _json({"error": " ".join(str(message).split())}, status)


def create_app(predictors: list, *, max_body_bytes: int = MAX_BODY_BYTES, batching: bool = True,
               max_wait_ms: float = 0.0, max_batch_rows: int = 2048):
    """A FastAPI app serving ``predictors`` (``softreg.inference.predictor.Predictor``, named by run folder).

    batching : score concurrent requests for one model in one call (``MicroBatcher``).
    max_body_bytes : larger bodies get 413 before they are read whole.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    models = {p.name: p for p in predictors}
    for predictor in predictors:  # load the data and fit the novelty check now, not in a request
        predictor.dataset()
        predictor.novelty()
    metrics = Metrics()
    batchers = {name: MicroBatcher(p.predict_proba, max_batch_rows, max_wait_ms / 1000.0,
                                   on_batch=lambda rows, name=name: metrics.batch(name, rows))
                for name, p in models.items()} if batching else {}
    pages = {path: resources.files("softreg.serve").joinpath("static", file).read_bytes()
             for path, (file, _) in STATIC.items()}

    @asynccontextmanager
    async def lifespan(_app):
        yield
        for batcher in batchers.values():
            await batcher.close()

    app = FastAPI(title="softreg", version=_version(), docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Softmax / logistic regression and MLP classifiers trained with softreg, "
                              "over the TF-Serving / KServe v1 protocol.")
    app.state.metrics = metrics
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
        return _error(exc.status_code, text.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return _error(422, "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()))

    def model_or_404(name: str):
        if name not in models:
            raise RequestError(404, f"no model named {name!r}; this server has {', '.join(sorted(models))} "
                                    "(GET /v1/models lists them).")
        return models[name]

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise RequestError(413, f"the body has {int(declared)} bytes, over the limit of {max_body_bytes}; "
                                    "send fewer instances per request (or start the server with a larger "
                                    "--max-body-mb).")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise RequestError(413, f"the body is over the limit of {max_body_bytes} bytes; send fewer "
                                        "instances per request (or start the server with a larger --max-body-mb).")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.get("/", include_in_schema=False)
    async def page():
        return HTMLResponse(pages["/"], headers=PAGE_HEADERS)

    @app.get("/static/{file}", include_in_schema=False)
    async def static(file: str):
        path = f"/static/{file}"
        if path not in pages:
            return _error(404, f"no such file {path}")
        return Response(pages[path], media_type=STATIC[path][1], headers=PAGE_HEADERS)

    @app.get("/healthz", summary="Liveness and readiness")
    async def healthz():
        return _json({"status": "ok", "models": sorted(models)})

    @app.get("/metrics", summary="Prometheus metrics: requests, latency, instances, batch sizes")
    async def metrics_text():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models", summary="The models this server has")
    async def list_models():
        return _json({"models": [models[n].describe() for n in sorted(models)]})

    @app.get("/v1/models/{name}", summary="A model's status and what it expects",
             responses={404: {"description": "no such model"}})
    async def model_status(name: str):
        try:
            return _json(model_or_404(name).describe())
        except RequestError as exc:
            return _error(exc.status, exc.message)

    @app.post("/v1/models/{name}:predict", summary="Class probabilities of instances",
              openapi_extra={"requestBody": PREDICT_BODY},
              responses={400: {"description": "malformed body"}, 404: {"description": "no such model"},
                         413: {"description": "body over the limit"},
                         422: {"description": "an instance the model cannot take"}})
    async def predict(name: str, request: Request):
        """`{"instances": [...]}` in, `{"predictions": [{"label", "probabilities"}, ...]}` out;
        probabilities follow the order of the model's `classes`."""
        try:
            predictor = model_or_404(name)
            instances, return_inputs = parse_body(await read_body(request))
            decoded = await run_in_threadpool(decode_instances, predictor, instances, return_inputs)
            if batching:
                probs = await batchers[name].submit(decoded.X)
            else:
                probs = await run_in_threadpool(predictor.predict_proba, decoded.X)
                metrics.batch(name, decoded.X.shape[0])
            metrics.scored(name, decoded.X.shape[0])
            return Response(response_body(predictor, decoded, probs), media_type="application/json")
        except RequestError as exc:
            return _error(exc.status, exc.message)

    @app.get("/v1/models/{name}/weights", summary="Weight templates of a linear image model (for the page)")
    async def weights(name: str):
        try:
            predictor = model_or_404(name)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        templates = predictor.weight_templates()
        if templates is None:
            return _error(404, f"{name} is a {predictor.kind} model"
                               + ("" if predictor.image_shape else " on a table")
                               + "; weight templates exist for softmax and logistic image models.")
        limit = float(templates.abs().flatten().quantile(0.995)) or 1.0
        titles = (predictor.classes if predictor.kind == "softmax"
                  else [f"{predictor.classes[1]} vs {predictor.classes[0]}"])
        return _json({"shape": list(predictor.image_shape), "limit": limit, "titles": titles,
                      "templates": [[round(v, 5) for v in t.reshape(-1).tolist()] for t in templates]})

    @app.get("/v1/models/{name}/samples/random", summary="A random test sample of the run's dataset")
    async def random_sample(name: str, seed: int | None = None):
        try:
            predictor = model_or_404(name)
            x, label, what = await run_in_threadpool(_sample, predictor, seed)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        instance = x.tolist() if predictor.schema is None else predictor.schema.decode(x)  # a table's raw columns
        return _json({"index": int(what.rsplit(" ", 1)[1]), "label": label, "instance": instance})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        from softreg.serve.docs import render_docs

        return HTMLResponse(render_docs(app.openapi()), headers=PAGE_HEADERS)

    return app


def _sample(predictor, seed):
    try:
        return predictor.test_sample(predictor.random_test_index(seed))
    except UserInputError as exc:
        raise RequestError(404, str(exc)) from None


def _version() -> str:
    from softreg import __version__

    return __version__
