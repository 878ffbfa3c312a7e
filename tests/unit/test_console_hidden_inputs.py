"""A refusal naming a field that a form posts as a hidden input is also shown at the form (never lost)."""

from __future__ import annotations

import re
from pathlib import Path

from services.console.forms import HIDDEN_INPUTS, FormState
from services.console.upstream import Answer

TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "console" / "templates"
CONSOLE_ONLY = {"back", "csrf", "done", "mode", "next", "roles", "sub"}
"""Hidden inputs the console itself reads (never an API field)."""


def test_every_hidden_api_field_of_the_templates_is_listed() -> None:
    hidden = {
        m for t in TEMPLATES.rglob("*.html") for m in re.findall(r'type="hidden" name="([a-z_]+)"', t.read_text())
    }
    assert hidden - CONSOLE_ONLY <= HIDDEN_INPUTS, sorted(hidden - CONSOLE_ONLY - HIDDEN_INPUTS)


def test_a_message_for_a_hidden_field_is_shown_at_the_form() -> None:
    answer = Answer(
        409, None, "evaluation answered 409: sales has not declared it", {"rated_department_id": "not declared"}
    )
    state = FormState.refused({"rated_department_id": "sales", "comment": "x"}, answer, form_id="rate-sales")
    assert state.message == "evaluation answered 409: sales has not declared it"
    visible = FormState.refused({"comment": ""}, Answer(422, None, "bad", {"comment": "required"}), form_id="f")
    assert visible.message is None and visible.errors == {"comment": "required"}
