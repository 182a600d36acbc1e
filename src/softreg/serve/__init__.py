"""Serving trained runs over HTTP: ``create_app`` (FastAPI) and ``serve`` (uvicorn), with a page to draw on.

FastAPI and uvicorn are an optional extra: ``pip install 'softreg[serve]'``.
"""

from __future__ import annotations


def require_serving() -> None:
    """Fail with one line naming the fix when FastAPI or uvicorn is missing."""
    from softreg.errors import UserInputError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UserInputError(f"serving needs FastAPI and uvicorn ({exc.name} is not installed); "
                             "run: pip install 'softreg[serve]'") from None
