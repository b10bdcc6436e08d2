"""Errors as RFC 9457 problem details (``application/problem+json``), converted only here, at the boundary."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ConfigError, IngestError, LLMError, LLMUnavailableError, RagentError, RetrievalError

logger = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 409: "Conflict",
          413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
          500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class Problem(HTTPException):
    """Raise this from a route: status, an actionable ``detail``, and optional extra members."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(status_code=status, detail=detail)
        self.extra = extra


def problem(status: int, detail: str, request: Request | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                            "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_for(e: RagentError) -> int:
    if isinstance(e, LLMUnavailableError):
        return 503
    if isinstance(e, LLMError):
        return 502
    if isinstance(e, ConfigError):
        return 400
    if isinstance(e, IngestError):
        return 422
    if isinstance(e, RetrievalError):
        return 503
    return 500


def _framework_detail(request: Request, status: int, detail: str) -> str:
    """An actionable detail for the framework's terse ones (unmatched route, wrong method, unparsable body)."""
    if status == 404 and detail == "Not Found":
        return (f"no route {request.method} {request.url.path}: GET /docs lists the routes (a path parameter "
                "cannot hold '/', even encoded as %2F)")
    if status == 405 and detail == "Method Not Allowed":
        return f"{request.method} is not allowed on {request.url.path}: GET /docs lists the methods of each route"
    if status == 400 and detail == "There was an error parsing the body":
        return "the request body is not valid JSON (malformed, or nested too deeply)"
    return detail


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, e: Problem) -> JSONResponse:
        return problem(e.status_code, str(e.detail), request, **e.extra)

    @app.exception_handler(StarletteHTTPException)  # also the router's own 404/405 and the body parser's 400
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return problem(e.status_code, _framework_detail(request, e.status_code, str(e.detail)), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(err.get("loc", ())), "msg": err.get("msg", "")} for err in e.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        return problem(422, f"invalid request: {where}: {first['msg']}", request, errors=errors)

    @app.exception_handler(RagentError)
    async def _ragent(request: Request, e: RagentError) -> JSONResponse:
        return problem(status_for(e), str(e), request)

    @app.exception_handler(Exception)
    async def _crash(request: Request, e: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return problem(500, f"internal error ({type(e).__name__}); see the API log", request)
