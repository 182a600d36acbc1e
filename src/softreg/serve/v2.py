"""Open Inference Protocol (v2) REST endpoints: server and model metadata, health, readiness, infer."""


from softreg.errors import UserInputError
from softreg.serve import schemas as s
from softreg.serve.body import read_body
from softreg.serve.errors import RequestError, json_response, response_of
from softreg.serve.signature import input_specs, output_specs
from softreg.serve.v2_body import model_input, parse_request, response

EXTENSIONS = ["binary_tensor_data", "classification"]
HEADER_LENGTH = "inference-header-content-length"
INFER_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"},
                             "example": {"id": "42", "inputs": [{"name": "features", "shape": [1, 4],
                                                                 "datatype": "FP32", "data": [1, 2, 1, 1]}]}},
        "application/octet-stream": s.BINARY,
    },
}


def add_routes(app, served, max_body_bytes: int, version: str) -> None:
    from fastapi import Request
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    def guarded(make):
        try:
            return make()
        except RequestError as exc:
            return response_of(exc)

    def model_metadata(name: str, version: str | None):
        predictor = served.get(name, version)
        return json_response({"name": predictor.name, "versions": served.versions(predictor.name),
                              "platform": f"softreg_{predictor.kind}",
                              "inputs": [t.v2() for t in input_specs(predictor)],
                              "outputs": [t.v2() for t in output_specs(predictor)]})

    def model_ready(name: str, version: str | None):
        predictor = served.get(name, version)
        served.require_ready(predictor)
        return json_response({"name": predictor.name, "ready": True})

    async def infer(name: str, version: str | None, request: Request):
        try:
            predictor = served.get(name, version)
            served.require_ready(predictor)
            raw = await read_body(request, max_body_bytes)
            parsed, X, notes = await run_in_threadpool(_decode, predictor, raw, request.headers.get(HEADER_LENGTH))
            scores = await served.score(predictor, X, notes)
            content, headers = response(predictor, parsed, scores)
            return Response(content, headers=headers, media_type=headers.pop("Content-Type"))
        except RequestError as exc:
            return response_of(exc)

    not_found = s.error("no such model or version")
    not_ready = {"model": s.NotReady, "description": "not ready: still loading"}
    metadata_responses = {200: {"model": s.ModelMetadata}, 404: not_found}
    ready_responses = {200: {"model": s.ModelReady}, 404: not_found, 503: not_ready}
    infer_responses = {200: {"model": s.InferenceResponse, "content": {"application/octet-stream": s.BINARY},
                             "description": "JSON, or JSON then binary outputs when asked (binary_data)"},
                       400: s.error("a malformed request or an input the model cannot take"), 404: not_found,
                       413: s.error("body over the limit"), 415: s.error("unknown Content-Encoding"),
                       503: not_ready}

    @app.get("/v2", summary="Server metadata", responses={200: {"model": s.ServerMetadata}})
    async def server_metadata():
        return json_response({"name": "softreg", "version": version, "extensions": EXTENSIONS})

    @app.get("/v2/health/live", summary="Liveness", responses={200: {"model": s.Live}})
    async def live():
        return json_response({"live": True})

    @app.get("/v2/health/ready", summary="Readiness: every model loaded",
             responses={200: {"model": s.Ready}, 503: not_ready})
    async def ready():
        if served.all_ready():
            return json_response({"ready": True})
        return json_response({"ready": False, "error": "still loading " + ", ".join(served.not_ready())}, 503)

    @app.get("/v2/models/{name}", summary="Model metadata: inputs and outputs", responses=metadata_responses)
    async def metadata(name: str):
        return guarded(lambda: model_metadata(name, None))

    @app.get("/v2/models/{name}/versions/{version}", summary="A version's metadata", responses=metadata_responses)
    async def version_metadata(name: str, version: str):
        return guarded(lambda: model_metadata(name, version))

    @app.get("/v2/models/{name}/ready", summary="Model readiness", responses=ready_responses)
    async def ready_model(name: str):
        return guarded(lambda: model_ready(name, None))

    @app.get("/v2/models/{name}/versions/{version}/ready", summary="A version's readiness", responses=ready_responses)
    async def ready_version(name: str, version: str):
        return guarded(lambda: model_ready(name, version))

    @app.post("/v2/models/{name}/infer", summary="Inference", openapi_extra={"requestBody": INFER_BODY},
              responses=infer_responses)
    async def infer_model(name: str, request: Request):
        """One input tensor (`features`, `images` or `rows`: see the model's metadata) in; `probabilities`,
        `label` and `label_index` out (or those named in `outputs`)."""
        return await infer(name, None, request)

    @app.post("/v2/models/{name}/versions/{version}/infer", summary="Inference on a version",
              openapi_extra={"requestBody": INFER_BODY}, responses=infer_responses)
    async def infer_version(name: str, version: str, request: Request):
        return await infer(name, version, request)


def _decode(predictor, raw: bytes, header_length: str | None):
    parsed = parse_request(raw, header_length)
    try:
        X, notes = model_input(predictor, parsed)
    except UserInputError as exc:
        raise RequestError(400, str(exc)) from None
    return parsed, X, notes
