"""The console's routes, one module per page family; each route declares its roles.

Each route lists its roles as ``x-roles`` (``access(...)``) and checks them with
``console_requires(...)``: the same roles as the API the page reads. Forms post back here, the
view calls the API with the user's token, then redirects (post/redirect/get) with a short message.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from services.console.views import (
    appeals,
    audit,
    committee,
    cycle_templates,
    dashboard,
    department,
    evaluation,
    feedback_requests,
    goal_forms,
    goals,
    growth,
    one_on_ones,
    ops,
    org,
    people,
    pools,
    results,
    reviews,
    signin,
    tasks,
    team,
    tracking,
)
from services.console.views.signin import PUBLIC_PATHS

__all__ = ["FAMILIES", "PUBLIC_PATHS", "include_views"]

FAMILIES = (
    signin, tasks, dashboard, cycle_templates, org, goals, goal_forms, department, tracking, reviews, team,
    evaluation, people, feedback_requests, appeals, one_on_ones, results, pools, growth, committee, audit, ops,
)  # fmt: skip


def include_views(app: FastAPI) -> None:
    """Every page family's routes, under ``/console``."""
    for family in FAMILIES:
        app.include_router(family.router, prefix="/console", tags=["console"], default_response_class=HTMLResponse)
