"""Errors on demand, to show that every one of them reaches the client as the JSON envelope."""

from __future__ import annotations

from flask import Blueprint, Response, abort

from ..errors import error_response

bp = Blueprint("errors_demo", __name__)


class ValidationFailed(Exception):
    """A domain error with its own handler, the way real apps report bad input."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@bp.app_errorhandler(ValidationFailed)
def _validation_failed(exc: ValidationFailed) -> Response:
    return error_response(400, f"invalid {exc.field}: {exc.problem}")


@bp.get("/errors/crash")
def crash() -> Response:
    raise RuntimeError("deliberate crash: the client must see JSON 500, never this traceback")


@bp.get("/errors/validation")
def validation() -> Response:
    raise ValidationFailed("email", "must contain '@'")


@bp.get("/errors/teapot")
def teapot() -> Response:
    abort(418, "I'm a teapot")
