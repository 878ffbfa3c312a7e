"""Every domain event on ``cycle.events.v1``: one model per event ``type`` and ``schema_version``.

A domain event is the ``EventEnvelope`` (``contracts/events.py``: id, service, cycle, subject,
time) with its ``type`` and ``schema_version`` fixed and a typed ``payload``. The outbox
(``services/common/outbox.py``) builds the model of the latest version of a type and refuses an
event that does not validate, so nothing the models reject reaches the topic.

Evolution (the rules, in ``docs/architecture.md``): a change that either an event already on the
topic or a consumer built against the released schema would not survive raises the type's
``schema_version`` with a new model; the old model stays in ``DOMAIN_EVENTS`` as the reader of the
events written before. ``contracts.compat`` checks this against ``schemas/released/``.

A consumer reads a message with ``parse_domain_event``: the envelope first, then the reader for
its ``(type, schema_version)``; ``UnknownDomainEvent`` says it has no reader (skip it, or upgrade).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from contracts.committee import COMMITTEE_EVENT_PAYLOADS
from contracts.events import DomainEvent, EventEnvelope
from contracts.feedback import AppealOutcome, FeedbackEventType
from contracts.goals import ApprovalRole, GoalLevel, GoalStatus
from contracts.ids import Id
from contracts.results import CollaborationAwardAnnouncedPayload, ResultsCorrectedPayload, ResultsPublishedPayload

__all__ = [
    "DOMAIN_EVENTS",
    "SCHEMA_EXPORTS",
    "COMMITTEE_EVENTS",
    "AppealResolved",
    "AppealResolvedPayload",
    "AppealSubmitted",
    "AppealSubmittedPayload",
    "CalibrationAdjusted",
    "CalibrationAdjustedPayload",
    "CalibrationClosed",
    "CollaborationAwardAnnounced",
    "CalibrationClosedPayload",
    "CycleCreated",
    "CycleCreatedPayload",
    "CycleStarted",
    "CycleStartedPayload",
    "GoalApprovalStepCompleted",
    "GoalApproved",
    "GoalReturned",
    "GoalSubmitted",
    "GoalTransition",
    "GoalsBulkAssigned",
    "GoalsBulkAssignedPayload",
    "GoalsFrozen",
    "GoalsFrozenPayload",
    "ImportCounts",
    "InvalidDomainEvent",
    "KpiFresh",
    "KpiFreshness",
    "KpiStale",
    "NotificationRecipient",
    "NotificationRecorded",
    "NotificationRecordedPayload",
    "OrgImported",
    "OrgImportedPayload",
    "ResultAcknowledged",
    "ResultAcknowledgedPayload",
    "ResultsCorrected",
    "ResultsPublished",
    "ResultsReleased",
    "ResultsReleasedPayload",
    "ReviewSubmitted",
    "ReviewSubmittedPayload",
    "TypedDomainEvent",
    "UnknownDomainEvent",
    "build_event",
    "event_model",
    "parse_domain_event",
    "schema_stem",
    "typed",
]

Actor = str
"""Who acted: the caller's token subject (up to 200 characters, like the columns that keep it)."""


