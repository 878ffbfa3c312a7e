"""Forms whose mistakes come back at the field: the posted values and the API's message per field.

A form posts to the console; the console sends the values to the API as they were typed (so the
API's own validation judges them) and, when the API refuses, renders the same page again with
the values kept and each message next to its field (:class:`FormState`). Only a success
redirects (post/redirect/get).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import HTMLResponse

from services.console.upstream import Answer

__all__ = ["FormState", "number", "optional", "refused", "split_list"]


HIDDEN_INPUTS = frozenset({"rated_department_id", "department_id", "employee_id", "giver_id", "level"})
"""API field names that some console forms post as hidden inputs (``templates/**``: ``type="hidden"``)."""


@dataclass
class FormState:
    """One form: the values to show, the message of each field, and a message for the whole form."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    form_id: str = ""
    """Which of a page's forms this state belongs to (a page may hold several)."""

    @classmethod
    def refused(
        cls, values: Mapping[str, str], answer: Answer, *, form_id: str = "", rename: Mapping[str, str] | None = None
    ) -> FormState:
        """The state after the API refused ``values``: field messages where the API named a field
        (``rename`` maps an API field to the form's input name), the whole answer otherwise."""
        errors: dict[str, str] = {}
        for api_field, text in answer.fields.items():
            errors.setdefault((rename or {}).get(api_field, api_field), text)
        shown = {k: v for k, v in values.items() if k != "csrf"}
        # A message for a field some form posts as a hidden input would be invisible there: the whole
        # answer is shown at the form too (a visible input of that name keeps its own message).
        unplaced = [name for name in errors if name not in shown or name in HIDDEN_INPUTS]
        return cls(shown, errors, answer.error if not errors or unplaced else None, form_id)

    def of(self, form_id: str) -> FormState:
        """This state if it belongs to ``form_id``, else an empty one (the page's other forms)."""
        return self if self.form_id == form_id else FormState(form_id=form_id)

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)


def refused(page: HTMLResponse) -> HTMLResponse:
    """A page shown again for a refused form: 422, so that nothing takes it for a success."""
    page.status_code = 422
    return page


def optional(value: str | None) -> str | None:
    """A form value, or None when left blank (the API's default applies)."""
    value = (value or "").strip()
    return value or None


def number(value: str | None) -> str | None:
    """A number as typed (a decimal comma becomes a point); the API validates it, so a typo is
    reported at its field."""
    value = optional(value)
    return value.replace(",", ".") if value is not None and value.count(",") == 1 and "." not in value else value


def split_list(value: str | None, separators: Iterable[str] = (",", "\n")) -> list[str]:
    text = value or ""
    for separator in separators:
        text = text.replace(separator, "\n")
    return [part.strip() for part in text.split("\n") if part.strip()]
