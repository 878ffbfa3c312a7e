"""The errors a service reports to its callers, and the body they are sent in.

``DomainError`` is raised by service functions (pure rules included), so it lives here, free of
FastAPI, SQLAlchemy and Kafka; the app factory turns it into a 4xx response.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROBLEM_SCHEMA", "DomainError"]


class DomainError(Exception):
    """A rule violation reported to the caller as a 4xx with a readable message naming the field."""

    def __init__(self, message: str, *, status_code: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.field = field


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, naming the field(s)."},
        "field": {"type": "string", "description": "The offending field of a rule violation."},
        "errors": {
            "type": "array",
            "description": "One entry per invalid field (request validation).",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
"""The body of every 4xx the services send: request validation errors and ``DomainError``."""