class _Payload(BaseModel):
    # Exported in serialization mode (what is on the wire): a field with a default is always written,
    # so the schema requires it.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class TypedDomainEvent(EventEnvelope):
    """The base of every typed event: a subclass fixes ``type`` and ``schema_version`` (``Literal``
    with that default) and types ``payload``. ``SERVICE`` names the service that emits it."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    SERVICE: ClassVar[str]

    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        description="Unique id of this event; consumers deduplicate on it (delivery is at-least-once).",
    )
    occurred_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the change happened (UTC)."
    )
    type: str
    schema_version: int
    payload: BaseModel

    @classmethod
    def event_type(cls) -> str:
        return str(cls.model_fields["type"].default)

    @classmethod
    def version(cls) -> int:
        return int(cls.model_fields["schema_version"].default)


# -- cycles -------------------------------------------------------------------------------------------
class CycleCreatedPayload(_Payload):
    name: str = Field(max_length=200)
    template_id: str = Field(max_length=64)
    department_ids: list[Id] = Field(description="The departments the cycle covers (empty: all).")


class CycleCreated(TypedDomainEvent):
    """A cycle was created from a template (not started yet)."""

    SERVICE = "cycles"
    type: Literal["CycleCreated"] = "CycleCreated"
    schema_version: Literal[1] = 1
    payload: CycleCreatedPayload


class CycleStartedPayload(_Payload):
    started_by: Actor = Field(max_length=200)
    departments: int = Field(ge=0, description="Departments in the cycle's org snapshot.")
    participants: int = Field(ge=0, description="People in the cycle's org snapshot.")


class CycleStarted(TypedDomainEvent):
    """A cycle started: its org snapshot is frozen and being sent to the stage services."""

    SERVICE = "cycles"
    type: Literal["CycleStarted"] = "CycleStarted"
    schema_version: Literal[1] = 1
    payload: CycleStartedPayload


class ImportCounts(_Payload):
    created: int = Field(default=0, ge=0)
    updated: int = Field(default=0, ge=0)
    unchanged: int = Field(default=0, ge=0)
    deactivated: int = Field(default=0, ge=0)


class OrgImportedPayload(_Payload):
    source: str = Field(max_length=200)
    content_hash: str = Field(max_length=128)
    dry_run: bool
    changed: bool
    departments: ImportCounts
    employees: ImportCounts


class OrgImported(TypedDomainEvent):
    """The org directory was imported (departments and employees created, updated, deactivated)."""

    SERVICE = "cycles"
    type: Literal["OrgImported"] = "OrgImported"
    schema_version: Literal[1] = 1
    payload: OrgImportedPayload


class NotificationRecipient(_Payload):
    id: str = Field(max_length=64, description="Employee id, or 'department_head' / 'hr'.")
    name: str | None = Field(max_length=200)
    email: str | None = Field(max_length=320)


class NotificationRecordedPayload(_Payload):
    notification_id: str = Field(max_length=64)
    idempotency_key: str = Field(max_length=300)
    cycle_id: Id
    department_id: Id
    stage: str = Field(max_length=32)
    kind: str = Field(max_length=64, description="reminder | escalation_head | escalation_hr | stale_kpi_reminder ...")
    recipients: list[NotificationRecipient]
    pending: int = Field(ge=0)
    deadline: datetime | None
    message: str = Field(max_length=2000)
    created_at: datetime
    delivery: dict[str, str] = Field(description="Channel -> outcome; empty when recorded.")


class NotificationRecorded(TypedDomainEvent):
    """A reminder or escalation was recorded (and is being delivered) for a department."""

    SERVICE = "cycles"
    type: Literal["NotificationRecorded"] = "NotificationRecorded"
    schema_version: Literal[1] = 1
    payload: NotificationRecordedPayload


# -- goals --------------------------------------------------------------------------------------------
class GoalTransition(_Payload):
    """A goal's move in its approval chain. ``step`` is the step acted on (1-based; ``None`` for a
    submission), ``next_step`` the one now waiting (``None`` once approved or returned)."""

    goal_id: Id
    level: GoalLevel
    employee_id: Id | None
    department_id: Id | None
    from_status: GoalStatus
    to_status: GoalStatus
    actor: Actor = Field(max_length=200)
    comment: str | None = Field(max_length=2000)
    step: int | None = Field(default=None, ge=1, description="The step approved or returned.")
    step_role: ApprovalRole | None = Field(default=None, description="Who the step was for.")
    steps: int = Field(default=1, ge=1, description="Steps in the goal's approval chain.")
    next_step: int | None = Field(default=None, ge=1, description="The step now waiting for its approver.")
    next_approver_id: Id | None = Field(default=None, description="Employee who approves next (none: any hr_admin).")


class GoalSubmitted(TypedDomainEvent):
    """A goal or KPI was submitted; its first approval step is open."""

    SERVICE = "goals"
    type: Literal["GoalSubmitted"] = "GoalSubmitted"
    schema_version: Literal[1] = 1
    payload: GoalTransition


class GoalApprovalStepCompleted(TypedDomainEvent):
    """One step of a multi-step chain was approved; the next step is open (the goal stays submitted)."""

    SERVICE = "goals"
    type: Literal["GoalApprovalStepCompleted"] = "GoalApprovalStepCompleted"
    schema_version: Literal[1] = 1
    payload: GoalTransition


class GoalApproved(TypedDomainEvent):
    """The last step of the chain was approved: the goal is approved."""

    SERVICE = "goals"
    type: Literal["GoalApproved"] = "GoalApproved"
    schema_version: Literal[1] = 1
    payload: GoalTransition


class GoalReturned(TypedDomainEvent):
    """An approver returned the goal to its owner with a comment (the chain starts again on resubmission)."""

    SERVICE = "goals"
    type: Literal["GoalReturned"] = "GoalReturned"
    schema_version: Literal[1] = 1
    payload: GoalTransition


class GoalsFrozenPayload(_Payload):
    goals_by_status: dict[str, int] = Field(description="Goals per status when goal setting ended.")
    frozen_by: Actor = Field(max_length=200)


class GoalsFrozen(TypedDomainEvent):
    """Goal setting of the cycle ended: goals can no longer change."""

    SERVICE = "goals"
    type: Literal["GoalsFrozen"] = "GoalsFrozen"
    schema_version: Literal[1] = 1
    payload: GoalsFrozenPayload


class GoalsBulkAssignedPayload(_Payload):
    template_key: Id
    parent_id: Id
    department_id: Id | None
    job_title: str | None = Field(max_length=200)
    created: int = Field(ge=0)
    skipped: int = Field(ge=0)


class GoalsBulkAssigned(TypedDomainEvent):
    """One goal template was assigned to everyone matching a department and/or job title."""

    SERVICE = "goals"
    type: Literal["GoalsBulkAssigned"] = "GoalsBulkAssigned"
    schema_version: Literal[1] = 1
    payload: GoalsBulkAssignedPayload


# -- tracking -----------------------------------------------------------------------------------------
class KpiFreshness(_Payload):
    kpi_id: Id
    owner_department_id: Id = Field(description="The department that must supply the metric.")
    metric: str = Field(max_length=128)
    last_event_at: datetime | None = Field(description="The last metric event received (none: never).")
    due_at: datetime = Field(description="When the next event was (or is) due.")


class KpiStale(TypedDomainEvent):
    """A KPI's data-owner missed its update frequency: the KPI is stale."""

    SERVICE = "tracking"
    type: Literal["KpiStale"] = "KpiStale"
    schema_version: Literal[1] = 1
    payload: KpiFreshness


