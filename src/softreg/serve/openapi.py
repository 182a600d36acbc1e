"""The OpenAPI document as the server really answers: FastAPI's, less the validation errors it adds
on its own (``{"detail": [...]}``, which this server never sends), plus the v2 request's schema."""

from __future__ import annotations

from softreg.serve.schemas import InferenceRequest

VALIDATION = "#/components/schemas/HTTPValidationError"


def install(app) -> None:
    """Make ``app.openapi()`` (and /openapi.json) return the document built by ``document``."""
    from fastapi.openapi.utils import get_openapi

    def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = document(get_openapi(title=app.title, version=app.version,
                                                      description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi


def document(doc: dict) -> dict:
    for methods in doc.get("paths", {}).values():
        for op in methods.values():
            responses = op.get("responses", {})
            for code in [c for c, r in responses.items() if _refers(r, VALIDATION)]:
                del responses[code]
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    request = InferenceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(request.pop("$defs", {}))
    schemas["InferenceRequest"] = request
    return doc


def _refers(node, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_refers(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_refers(v, ref) for v in node)
    return False
