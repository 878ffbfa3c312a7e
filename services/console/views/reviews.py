"""Reviews: the reviews you have to write (self, manager, peer, cross-department) and the form,
one rating per competency of the cycle's configuration, with the API's message at the field."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import STAFF, CycleId
from services.console.auth import ConsoleUser, Staff, access, read_form
from services.console.directory import names
from services.console.forms import FormState, number, optional, refused
from services.console.i18n import N_, _
from services.console.params import AssignmentId
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

REVIEWS = Page("evaluation/reviews.html", N_("My reviews"), tab="reviews")
REVIEW = Page("evaluation/review.html", N_("Review"), tab="reviews")


def relation_label(relation: str) -> str:
    return {
        "self": _("Self review"),
        "manager": _("Manager review"),
        "peer": _("Peer review"),
        "cross_department": _("Cross-department review"),
        "upward": _("Upward review of your manager"),
    }.get(relation, relation)


@router.get(
    "/cycles/{cycle_id}/reviews",
    summary="The reviews you write in this cycle: pending first, then submitted",
    response_class=HTMLResponse,
    **access(*STAFF),
)
async def reviews_page(request: Request, cycle_id: CycleId, user: Staff) -> HTMLResponse:
    api = Upstream(request, user.token)
    me = user.principal.employee_id
    mine, people = await asyncio.gather(
        api.get("evaluation", f"/v1/cycles/{quote(cycle_id, safe='')}/assignments", {"rater_id": me, "limit": 500}),
        names(api),
    )
    rows = [{**a, "label": relation_label(a["relation"])} for a in mine.items() if a["rater_id"] == me]
    return REVIEWS.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if mine.ok else problem(mine, _("your reviews")),
        pending=[a for a in rows if a["status"] == "pending"],
        submitted=[a for a in rows if a["status"] != "pending"],
        people=people,
    )


async def review_form(
    request: Request, user: ConsoleUser, cycle_id: str, assignment_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    assignment, config, people = await asyncio.gather(
        api.get("evaluation", f"{base}/assignments/{quote(assignment_id, safe='')}"),
        api.get("evaluation", f"{base}/config"),
        names(api),
    )
    if not assignment.ok or not config.ok:
        failed = assignment if not assignment.ok else config
        return REVIEW.render(request, user, cycle_id=cycle_id, problem=problem(failed, _("this review")),
                             status_code=failed.status if failed.status in (403, 404) else 502)  # fmt: skip
    a: dict[str, Any] = assignment.data
    who = people.get(a["reviewee_id"], a["reviewee_id"])
    return REVIEW.render(
        request,
        user,
        title=_("%(kind)s: %(name)s", kind=relation_label(a["relation"]), name=who),
        cycle_id=cycle_id,
        problem=None,
        a=a,
        competencies=config.data.get("competencies", []),
        state=state or FormState(form_id="review"),
        own=a["rater_id"] == user.principal.employee_id,
        action=cycle_path(cycle_id, "reviews", quote(assignment_id, safe="")),
    )


@router.get(
    "/cycles/{cycle_id}/reviews/{assignment_id}",
    summary="One review: the form (a rating per competency and a comment), or what you submitted",
    response_class=HTMLResponse,
    **access(*STAFF),
)
async def review_page(request: Request, cycle_id: CycleId, assignment_id: AssignmentId, user: Staff) -> HTMLResponse:
    return await review_form(request, user, cycle_id, assignment_id)


@router.post(
    "/cycles/{cycle_id}/reviews/{assignment_id}",
    summary="Submit your review (once; every competency rated)",
    **access(*STAFF),
)
async def submit_review(request: Request, cycle_id: CycleId, assignment_id: AssignmentId, user: Staff) -> Response:
    form = await read_form(request)
    ratings = {
        key.removeprefix("ratings."): number(value)
        for key, value in form.items()
        if key.startswith("ratings.") and optional(value) is not None
    }
    body = {"ratings": ratings, "comment": optional(form.get("comment"))}
    answer = await Upstream(request, user.token).post(
        "evaluation",
        f"/v1/cycles/{quote(cycle_id, safe='')}/assignments/{quote(assignment_id, safe='')}/review",
        body,
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="review")
        return refused(await review_form(request, user, cycle_id, assignment_id, state))
    return redirect(cycle_path(cycle_id, "reviews"), msg=_("Review submitted. Thank you."))