class KpiFresh(TypedDomainEvent):
    """A stale KPI received data again."""

    SERVICE = "tracking"
    type: Literal["KpiFresh"] = "KpiFresh"
    schema_version: Literal[1] = 1
    payload: KpiFreshness


# -- evaluation ---------------------------------------------------------------------------------------
class ReviewSubmittedPayload(_Payload):
    """No rater id: the event travels to systems that may show it to the reviewee."""

    relation: str = Field(max_length=32, description="self | manager | peer | report")
    reviewee_id: Id


class ReviewSubmitted(TypedDomainEvent):
    """A review was submitted (``subject_id`` is the review assignment)."""

    SERVICE = "evaluation"
    type: Literal["ReviewSubmitted"] = "ReviewSubmitted"
    schema_version: Literal[1] = 1
    payload: ReviewSubmittedPayload


class CalibrationAdjustedPayload(_Payload):
    kind: Literal["calibration", "appeal"]
    before_score: float | None
    before_rating: str | None = Field(max_length=32)
    after_score: float
    after_rating: str = Field(max_length=32)
    appeal_id: str | None = Field(max_length=64, description="Set when an appeal's resolution moved the result.")
    actor: Actor = Field(max_length=200)


class CalibrationAdjusted(TypedDomainEvent):
    """An employee's final score and rating moved in calibration or by an appeal (``subject_id``: the employee)."""

    SERVICE = "evaluation"
    type: Literal["CalibrationAdjusted"] = "CalibrationAdjusted"
    schema_version: Literal[1] = 1
    payload: CalibrationAdjustedPayload


class CalibrationClosedPayload(_Payload):
    employees: int = Field(ge=0)
    ratings: dict[str, int] = Field(description="Employees per final rating.")
    closed_by: Actor = Field(max_length=200)


class CalibrationClosed(TypedDomainEvent):
    """Calibration of the cycle closed: final ratings are fixed."""

    SERVICE = "evaluation"
    type: Literal["CalibrationClosed"] = "CalibrationClosed"
    schema_version: Literal[1] = 1
    payload: CalibrationClosedPayload


# -- feedback -----------------------------------------------------------------------------------------
class ResultsReleasedPayload(_Payload):
    released: int = Field(ge=0)
    department_ids: list[Id]
    released_at: datetime


