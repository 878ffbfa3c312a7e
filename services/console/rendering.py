"""Turning a view's data into a page: the Jinja2 environment, the shared page context, messages.

Templates live in ``templates/`` (one folder per page family) and are autoescaped: every value
a view passes is escaped when it is written, so views pass data, never markup. User-facing text
goes through gettext (``_()`` here and in the templates, see :mod:`services.console.i18n`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from services.common.auth import Role
from services.common.params import APPROVERS, CALIBRATORS, EVERYONE, HR, LEADERS, MACHINE, OPS_ROLES, STAFF
from services.console.auth import POOL_READERS, TEAM_LEADS, ConsoleUser
from services.console.charts import heat_colour
from services.console.formats import fmt_date, fmt_dt, fmt_g, fmt_money, fmt_num, fmt_pct
from services.console.i18n import (
    LANGUAGES,
    N_,
    TZ_COOKIE,
    _,
    current_locale,
    current_timezone,
    gettext,
    html_lang,
    lookup_gettext,
    lookup_ngettext,
)
from services.console.upstream import Answer

__all__ = [
    "Notice",
    "Page",
    "build_templates",
    "cycle_path",
    "fmt_dt",
    "fmt_num",
    "pick",
    "problem",
    "redirect",
    "render",
    "word",
]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATUS_WORDS = frozenset(
    (
        # cycles, snapshot distribution, workflow outcomes
        N_("draft"), N_("active"), N_("paused"), N_("cancelled"), N_("closed"), N_("delivered"), N_("pending"),
        N_("completed"), N_("closed_at_deadline"), N_("extended"),
        # stages
        N_("goal_setting"), N_("tracking"), N_("evaluation"), N_("feedback"), N_("result_application"),
        # goals
        N_("submitted"), N_("approved"), N_("returned"), N_("frozen"),
        # tracking and ops
        N_("stale"), N_("fresh"), N_("ok"), N_("bad"), N_("overdue"), N_("late"), N_("deadline passed"),
        N_("reminder"), N_("escalation_head"), N_("escalation_hr"), N_("stale_kpi_reminder"),
        N_("stale_kpi_escalation"), N_("approval_reminder"), N_("approval_escalation"), N_("approval_escalation_hr"),
        N_("collaboration_report"), N_("collaboration_award"),
        # results, appeals, feedback
        N_("acknowledged"), N_("not acknowledged"), N_("under_review"), N_("upheld"), N_("adjusted"),
        N_("rejected"), N_("kudos"), N_("open"), N_("answered"), N_("declined"),
        # goal levels, strategy perspectives, goal kinds
        N_("company"), N_("department"), N_("individual"), N_("financial"), N_("customer"),
        N_("internal_process"), N_("learning_growth"),
        # review relations and scoring components, calibration flags, collaboration dimensions
        N_("self"), N_("manager"), N_("peer"), N_("cross_department"), N_("upward"), N_("kpi"),
        N_("collaboration"),
        N_("lenient"), N_("strict"), N_("responsiveness"), N_("data_quality"), N_("reliability"),
        # development plans, forced stages
        N_("forced"),
        # growth paths, the 9-box, committee decisions
        N_("ready"), N_("developing"), N_("not_yet"), N_("top_level"), N_("low"), N_("medium"), N_("high"),
        N_("in_progress"), N_("done"),
    )
)  # fmt: skip
"""API values shown as words (pills); anything else is shown as it came."""


# -- the environment ------------------------------------------------------------------------------
def build_templates() -> Jinja2Templates:
    """The console's templates: autoescaped, with gettext (``jinja2.ext.i18n``) and the formatters."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The lookups read the request's language from a context variable, so one environment serves
    # every language; newstyle gettext fills the placeholders and escapes the values it fills in.
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lookup_gettext, ngettext=lookup_ngettext, newstyle=True
    )
    environment.globals["cycle_path"] = cycle_path
    environment.filters.update(
        dt=fmt_dt, date=fmt_date, num=fmt_num, pct=fmt_pct, money=fmt_money, g=fmt_g, heat=heat_colour,
        quote=_quote, word=word, pick=pick,
    )  # fmt: skip
    return Jinja2Templates(env=environment)


def word(value: str) -> str:
    """A status word of an API (``draft``, ``under_review``...) in the page's language, as plain text.

    Not ``_()`` of the template: newstyle gettext marks its result safe, which is right for our
    catalogs but wrong for a value that came from an API.
    """
    return gettext(value) if value in STATUS_WORDS else value


def pick(value: Any) -> Any:
    """A text an API gives in both languages (``{"en": ..., "zh_Hans": ...}``) in the page's language."""
    if isinstance(value, dict) and "en" in value:
        chinese = value.get("zh_Hans") or value.get("zh")
        return chinese if current_locale().startswith("zh") and chinese else value["en"]
    return value


def _quote(value: Any) -> str:
    """A path segment, percent-encoded (ids in links)."""
    return quote(str(value), safe="")


# -- the page frame -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Notice:
    """A message box: kind '' (information), 'ok' or 'error'."""

    message: str
    kind: str = ""


def problem(answer: Answer, what: str) -> Notice:
    """Why part of a page is missing, in the API's words."""
    if answer.status == 403:
        return Notice(_("You may not see %(what)s: %(error)s", what=what, error=answer.error), "error")
    if answer.status == 404:
        return Notice(_("No %(what)s yet (%(error)s).", what=what, error=answer.error))
    return Notice(_("Could not load %(what)s: %(error)s", what=what, error=answer.error), "error")


