"""Domain errors become HTTP errors here, in one place."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from feeds.errors import FeedsError, Forbidden, InvalidInput, NotFound, Unauthorized

log = logging.getLogger(__name__)

STATUS_FOR = (
    (NotFound, 404),
    (Unauthorized, 401),
    (Forbidden, 403),
    (InvalidInput, 422),
)


class ApiError(Exception):
    """An error a view raises to answer with a JSON body and a status."""

    def __init__(self, status: int, error: str, detail: object = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def json_error(status: int, error: str, detail: object = None) -> Response:
    response = jsonify({"error": error, "detail": detail})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="syndicate"'
    return response


def html_error(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return json_error(exc.status, exc.error, exc.detail)

    @app.errorhandler(FeedsError)
    def _feeds_error(exc: FeedsError) -> Response | tuple[str, int]:
        status = next((code for cls, code in STATUS_FOR if isinstance(exc, cls)), 400)
        if wants_json():
            detail = {"field": exc.field} if isinstance(exc, InvalidInput) and exc.field else None
            return json_error(status, exc.message, detail)
        return html_error(status, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | tuple[str, int]:
        status = exc.code or 500
        if wants_json():
            response = json_error(status, exc.name, exc.description)
        else:
            body, _ = html_error(status, exc.description or exc.name)
            response = app.make_response((body, status))
        for key, value in exc.get_headers():
            if key.lower() not in ("content-type", "content-length"):
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response | tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return json_error(500, "internal server error")
        return html_error(500, "")