class ResultsReleased(TypedDomainEvent):
    """Results were released to employees (the appeal window opens)."""

    SERVICE = "feedback"
    type: Literal["ResultsReleased"] = "ResultsReleased"
    schema_version: Literal[1] = 1
    payload: ResultsReleasedPayload


class ResultAcknowledgedPayload(_Payload):
    employee_id: Id
    department_id: Id
    at: datetime


class ResultAcknowledged(TypedDomainEvent):
    """An employee acknowledged their released result."""

    SERVICE = "feedback"
    type: Literal["ResultAcknowledged"] = "ResultAcknowledged"
    schema_version: Literal[1] = 1
    payload: ResultAcknowledgedPayload


class AppealSubmittedPayload(_Payload):
    appeal_id: int
    employee_id: Id
    department_id: Id
    hr_due_at: datetime = Field(description="When HR must have resolved it.")


class AppealSubmitted(TypedDomainEvent):
    """An employee appealed their result."""

    SERVICE = "feedback"
    type: Literal["AppealSubmitted"] = "AppealSubmitted"
    schema_version: Literal[1] = 1
    payload: AppealSubmittedPayload


class AppealResolvedPayload(_Payload):
    appeal_id: int
    employee_id: Id
    outcome: AppealOutcome
    new_score: float | None
    new_rating: str | None = Field(max_length=32)
    late: bool = Field(description="Resolved after hr_due_at.")


class AppealResolved(TypedDomainEvent):
    """HR resolved an appeal (upheld, adjusted or rejected)."""

    SERVICE = "feedback"
    type: Literal["AppealResolved"] = "AppealResolved"
    schema_version: Literal[1] = 1
    payload: AppealResolvedPayload


# -- results ------------------------------------------------------------------------------------------
class ResultsPublished(TypedDomainEvent):
    """Final results for payroll and others, in parts (``payload.part`` of ``payload.parts``)."""

    SERVICE = "results"
    type: Literal["ResultsPublished"] = "ResultsPublished"
    schema_version: Literal[1] = 1
    payload: ResultsPublishedPayload


class ResultsCorrected(TypedDomainEvent):
    """Published results changed (an appeal resolved after publication), in parts like ``ResultsPublished``."""

    SERVICE = "results"
    type: Literal["ResultsCorrected"] = "ResultsCorrected"
    schema_version: Literal[1] = 1
    payload: ResultsCorrectedPayload


class CollaborationAwardAnnounced(TypedDomainEvent):
    """The cycle's collaboration award, recorded once at publication: the winner and its fund (for payroll)."""

    SERVICE = "results"
    type: Literal["CollaborationAwardAnnounced"] = "CollaborationAwardAnnounced"
    schema_version: Literal[1] = 1
    payload: CollaborationAwardAnnouncedPayload


# -- committee ----------------------------------------------------------------------------------------
def _event_of(event_type: str, payload: type[BaseModel], service: str) -> type[TypedDomainEvent]:
    """The typed event of a service that lists its payloads by type (``COMMITTEE_EVENT_PAYLOADS``), so
    that list stays the one place its events are named; version 1 of each."""
    literal = cast(Any, Literal)
    model = create_model(
        event_type,
        __base__=TypedDomainEvent,
        __module__=__name__,
        __doc__=(payload.__doc__ or f"{event_type}.").strip().split("\n\n")[0],
        type=(literal[event_type], event_type),
        schema_version=(literal[1], 1),
        payload=(payload, ...),
    )
    model.SERVICE = service
    return model


COMMITTEE_EVENTS: Final = tuple(_event_of(t, p, "committee") for t, p in COMMITTEE_EVENT_PAYLOADS.items())


# -- the registry -------------------------------------------------------------------------------------
DOMAIN_EVENTS: Final[tuple[type[TypedDomainEvent], ...]] = (
    CycleCreated,
    CycleStarted,
    OrgImported,
    NotificationRecorded,
    GoalSubmitted,
    GoalApprovalStepCompleted,
    GoalApproved,
    GoalReturned,
    GoalsFrozen,
    GoalsBulkAssigned,
    KpiStale,
    KpiFresh,
    ReviewSubmitted,
    CalibrationAdjusted,
    CalibrationClosed,
    ResultsReleased,
    ResultAcknowledged,
    AppealSubmitted,
    AppealResolved,
    ResultsPublished,
    ResultsCorrected,
    CollaborationAwardAnnounced,
    *COMMITTEE_EVENTS,
)
"""Every reader, old versions included. The producers write the latest version of each type."""

