"""Ingestion liveness: committed offsets must advance while there is lag.

A consumer that keeps failing on the same batch, waits for an unreachable dead-letter topic or
has died shows the same symptom from outside: a partition with lag > 0 whose committed offset
does not move. ``LagWatch`` remembers, per partition, when its committed offset last advanced (or
its lag was 0) and reports the partition stalled longest once that is ``stall_after`` seconds ago.
Pure bookkeeping: the consumer feeds it from its fetches and offset commits, the ops API from
the group's committed offsets read from Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["DEFAULT_STALL_AFTER", "IngestionHealth", "LagWatch", "Stall"]

DEFAULT_STALL_AFTER = 60.0
"""Seconds a partition may have lag without its committed offset advancing before ingestion is
reported stalled. A healthy consumer commits every batch within seconds, even under load."""


@dataclass(frozen=True)
class Stall:
    partition: int
    since: datetime
    """When the partition's committed offset last advanced (or it had no lag)."""
    lag: int


@dataclass
class _Progress:
    committed: int | None
    since: datetime
    lag: int


class LagWatch:
    """When each partition's committed offset last advanced while it had lag."""

    def __init__(self, stall_after: float = DEFAULT_STALL_AFTER) -> None:
        self.stall_after = stall_after
        self._partitions: dict[int, _Progress] = {}

    def update(self, partition: int, *, committed: int | None, lag: int, now: datetime) -> None:
        """Record what is known of ``partition`` at ``now``: its committed offset and its lag."""
        seen = self._partitions.get(partition)
        if seen is None or seen.committed != committed or lag <= 0:
            self._partitions[partition] = _Progress(committed, now, max(lag, 0))
        else:
            seen.lag = lag

    def forget(self, partition: int) -> None:
        """The partition moved to another consumer: not this one's to report."""
        self._partitions.pop(partition, None)

    def stalled(self, now: datetime) -> Stall | None:
        """The partition stalled longest, if any has had lag without progress for ``stall_after``."""
        worst: Stall | None = None
        for partition, seen in sorted(self._partitions.items()):
            overdue = seen.lag > 0 and (now - seen.since).total_seconds() >= self.stall_after
            if overdue and (worst is None or seen.since < worst.since):
                worst = Stall(partition, seen.since, seen.lag)
        return worst


@dataclass(frozen=True)
class IngestionHealth:
    """What the consumer reports: ``running``, ``paused`` (retrying after an error, e.g. the
    dead-letter topic unreachable), ``stalled`` (lag without progress for a while) or ``stopped``."""

    state: str
    since: datetime | None = None
    partition: int | None = None
    lag: int | None = None
    last_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "running"

    @property
    def message(self) -> str:
        """One line for people: ``ingestion stalled since ... on partition 2 (lag 120); last error: ...``."""
        if self.state == "stalled" and self.since is not None:
            text = f"ingestion stalled since {self.since.isoformat()} on partition {self.partition} (lag {self.lag})"
        elif self.state == "paused" and self.since is not None:
            text = f"ingestion paused since {self.since.isoformat()}"
        else:
            text = f"ingestion {self.state}"
        return f"{text}; last error: {self.last_error}" if self.last_error and not self.ok else text