def cycle_path(cycle_id: str, *rest: str) -> str:
    return "/".join([f"/console/cycles/{quote(cycle_id, safe='')}", *rest])


def redirect(path: str, *, msg: str | None = None, error: str | None = None) -> RedirectResponse:
    """Post/redirect/get: back to ``path`` (a ``#fragment`` kept last) with a short message shown there."""
    path, hash_sign, fragment = path.partition("#")
    sep = "&" if "?" in path else "?"
    if msg:
        path += f"{sep}msg={quote(msg[:300], safe='')}"
    elif error:
        path += f"{sep}error={quote(error[:500], safe='')}"
    return RedirectResponse(path + hash_sign + fragment, status_code=303)


def _nav(user: ConsoleUser | None) -> list[tuple[str, str]]:
    if user is None:
        return []
    nav = [(_("My tasks"), "/console/tasks"), (_("Cycles"), "/console/cycles")]
    if user.principal.employee_id and user.has(*EVERYONE):
        nav.append((_("My growth"), "/console/growth"))
    if user.has(*CALIBRATORS):
        nav.append((_("Committee"), "/console/committees"))
    if user.has(*HR):
        nav += [
            (_("Organisation"), "/console/org"),
            (_("Templates"), "/console/templates"),
            (_("Career frameworks"), "/console/career-frameworks"),
        ]
    if user.has(*MACHINE):
        nav.append((_("Audit log"), "/console/audit"))
    if user.has(*OPS_ROLES):
        nav.append((_("Ops"), "/console/ops"))
    return nav


def _cycle_nav(user: ConsoleUser, cycle_id: str, active: str) -> list[tuple[str, str, bool]]:
    """(label, link, current) of the cycle's sub-navigation, as far as the user's roles reach."""
    items: list[tuple[str, str]] = [
        ("overview", _("Overview")),
        ("goals", _("Goal tree")),
        ("progress", _("KPI progress")),
        ("scorecard", _("Scorecard")),
    ]
    writes_own = bool(user.principal.employee_id) and user.has(*STAFF)
    if writes_own:
        items += [
            ("my-goals", _("My goals")),
            ("reviews", _("My reviews")),
            ("feedback-requests", _("Feedback requests")),
        ]
    if user.has(*TEAM_LEADS):
        items.append(("team", _("Team")))
    if user.has(*APPROVERS):
        items.append(("approvals", _("Approvals")))
    if user.has(Role.DEPT_HEAD):
        items.append(("department", _("Department")))
    if user.has(*CALIBRATORS):
        items.append(("calibration", _("Calibration")))
    if user.has(*APPROVERS):
        items.append(("nine-box", _("Talent review")))
    if user.has(*LEADERS):
        items.append(("collaboration", _("Collaboration")))
    if user.has(*HR):
        items.append(("appeals", _("Appeals")))
    if user.has(*POOL_READERS):
        items.append(("pools", _("Bonus pools")))
    if user.has(*STAFF):  # who may list 1:1s
        items.append(("one-on-ones", _("1:1s")))
    if user.principal.employee_id:
        items.append(("me", _("My page")))
    links = [
        (label, cycle_path(cycle_id) if key == "overview" else cycle_path(cycle_id, key), key == active)
        for key, label in items
    ]
    if user.has(*OPS_ROLES):
        links.append((_("Ops"), f"/console/ops?cycle_id={quote(cycle_id, safe='')}", False))
    return links


def _flash(request: Request) -> list[Notice]:
    notices = []
    if message := request.query_params.get("msg"):
        notices.append(Notice(message[:300], "ok"))
    if error := request.query_params.get("error"):
        notices.append(Notice(error[:500], "error"))
    return notices


def render(
    request: Request,
    user: ConsoleUser | None,
    template: str,
    *,
    title: str,
    cycle_id: str | None = None,
    active: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` inside the console's frame: navigation, the user, messages, the language switch."""
    locale = current_locale()
    frame = {
        "title": title,
        "user": user,
        "nav": _nav(user),
        "cycle_id": cycle_id,
        "cycle_nav": _cycle_nav(user, cycle_id, active) if user is not None and cycle_id else [],
        "flash": _flash(request),
        "lang": html_lang(locale),
        "timezone": current_timezone().key,
        "has_tz_cookie": TZ_COOKIE in request.cookies,
        "languages": [
            (name, str(request.url.include_query_params(lang=code)), code == locale) for code, name in LANGUAGES.items()
        ],
    }
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, {**frame, **context}, status_code=status_code)


@dataclass(frozen=True)
class Page:
    """One page of the console: its template, its title (marked with ``N_``, translated when
    rendered) and its tab in the cycle's navigation."""

    template: str
    title: str
    tab: str = ""

    def render(
        self,
        request: Request,
        user: ConsoleUser | None,
        *,
        title: str | None = None,
        tab: str | None = None,
        cycle_id: str | None = None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """The page; ``title`` and ``tab`` override the page's own (a cycle's name, someone else's page)."""
        return render(
            request,
            user,
            self.template,
            title=gettext(self.title) if title is None else title,
            cycle_id=cycle_id,
            active=self.tab if tab is None else tab,
            status_code=status_code,
            **context,
        )
