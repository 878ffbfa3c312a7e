"""My tasks (the first page after signing in) and the preferences (time zone)."""

from __future__ import annotations

from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console.auth import MEMBERS, Member, access, read_form
from services.console.i18n import N_, TZ_COOKIE, _, current_timezone, known_timezone
from services.console.rendering import Page, redirect
from services.console.tasks import collect_tasks
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

TASKS = Page("tasks/tasks.html", N_("My tasks"))
PREFERENCES = Page("tasks/preferences.html", N_("Preferences"))
TZ_COOKIE_MAX_AGE = 365 * 24 * 3600


@router.get(
    "/tasks",
    summary="My tasks: what the signed-in person has to do in every running cycle, soonest deadline first",
    response_class=HTMLResponse,
    **access(*MEMBERS),
)
async def tasks_page(request: Request, user: Member) -> HTMLResponse:
    found = await collect_tasks(Upstream(request, user.token), user)
    return TASKS.render(request, user, tasks=found.tasks, problems=found.problems)


@router.get("/preferences", summary="Preferences: the time zone times are shown in", response_class=HTMLResponse,
            **access(*MEMBERS))  # fmt: skip
async def preferences_page(request: Request, user: Member) -> HTMLResponse:
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return PREFERENCES.render(request, user, zones=["UTC", *zones], current=current_timezone().key)


@router.post("/preferences", summary="Save the time zone (a cookie)", **access(*MEMBERS))
async def save_preferences(request: Request, user: Member) -> Response:
    form = await read_form(request)
    zone = known_timezone(form.get("tz", "").strip())
    if zone is None:
        return redirect("/console/preferences", error=_("unknown time zone %(zone)s", zone=form.get("tz", "")))
    response = redirect("/console/tasks", msg=_("Times are now shown in %(zone)s.", zone=zone))
    response.set_cookie(TZ_COOKIE, zone, max_age=TZ_COOKIE_MAX_AGE, path="/", samesite="lax")
    return response
