""" "My tasks": what each person has to do now, across the running cycles, read from the APIs.

The console keeps no task list of its own. For every active or paused cycle it asks the APIs
the signed-in person may call, with their own token, and turns the answers into tasks: goals
to write, submit or approve, reviews to write, raters to nominate, results to acknowledge,
appeals to resolve, stale data to send, check-ins due, feedback colleagues asked for,
department KPIs and collaboration ratings, and HR's cycle work (a blocked stage, an incident,
calibration, pools). Each task has its deadline (the stage's, from the cycle's schedule, or the
API's own due time) and a link to the form that does it. An API that refuses or is down leaves
a notice, not a broken page.

Every rule reads data, not dates: a goal in draft is a task whatever the calendar says, so HR
forcing a stage early never hides work that still waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from services.common.auth import Role
from services.common.params import APPROVERS, HR, STAFF
from services.console.auth import FINANCE, ConsoleUser
from services.console.i18n import _, ngettext
from services.console.rendering import cycle_path
from services.console.upstream import Answer, Upstream

__all__ = ["Task", "TaskList", "collect_tasks"]

RUNNING = ("active", "paused")
CHECK_IN_GOALS = 5
"""Own goals whose check-in cadence is asked (one call each)."""
OPEN_APPEALS = ("submitted", "under_review")
QUESTION_IN_TITLE = 120
"""Characters of a feedback request's question shown in its task (the form shows all of it)."""


@dataclass(frozen=True)
class Task:
    """One thing to do: what, in which cycle, by when, and where the form is."""

    kind: str
    cycle_id: str
    cycle_name: str
    title: str
    link: str
    due: str | None = None
    """An ISO date or timestamp; None when the work has no deadline."""
    detail: str = ""

    @property
    def overdue(self) -> bool:
        if not self.due:
            return False
        if len(self.due) == 10:  # a date: due by the end of that day
            return self.due < date.today().isoformat()
        return self.due < datetime.now(UTC).isoformat()

    def sort_key(self) -> tuple[int, str, str]:
        return (0 if self.due else 1, self.due or "", self.title)


@dataclass
class TaskList:
    tasks: list[Task] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, task: Task) -> None:
        self.tasks.append(task)

    def note(self, answer: Answer, what: str) -> None:
        """An API that could not answer: say so (a 403 only means the role does not reach it)."""
        if not answer.ok and answer.status not in (403, 404):
            self.problems.append(_("Could not check %(what)s: %(error)s", what=what, error=answer.error))


@dataclass(frozen=True)
class CycleView:
    """One running cycle as the rules see it."""

    cycle_id: str
    name: str
    deadlines: dict[str, str]
    """Stage -> its deadline date (ISO)."""
    departments: tuple[str, ...] = ()

    @classmethod
    def of(cls, cycle: dict[str, Any]) -> CycleView:
        schedule = cycle.get("schedule") or []
        deadlines = {s["stage"]: s["deadline"] for s in schedule}
        return cls(cycle["cycle_id"], cycle["name"], deadlines, tuple(cycle.get("department_ids") or ()))

    def task(self, kind: str, title: str, link: str, *, stage: str | None = None, due: str | None = None,
             detail: str = "") -> Task:  # fmt: skip
        return Task(kind, self.cycle_id, self.name, title, link, due or self.deadlines.get(stage or ""), detail)

    def path(self, *rest: str) -> str:
        return cycle_path(self.cycle_id, *rest)

    @property
    def base(self) -> str:
        return f"/v1/cycles/{quote(self.cycle_id, safe='')}"


async def collect_tasks(api: Upstream, user: ConsoleUser) -> TaskList:
    """Every task of ``user`` in every running cycle, soonest deadline first."""
    found = TaskList()
    cycles = await api.get("cycles", "/v1/cycles", {"limit": 100})
    if not cycles.ok:
        found.note(cycles, _("cycles"))
        return found
    running = [CycleView.of(c) for c in cycles.items() if c["status"] in RUNNING]
    await asyncio.gather(
        *(_cycle_tasks(api, user, cycle, found) for cycle in running),
        _decisions(api, user, found, {c["cycle_id"]: c["name"] for c in cycles.items()}),
    )
    found.tasks.sort(key=Task.sort_key)
    return found


Rule = Callable[[Upstream, ConsoleUser, CycleView, TaskList], Awaitable[None]]


