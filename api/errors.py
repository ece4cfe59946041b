"""The API's error bodies and which statuses each route answers, for the OpenAPI document.

Every error is {"detail": "<a sentence saying what to fix>"}; a 422 adds the structured list.
"""

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str


class ValidationProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[ValidationProblem]


_MEANINGS = {
    400: "The body could not be parsed (not valid JSON).",
    401: "Missing, invalid or expired token: log in again.",
    403: "Only the owner may do this.",
    404: "No such resource, or not yours to see.",
    409: "Not possible in the resource's current status.",
    410: "Removed for good, as the retention settings say.",
    413: "The upload is over the limit.",
    422: "The request is malformed; `detail` says what to fix.",
    429: "Too many requests, or too much of your work queued; see Retry-After.",
    507: "The farm's object store has too little free space for the upload; try again later.",
    503: "A dependency (database, Redis, object storage, work queue) is down; see Retry-After.",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that can answer these error statuses."""
    return {
        status: {
            "model": ValidationErrorBody if status == 422 else ErrorBody,
            "description": _MEANINGS[status],
        }
        for status in statuses
    }


def json_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """responses() for a route whose success is not JSON (an event stream): its errors are
    documented as JSON explicitly, since FastAPI would give them the route's media type.
    described: a status's own meaning for this route, by "s<status>"."""
    return {
        status: {
            "description": described.get(f"s{status}", _MEANINGS[status]),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/"
                        + ("ValidationErrorBody" if status == 422 else "ErrorBody")}}},
        }
        for status in statuses
    }  # fmt: skip
