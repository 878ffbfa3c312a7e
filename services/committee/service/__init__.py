"""Committee service layer: keyword-only functions over a session, each committing its own unit of work.

Scoping convention (as in the other services):

* a committee, its meetings and sessions are visible to hr_admin and to the department heads who
  sit on it; to anyone else they do not exist (**404**);
* a decision is visible to its owner too; a change the caller may not make is **403**;
* a rule about state (a final decision, no active cycle) is **409**;
* bad input (a committee without a seat for each function, a decision without an owner or a due
  date, an owner outside the cycle, a cycle that does not exist) is **422** naming the field.

Modules: ``committees`` (members, cadence, thresholds), ``meetings`` (agenda, minutes),
``decisions``, ``calibration`` (sessions and linked adjustments), ``improvement`` (suggestions),
``growth`` (career frameworks, potential, growth paths and the 9-box);
``org`` (the cycle's snapshot) and ``records`` hold what they share.
"""

from __future__ import annotations

from services.committee.service.calibration import adjust_in_session, get_session, meeting_sessions, open_session
from services.committee.service.committees import (
    create_committee,
    get_committee,
    list_committees,
    set_cadence,
    update_committee,
)
from services.committee.service.decisions import (
    change_status,
    committee_decisions,
    decision_snapshot,
    get_decision,
    my_decisions,
    record_decision,
    track_decision,
    update_decision,
)
from services.committee.service.growth import (
    calibrate_potential,
    cycle_nine_box,
    department_history,
    growth,
    list_frameworks,
    put_framework,
    rate_potential,
    team_growth,
)
from services.committee.service.improvement import department_suggestions, person_suggestions, team_suggestions
from services.committee.service.meetings import get_meeting, list_meetings, open_meeting, record_minutes
from services.committee.service.records import SERVICE, Clients

__all__ = [
    "SERVICE",
    "calibrate_potential",
    "cycle_nine_box",
    "department_history",
    "growth",
    "list_frameworks",
    "put_framework",
    "rate_potential",
    "team_growth",
    "Clients",
    "adjust_in_session",
    "change_status",
    "committee_decisions",
    "create_committee",
    "decision_snapshot",
    "department_suggestions",
    "get_committee",
    "get_decision",
    "get_meeting",
    "get_session",
    "meeting_sessions",
    "list_committees",
    "list_meetings",
    "my_decisions",
    "open_meeting",
    "open_session",
    "person_suggestions",
    "record_decision",
    "record_minutes",
    "set_cadence",
    "team_suggestions",
    "track_decision",
    "update_committee",
    "update_decision",
]
