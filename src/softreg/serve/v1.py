"""TF-Serving / KServe v1 endpoints: model status, metadata and predict, with or without a version in the path."""


from softreg.errors import UserInputError
from softreg.serve import schemas as s
from softreg.serve import signature
from softreg.serve.body import read_body
from softreg.serve.errors import RequestError, json_response, response_of
from softreg.serve.v1_body import metadata, parse_body, response_body

PREDICT_BODY = {
    "required": True,
    "content": {"application/json": {
        "schema": {"type": "object", "properties": {
            "instances": {"type": "array", "minItems": 1, "description": "the row form", "items": {"oneOf": [
                {"type": "array", "items": {"type": "number"}, "description": "raw feature values "
                 "(for image models the flattened pixels, 0..pixel_max)"},
                {"type": "object", "required": ["b64"], "properties": {"b64": {
                    "type": "string", "description": "base64 of a PNG, JPEG, GIF, BMP or WebP image"}}},
                {"type": "object", "description": "{feature name: value}, for tables with named features"},
                {"type": "string", "description": "\"index:value ...\", for sparse models"}]}},
            "inputs": {"description": "the columnar form: a list of instances, or {column: [values]}",
                       "oneOf": [{"type": "array", "minItems": 1}, {"type": "object"}]},
            "signature_name": {"type": "string", "enum": ["serving_default"]},
            "return_inputs": {"type": "boolean", "description": "also return what the model saw"}}},
        "example": {"instances": [[0, 0, 5, 13, 9, 1, 0, 0] + [0] * 56]}}},
}
NOT_READY = {"model": s.NotReady, "description": "the model is still loading"}


def add_routes(app, served, max_body_bytes: int) -> None:
    from fastapi import Request
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    def status(name: str, version: str | None):
        try:
            predictor = served.get(name, version)
            if not served.is_ready(predictor):
                return json_response({"name": name, "ready": False, "error": f"model {name!r} is still loading"},
                                     503)
            return json_response(predictor.describe())
        except RequestError as exc:
            return response_of(exc)

    async def predict(name: str, version: str | None, request: Request):
        try:
            predictor = served.get(name, version)
            served.require_ready(predictor)
            raw = await read_body(request, max_body_bytes)
            body, X, notes = await run_in_threadpool(_decode, predictor, raw)
            scores = await served.score(predictor, X, notes)
            return Response(response_body(predictor, body, X, scores), media_type="application/json")
        except RequestError as exc:
            return response_of(exc)

    def meta(name: str, version: str | None):
        try:
            return json_response(metadata(served.get(name, version), signature))
        except RequestError as exc:
            return response_of(exc)

    status_responses = {200: {"model": s.ModelStatus}, 404: s.error("no such model or version"),
                        503: {"model": s.ModelNotReady, "description": "the model is still loading"}}
    predict_responses = {200: {"model": s.Predictions | s.Columnar,
                               "description": "the row form's or the columnar form's answer"},
                         400: s.error("not JSON, or not a v1 body"), 404: s.error("no such model or version"),
                         413: s.error("body over the limit"), 415: s.error("unknown Content-Encoding"),
                         422: s.error("an instance the model cannot take"), 503: NOT_READY}
    meta_responses = {200: {"model": s.V1Metadata}, 404: s.error("no such model or version")}

    @app.get("/v1/models", summary="The models this server has", responses={200: {"model": s.ModelList}})
    async def list_models():
        docs = []
        for name in served.names():
            predictor = served.get(name)
            docs.append(predictor.describe() if served.is_ready(predictor) else
                        {"name": name, "ready": False, "error": f"model {name!r} is still loading"})
        return json_response({"models": docs})

    @app.get("/v1/models/{name}", summary="A model's status and what it expects (KServe v1)",
             responses=status_responses)
    async def model_status(name: str):
        return status(name, None)

    @app.get("/v1/models/{name}/versions/{version}", summary="A version's status", responses=status_responses)
    async def version_status(name: str, version: str):
        return status(name, version)

    @app.get("/v1/models/{name}/metadata", summary="The model's signature (TF-Serving metadata)",
             responses=meta_responses)
    async def model_metadata(name: str):
        return meta(name, None)

    @app.get("/v1/models/{name}/versions/{version}/metadata", summary="A version's signature",
             responses=meta_responses)
    async def version_metadata(name: str, version: str):
        return meta(name, version)

    @app.post("/v1/models/{name}:predict", summary="Class probabilities of instances",
              openapi_extra={"requestBody": PREDICT_BODY}, responses=predict_responses)
    async def model_predict(name: str, request: Request):
        """`{"instances": [...]}` in, `{"predictions": [{"label", "probabilities"}, ...]}` out (or the columnar
        `{"inputs": ...}` in, `{"outputs": ...}` out); probabilities follow the order of the model's `classes`."""
        return await predict(name, None, request)

    @app.post("/v1/models/{name}/versions/{version}:predict", summary="Class probabilities from a version",
              openapi_extra={"requestBody": PREDICT_BODY}, responses=predict_responses)
    async def version_predict(name: str, version: str, request: Request):
        return await predict(name, version, request)


def _decode(predictor, raw: bytes):
    """(request, X, notes) of a v1 body; library errors about the instances become 422s."""
    body = parse_body(raw, predictor.inputs().names)
    try:
        X, notes = predictor.encode_inputs(body.instances, names=[f"instance {i}" for i in range(len(body.instances))])
    except UserInputError as exc:
        raise RequestError(422, str(exc)) from None
    return body, X, notes

