"""Errors as both protocols send them: a status and one JSON object ``{"error": "..."}`` naming the problem and the fix."""

from __future__ import annotations

import json


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx, or 503 while loading) and a message naming the fix.

    close : the connection is closed after the answer (a body over the limit was not read whole).
    extra : more fields of the JSON answer (``{"ready": false}`` for a model still loading).
    """

    def __init__(self, status: int, message: str, *, close: bool = False, extra: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.extra = extra or {}
        self.headers = headers or {}


def json_response(doc, status: int = 200, headers: dict | None = None):
    from starlette.responses import Response

    return Response(json.dumps(doc, separators=(",", ":")), status_code=status, media_type="application/json",
                    headers=headers)


def error_response(status: int, message: str, *, close: bool = False, extra: dict | None = None,
                   headers: dict | None = None):
    headers = dict(headers or {})
    if close:
        headers["Connection"] = "close"
    return json_response({**(extra or {}), "error": " ".join(str(message).split())}, status, headers)


def response_of(exc: RequestError):
    return error_response(exc.status, exc.message, close=exc.close, extra=exc.extra, headers=exc.headers)
