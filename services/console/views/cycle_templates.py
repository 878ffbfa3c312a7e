"""Cycle templates (HR): the list, and editing one: the stage plan as a table, the rest of the
template as its JSON document. Saving makes a new version (cycles already created keep their
copy); a refusal lists the API's message per field (``stages.0.duration_days: ...``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import HR
from services.console.auth import ConsoleUser, HrAdmin, access, read_form
from services.console.forms import FormState, number, refused
from services.console.i18n import N_, _
from services.console.params import TemplateId
from services.console.rendering import Page, problem, redirect
from services.console.upstream import Answer, Upstream

__all__ = ["router"]

router = APIRouter()

TEMPLATES = Page("dashboard/templates.html", N_("Cycle templates"))
TEMPLATE = Page("dashboard/template.html", N_("Cycle template"))


@router.get("/templates", summary="Cycle templates (HR): list them, create one from JSON",
            response_class=HTMLResponse, **access(*HR))  # fmt: skip
async def templates_page(request: Request, user: HrAdmin) -> HTMLResponse:
    templates = await Upstream(request, user.token).get("cycles", "/v1/templates", {"limit": 100})
    return TEMPLATES.render(
        request, user, problem=None if templates.ok else problem(templates, _("templates")), templates=templates.items()
    )


def _stage_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    stages = spec.get("stages")
    return [s for s in stages if isinstance(s, dict)] if isinstance(stages, list) else []


async def template_page_for(
    request: Request, user: ConsoleUser, template_id: str, state: FormState | None = None
) -> HTMLResponse:
    template = await Upstream(request, user.token).get("cycles", f"/v1/templates/{quote(template_id, safe='')}")
    if not template.ok:
        return TEMPLATE.render(request, user, problem=problem(template, _("this template")),
                               status_code=template.status if template.status in (403, 404) else 502)  # fmt: skip
    spec: dict[str, Any] = template.data["spec"]
    state = state or FormState(form_id="template")
    return TEMPLATE.render(
        request,
        user,
        title=_("Template: %(name)s", name=template.data["name"]),
        problem=None,
        t=template.data,
        stages=_stage_rows(spec),
        document=state.value("document") or json.dumps(spec, ensure_ascii=False, indent=2),
        state=state,
    )


@router.get("/templates/{template_id}", summary="Edit a cycle template (HR)", response_class=HTMLResponse,
            **access(*HR))  # fmt: skip
async def template_page(request: Request, template_id: TemplateId, user: HrAdmin) -> HTMLResponse:
    return await template_page_for(request, user, template_id)


def _merge_stages(spec: dict[str, Any], form: dict[str, str]) -> None:
    """The stage table's values into the document (the table wins over the JSON for those fields)."""
    for index, stage in enumerate(_stage_rows(spec)):
        for key in ("duration_days", "deadline_days"):
            typed = form.get(f"stages.{index}.{key}")
            if typed is not None:
                value = number(typed)
                stage[key] = None if value is None else (int(value) if value.isdigit() else value)


async def _save(request: Request, user: ConsoleUser, template_id: str | None) -> Response:
    form = await read_form(request)
    state_id = "template" if template_id else "new-template"
    try:
        spec = json.loads(form.get("document", ""))
        if not isinstance(spec, dict):
            raise ValueError("the document must be a JSON object")
    except ValueError as exc:
        state = FormState(dict(form), {"document": _("not valid JSON: %(error)s", error=exc)}, None, state_id)
        return await _again(request, user, template_id, state)
    _merge_stages(spec, form)
    api = Upstream(request, user.token)
    if template_id:
        answer = await api.put("cycles", f"/v1/templates/{quote(template_id, safe='')}", spec)
    else:
        answer = await api.post("cycles", "/v1/templates", spec)
    if not answer.ok:
        return await _again(request, user, template_id, _refused(form, answer, state_id))
    saved = answer.data
    message = _("Saved %(name)s, version %(version)s.", name=saved["name"], version=saved["version"])
    return redirect(f"/console/templates/{quote(saved['template_id'], safe='')}", msg=message)


def _refused(form: dict[str, str], answer: Answer, form_id: str) -> FormState:
    """Field messages of the stage table stay at their cell; the others are listed with the document."""
    state = FormState.refused(form, answer, form_id=form_id)
    listed = [f"{name}: {message}" for name, message in state.errors.items() if name not in form]
    state.errors = {name: message for name, message in state.errors.items() if name in form}
    if listed:
        state.errors["document"] = "; ".join(listed)
        state.message = None
    return state


async def _again(request: Request, user: ConsoleUser, template_id: str | None, state: FormState) -> Response:
    if template_id:
        return refused(await template_page_for(request, user, template_id, state))
    templates = await Upstream(request, user.token).get("cycles", "/v1/templates", {"limit": 100})
    return refused(TEMPLATES.render(request, user, problem=None, templates=templates.items(), state=state))


@router.post("/templates/{template_id}", summary="Save a template (a new version; HR)", **access(*HR))
async def save_template(request: Request, template_id: TemplateId, user: HrAdmin) -> Response:
    return await _save(request, user, template_id)


@router.post("/templates", summary="Create a template from its JSON document (HR)", **access(*HR))
async def create_template(request: Request, user: HrAdmin) -> Response:
    return await _save(request, user, None)