async def _cycle_tasks(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    rules: list[Rule] = []
    if user.principal.employee_id and user.has(*STAFF):
        rules += [_own_goals, _own_reviews, _own_result, _check_ins, _feedback_requests]
    if user.has(*APPROVERS):
        rules.append(_approvals)
    if user.has(Role.MANAGER) and user.principal.employee_id:
        rules.append(_raters)
    if user.has(Role.DEPT_HEAD) and user.principal.department_id:
        rules += [_department_kpis, _stale_data, _collaboration_ratings]
    if user.has(*HR):
        rules += [_cycle_control, _appeals]
    if user.has(*HR, FINANCE):
        rules.append(_pools)
    await asyncio.gather(*(rule(api, user, cycle, found) for rule in rules))


async def _decisions(api: Upstream, user: ConsoleUser, found: TaskList, cycle_names: dict[str, str]) -> None:
    """The committee's decisions assigned to the person and not finished, due when the committee said."""
    if not user.principal.employee_id:
        return
    mine = await api.get("committee", "/v1/decisions/mine")
    found.note(mine, _("your committee decisions"))
    for decision in mine.items():
        if decision["status"] in ("open", "in_progress"):
            title = _("Committee decision: %(title)s", title=decision["title"])
            cycle = cycle_names.get(decision["cycle_id"], "")
            detail = decision.get("description", "")[:160]
            found.add(Task("committee_decision", decision["cycle_id"], cycle, title, "/console/decisions",
                           decision["due_at"], detail))  # fmt: skip


# -- employees ----------------------------------------------------------------------------------
async def _own_goals(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    me = user.principal.employee_id
    settings, goals = await asyncio.gather(
        api.get("goals", f"{cycle.base}/settings"),
        api.get("goals", f"{cycle.base}/goals", {"employee_id": me, "level": "individual", "limit": 100}),
    )
    found.note(goals, _("your goals"))
    if not settings.ok or settings.data.get("frozen") or not goals.ok:
        return
    items = goals.items()
    link = cycle.path("my-goals")
    if not items:
        found.add(cycle.task("write_goals", _("Write your goals"), link, stage="goal_setting"))
        return
    drafts = [g for g in items if g["status"] in ("draft", "returned")]
    returned = [g for g in drafts if g["status"] == "returned"]
    if returned:
        title = ngettext("Rework %(num)d returned goal", "Rework %(num)d returned goals", len(returned))
        detail = "; ".join(f"{g['name']}: {g.get('status_comment') or ''}" for g in returned)
        found.add(cycle.task("rework_goals", title, link, stage="goal_setting", detail=detail))
    elif drafts:
        title = ngettext("Submit %(num)d draft goal", "Submit %(num)d draft goals", len(drafts))
        found.add(cycle.task("submit_goals", title, link, stage="goal_setting"))


async def _own_reviews(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    pending = await api.get(
        "evaluation", f"{cycle.base}/assignments", {"rater_id": user.principal.employee_id, "status": "pending"}
    )
    found.note(pending, _("your reviews"))
    for assignment in pending.items():
        if assignment["rater_id"] != user.principal.employee_id:
            continue
        relation = assignment["relation"]
        if relation == "self":
            title = _("Write your self review")
        elif relation == "manager":
            title = _("Write the manager review of %(employee)s", employee=assignment["reviewee_id"])
        elif relation == "upward":
            title = _("Review your manager %(employee)s (anonymous)", employee=assignment["reviewee_id"])
        else:
            title = _("Write a peer review of %(employee)s", employee=assignment["reviewee_id"])
        link = cycle.path("reviews", quote(assignment["assignment_id"], safe=""))
        found.add(cycle.task(f"review_{relation}", title, link, stage="evaluation"))


async def _own_result(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    me = user.principal.employee_id or ""
    result = await api.get("feedback", f"{cycle.base}/results/{quote(me, safe='')}")
    if result.ok and result.data.get("released_at") and not result.data.get("acknowledged_at"):
        found.add(
            cycle.task(
                "acknowledge_result",
                _("Read and acknowledge your result"),
                cycle.path("people", quote(me, safe="")),
                stage="feedback",
                detail=_("You may appeal until %(when)s.", when=result.data.get("appeal_deadline") or "—"),
            )
        )
    elif not result.ok:
        found.note(result, _("your result"))


async def _check_ins(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    me = user.principal.employee_id or ""
    goals = await api.get(
        "goals", f"{cycle.base}/goals", {"employee_id": me, "level": "individual", "status": "frozen", "limit": 20}
    )
    tracked = goals.items()[:CHECK_IN_GOALS]
    answers = await asyncio.gather(
        *(api.get("tracking", f"{cycle.base}/kpis/{quote(g['goal_id'], safe='')}/check-ins", {"limit": 1})
          for g in tracked)
    )  # fmt: skip
    for goal, answer in zip(tracked, answers, strict=True):
        if answer.ok and answer.data.get("overdue"):
            found.add(
                cycle.task(
                    "check_in",
                    _("Check in on '%(goal)s'", goal=goal["name"]),
                    cycle.path("people", quote(me, safe="")) + "#check-in",
                    due=answer.data.get("next_due_at"),
                )
            )


async def _feedback_requests(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    """Each open request asked of you: answer or decline it, by its due date when the requester gave one."""
    me = user.principal.employee_id
    listed = await api.get("feedback", f"{cycle.base}/feedback-requests", {"status": "open", "limit": 500})
    found.note(listed, _("feedback requests"))
    # The list also holds your own requests and, for a manager, the reports': only those asked of you are work.
    asked = [r for r in listed.items() if r["giver_id"] == me]
    if not asked:
        return
    people = {r["requester_id"]: r.get("requester_name") or r["requester_id"] for r in asked}
    for request in asked:
        question = request["question"]
        if len(question) > QUESTION_IN_TITLE:
            question = question[: QUESTION_IN_TITLE - 1] + "…"
        found.add(
            cycle.task(
                "answer_feedback_request",
                _("Feedback requested by %(name)s: %(question)s",
                  name=people.get(request["requester_id"], request["requester_id"]), question=question),
                cycle.path("feedback-requests", str(request["id"])),
                due=request.get("due_date"),
            )
        )  # fmt: skip


# -- approvers and managers ---------------------------------------------------------------------
async def _approvals(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    submitted = await api.get("goals", f"{cycle.base}/goals", {"status": "submitted", "limit": 500})
    found.note(submitted, _("goals to approve"))
    me = user.principal.employee_id
    waiting = [g for g in submitted.items() if not me or g.get("employee_id") != me]
    if waiting:
        owners = sorted({g.get("employee_id") or g.get("department_id") or "" for g in waiting})
        title = ngettext("Approve or return %(num)d submitted goal", "Approve or return %(num)d submitted goals",
                         len(waiting))  # fmt: skip
        found.add(cycle.task("approve_goals", title, cycle.path("approvals"), stage="goal_setting",
                             detail=", ".join(owners[:8])))  # fmt: skip


async def _raters(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    me = user.principal.employee_id
    assignments, config = await asyncio.gather(
        api.get("evaluation", f"{cycle.base}/assignments", {"limit": 500}),
        api.get("evaluation", f"{cycle.base}/config"),
    )
    rows = assignments.items()
    reports = {a["reviewee_id"] for a in rows if a["relation"] == "manager" and a["rater_id"] == me}
    if not reports:
        return
    limits = (config.data or {}).get("rater_limits", {}) if config.ok else {}
    needed = int((limits.get("peer") or {}).get("min", 0))
    open_reports = {a["reviewee_id"] for a in rows if a["status"] == "pending" and a["reviewee_id"] in reports}
    short = sorted(
        r for r in open_reports
        if sum(1 for a in rows if a["reviewee_id"] == r and a["relation"] in ("peer", "cross_department"))
        < max(needed, 1)
    )  # fmt: skip
    if short:
        title = ngettext("Nominate peer raters for %(num)d report", "Nominate peer raters for %(num)d reports",
                         len(short))  # fmt: skip
        detail = ", ".join(short) if needed else _("optional: %(people)s", people=", ".join(short))
        found.add(cycle.task("nominate_raters", title, cycle.path("team"), stage="evaluation", detail=detail))


# -- department heads ---------------------------------------------------------------------------
async def _department_kpis(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    department = user.principal.department_id
    settings, kpis = await asyncio.gather(
        api.get("goals", f"{cycle.base}/settings"),
        api.get("goals", f"{cycle.base}/goals", {"department_id": department, "level": "department", "limit": 100}),
    )
    if not settings.ok or settings.data.get("frozen") or not kpis.ok:
        found.note(kpis, _("department KPIs"))
        return
    mine = [k for k in kpis.items() if k.get("department_id") == department]
    link = cycle.path("department")
    if not mine:
        found.add(cycle.task("author_kpis", _("Author your department's KPIs"), link, stage="goal_setting"))
    elif drafts := [k for k in mine if k["status"] in ("draft", "returned")]:
        title = ngettext("Submit %(num)d department KPI", "Submit %(num)d department KPIs", len(drafts))
        found.add(cycle.task("submit_kpis", title, link, stage="goal_setting"))


async def _stale_data(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    stale = await api.get("tracking", f"{cycle.base}/stale-kpis")
    found.note(stale, _("stale KPIs"))
    if not stale.ok:
        return
    for group in stale.data.get("departments", []):
        if group.get("department_id") != user.principal.department_id:
            continue
        for kpi in group.get("kpis", []):
            found.add(
                cycle.task(
                    "send_stale_data",
                    _("Send the overdue data for '%(kpi)s'", kpi=kpi.get("name") or kpi.get("kpi_id")),
                    cycle.path("progress"),
                    due=kpi.get("due_at"),
                    detail=_("metric %(metric)s", metric=kpi.get("metric") or "—"),
                )
            )


async def _collaboration_ratings(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    department = user.principal.department_id
    assignments, links, matrix = await asyncio.gather(
        api.get("evaluation", f"{cycle.base}/assignments", {"limit": 1}),
        api.get("evaluation", f"{cycle.base}/collaborations"),
        api.get("evaluation", f"{cycle.base}/collaboration-matrix"),
    )
    if not assignments.items() or not links.ok:
        return  # evaluation has not opened
    partners = {
        link["department_b"] if link["department_a"] == department else link["department_a"]
        for link in links.items()
        if department in (link["department_a"], link["department_b"])
    }
    cells = matrix.data.get("cells", []) if matrix.ok and isinstance(matrix.data, dict) else []
    rated = {c["rated_department_id"] for c in cells if c["rater_department_id"] == department}
    unrated = sorted(partners - rated)
    if unrated:
        title = ngettext("Rate %(num)d department you work with", "Rate %(num)d departments you work with",
                         len(unrated))  # fmt: skip
        found.add(cycle.task("rate_departments", title, cycle.path("department") + "#collaboration",
                             stage="evaluation", detail=", ".join(unrated)))  # fmt: skip


# -- HR and finance -----------------------------------------------------------------------------
async def _cycle_control(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    status = await api.get("cycles", f"{cycle.base}/status")
    if not status.ok:
        found.note(status, _("the workflow of %(cycle)s", cycle=cycle.name))
        return
    data = status.data
    if incident := data.get("incident"):
        found.add(
            cycle.task(
                "incident",
                _("Resolve the incident in %(handoff)s", handoff=incident.get("handoff")),
                cycle.path() + "#control",
                due=incident.get("opened_at"),
                detail=str(incident.get("error", ""))[:200],
            )
        )
    if blocked := data.get("blocked"):
        link = {"evaluation": cycle.path("calibration"), "results": cycle.path("pools")}.get(
            str(blocked.get("service")), cycle.path() + "#control"
        )
        found.add(
            cycle.task(
                "unblock_stage",
                _("Unblock the stage: %(action)s", action=blocked.get("action") or blocked.get("reason")),
                link,
                due=data.get("next_deadline"),
                detail=str(blocked.get("reason", ""))[:200],
            )
        )


async def _appeals(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    appeals = await api.get("feedback", f"{cycle.base}/appeals", {"limit": 500})
    found.note(appeals, _("appeals"))
    for appeal in appeals.items():
        if appeal["status"] in OPEN_APPEALS:
            found.add(
                cycle.task(
                    "resolve_appeal",
                    _("Resolve the appeal of %(employee)s", employee=appeal["employee_id"]),
                    cycle.path("appeals"),
                    due=appeal.get("hr_due_at"),
                    detail=str(appeal.get("reason", ""))[:160],
                )
            )


async def _pools(api: Upstream, user: ConsoleUser, cycle: CycleView, found: TaskList) -> None:
    """Per department: a pool to set (HR, finance), to approve (finance, when the policy asks) or to allocate
    (HR), once results reached the results service."""
    reports = await asyncio.gather(
        *(api.get("results", f"{cycle.base}/pending", {"department_id": d}) for d in cycle.departments)
    )
    for department, report in zip(cycle.departments, reports, strict=True):
        found.note(report, _("the bonus pools"))
        kinds = {item["kind"] for item in (report.data or {}).get("pending", [])} if report.ok else set()
        link = cycle.path("pools") + f"#pool-{quote(department, safe='')}"
        if "bonus_pool_budget" in kinds:
            title = _("Set the bonus pool of %(department)s", department=department)
            found.add(cycle.task("set_pool", title, link, stage="result_application"))
        elif "bonus_pool_approval" in kinds and user.has(FINANCE):
            title = _("Approve the bonus pool of %(department)s", department=department)
            found.add(cycle.task("approve_pool", title, link, stage="result_application"))
        elif "bonus_allocation" in kinds and user.has(*HR):
            title = _("Allocate the bonus pool of %(department)s", department=department)
            found.add(cycle.task("allocate_pool", title, link, stage="result_application"))