_READERS: dict[tuple[str, int], type[TypedDomainEvent]] = {(m.event_type(), m.version()): m for m in DOMAIN_EVENTS}
_LATEST: dict[str, type[TypedDomainEvent]] = {}
for _model in sorted(DOMAIN_EVENTS, key=lambda m: m.version()):
    _LATEST[_model.event_type()] = _model
assert len(_READERS) == len(DOMAIN_EVENTS), "two readers for one (type, schema_version)"
assert set(FeedbackEventType) <= set(_LATEST), "a feedback event type without a model"


class UnknownDomainEvent(LookupError):
    """No model for this ``(type, schema_version)``: a type this code does not know, or a newer version."""


class InvalidDomainEvent(ValueError):
    """An event that does not match its type's model; the outbox refuses to write it."""


def event_model(event_type: str, schema_version: int | None = None) -> type[TypedDomainEvent]:
    """The reader of ``(event_type, schema_version)``; without a version, the latest (what producers write)."""
    model = _LATEST.get(event_type) if schema_version is None else _READERS.get((event_type, schema_version))
    if model is None:
        known = ", ".join(sorted(_LATEST))
        version = "" if schema_version is None else f" version {schema_version}"
        raise UnknownDomainEvent(
            f"no contract for domain event '{event_type}'{version}: add a model to contracts/domain_events.py "
            f"(known types: {known})"
        )
    return model


def _refused(event_type: str, version: int, exc: ValidationError) -> InvalidDomainEvent:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'event'}: {error['msg']}" for error in exc.errors()
    )
    return InvalidDomainEvent(f"domain event '{event_type}' v{version} does not match its contract: {problems}")


def build_event(
    *,
    service: str,
    type: str,
    cycle_id: str | None = None,
    subject_id: str | None = None,
    payload: BaseModel | Mapping[str, Any] | None = None,
) -> TypedDomainEvent:
    """A new event of the latest version of ``type``; ``InvalidDomainEvent`` when the payload does not fit.

    ``payload`` may be the type's payload model or a mapping of its fields (validated the same way).
    """
    model = event_model(type)
    expected = model.model_fields["payload"].annotation
    if isinstance(payload, BaseModel) and not isinstance(payload, expected):  # type: ignore[arg-type]
        raise InvalidDomainEvent(
            f"domain event '{type}' carries a {getattr(expected, '__name__', expected)} payload, "
            f"not a {payload.__class__.__name__}"
        )
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload or {})
    try:
        return model.model_validate(
            {"service": service, "cycle_id": cycle_id, "subject_id": subject_id, "payload": data}
        )
    except ValidationError as exc:
        raise _refused(type, model.version(), exc) from exc


def typed(event: DomainEvent | TypedDomainEvent) -> TypedDomainEvent:
    """``event`` checked against the model of its ``(type, schema_version)``; ``InvalidDomainEvent`` when
    it does not fit."""
    if isinstance(event, TypedDomainEvent):
        return event
    model = event_model(event.type, event.schema_version)
    try:
        return model.model_validate(event.model_dump(mode="json"))
    except ValidationError as exc:
        raise _refused(event.type, event.schema_version, exc) from exc


def parse_domain_event(raw: str | bytes | Mapping[str, Any]) -> TypedDomainEvent:
    """Read one message of ``cycle.events.v1``: the envelope, then the reader of its type and version.

    Raises ``UnknownDomainEvent`` for a type or version without a reader, ``InvalidDomainEvent`` for
    a message that does not match its contract (both are ``ValueError``/``LookupError``: log and skip).
    """
    try:
        envelope = DomainEvent.model_validate(raw) if isinstance(raw, Mapping) else DomainEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise _refused("?", 0, exc) from exc
    return typed(envelope)


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def schema_stem(model: type[TypedDomainEvent]) -> str:
    """The exported schema's file stem: ``domain_event.<snake_type>.v<N>``."""
    return f"domain_event.{_CAMEL.sub('_', model.event_type()).lower()}.v{model.version()}"


SCHEMA_EXPORTS: dict[str, type[BaseModel]] = {schema_stem(m): m for m in DOMAIN_EVENTS}
