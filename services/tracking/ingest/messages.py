"""Raw Kafka messages: validated into ``MetricEvent`` s in one call per batch, or turned into
readable ``DeadLetter`` s; and the result of ingesting a batch."""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import Json, TypeAdapter, ValidationError

from contracts.events import DeadLetter, MetricEvent

__all__ = [
    "BatchResult",
    "DLQ_ORIGINAL_LIMIT",
    "RawMessage",
    "TOMBSTONE_REASON",
    "dead_letter",
    "dimensions_json",
    "gc_paused",
    "parse_message",
    "validate_values",
]

EVENT_ADAPTER: TypeAdapter[MetricEvent] = TypeAdapter(MetricEvent)
"""Built once: validating with a reused adapter avoids per-message schema setup."""

BATCH_ADAPTER: TypeAdapter[list[MetricEvent]] = TypeAdapter(list[Json[MetricEvent]])
"""A whole batch of raw values in one pydantic-core call; each value is parsed as its own JSON
document, exactly as ``EVENT_ADAPTER.validate_json`` would."""

TOMBSTONE_REASON = "message has no value (tombstone)"

DLQ_ORIGINAL_LIMIT = 256 * 1024
"""Bytes of the original message a dead letter carries at most (base64 makes it a third larger).
A near-limit message (about 786 KB to 1 MB) would otherwise make a DLQ record larger than the
producer may send, and the batch could never be stored: longer originals are cut, with their size
and SHA-256 recorded (``DeadLetter.truncated``)."""

_DLQ_KEY_LIMIT = 1024
_DLQ_REASON_LIMIT = 4096


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a synchronous, allocation-heavy batch step.

    Validating a batch allocates tens of thousands of container objects that all stay alive
    until the batch is stored; with the collector on, each of them is scanned again and again by
    young-generation collections (measured: about half of the validation time). Nothing in these
    steps creates reference cycles, and the collector resumes right after, so no garbage is kept.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True)
class RawMessage:
    """A consumed Kafka record, reduced to what ingestion needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class BatchResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    applied: int = 0
    unmapped: int = 0
    deferred: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def merge(self, other: BatchResult) -> BatchResult:
        """The result of two parts of one batch (stored one after the other)."""
        return BatchResult(
            received=self.received + other.received,
            inserted=self.inserted + other.inserted,
            duplicates=self.duplicates + other.duplicates,
            applied=self.applied + other.applied,
            unmapped=self.unmapped + other.unmapped,
            deferred=self.deferred + other.deferred,
            dead_letters=self.dead_letters + other.dead_letters,
        )


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err["type"] == "json_invalid":
            return f"message is not valid JSON: {err['msg']}"
        if err["type"] == "model_type":
            return "message is not a JSON object"
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "contract violation: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_message(value: bytes | None) -> MetricEvent | str:
    """The validated event, or a readable reason why the message breaks the contract."""
    if value is None:
        return TOMBSTONE_REASON
    try:
        return EVENT_ADAPTER.validate_json(value)
    except ValidationError as exc:
        return _reason(exc)


def dead_letter(message: RawMessage, reason: str, now: datetime) -> DeadLetter:
    """The DLQ record of ``message``: always small enough to send (see ``DLQ_ORIGINAL_LIMIT``)."""
    value = message.value or b""
    key = message.key.decode("utf-8", "replace") if message.key is not None else None
    truncated = len(value) > DLQ_ORIGINAL_LIMIT or (key is not None and len(key) > _DLQ_KEY_LIMIT)
    return DeadLetter(
        reason=reason if len(reason) <= _DLQ_REASON_LIMIT else reason[:_DLQ_REASON_LIMIT] + "...",
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=key[:_DLQ_KEY_LIMIT] if key is not None else None,
        original_b64=base64.b64encode(value[:DLQ_ORIGINAL_LIMIT]).decode("ascii"),
        rejected_at=now,
        original_size=len(value),
        original_sha256=hashlib.sha256(value).hexdigest(),
        truncated=truncated,
    )


def validate_values(values: Sequence[bytes]) -> tuple[list[MetricEvent], dict[int, str]]:
    """Validate raw message values against ``MetricEvent``: the valid events (in order) and,
    per index of an invalid value, the readable reason.

    The whole batch is validated in one pydantic-core call (each value parsed on its own, so one
    message can never shift into another); only when that fails are the failing indices
    re-checked one by one for their reason, and the rest validated again as a batch.
    """
    try:
        return BATCH_ADAPTER.validate_python(values), {}
    except ValidationError as exc:
        locations = [err["loc"][0] if err["loc"] else None for err in exc.errors()]
    failing = sorted({i for i in locations if isinstance(i, int)})
    if not failing or len(failing) < len(set(locations)):  # an error not tied to one item: check each
        failing = list(range(len(values)))
    rejected: dict[int, str] = {}
    for index in failing:
        outcome = parse_message(values[index])
        if isinstance(outcome, str):
            rejected[index] = outcome
    rest = [v for i, v in enumerate(values) if i not in rejected]
    try:
        return BATCH_ADAPTER.validate_python(rest), rejected
    except ValidationError:  # cannot happen if single and batch validation agree; stay exact anyway
        events: list[MetricEvent] = []
        for index, value in enumerate(values):
            if index not in rejected:
                outcome = parse_message(value)
                if isinstance(outcome, str):
                    rejected[index] = outcome
                else:
                    events.append(outcome)
        return events, rejected


_DIMENSIONS_CACHE: dict[tuple[tuple[str, str], ...], str] = {}


def dimensions_json(dimensions: dict[str, str]) -> str | None:
    """The event's dimensions as stored (sorted JSON, ``None`` when empty), cached per label set."""
    if not dimensions:
        return None
    key = tuple(sorted(dimensions.items()))
    text_value = _DIMENSIONS_CACHE.get(key)
    if text_value is None:
        text_value = json.dumps(dict(key))
        if len(_DIMENSIONS_CACHE) < 10_000:  # labels repeat a lot; bound the cache anyway
            _DIMENSIONS_CACHE[key] = text_value
    return text_value
