"""Ingestion liveness (a stall is lag without committed progress), dead letters that are always
sendable, poison classification and the batch result merge."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DataError, OperationalError

from services.tracking.ingest import BatchResult, RawMessage
from services.tracking.ingest.liveness import IngestionHealth, LagWatch
from services.tracking.ingest.messages import DLQ_ORIGINAL_LIMIT, dead_letter
from services.tracking.ingest.store import is_poison

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def test_a_partition_with_lag_and_no_committed_progress_is_reported_stalled() -> None:
    watch = LagWatch(stall_after=30)
    watch.update(0, committed=100, lag=50, now=T0)
    watch.update(1, committed=7, lag=0, now=T0)
    assert watch.stalled(T0 + timedelta(seconds=29)) is None
    watch.update(0, committed=100, lag=80, now=T0 + timedelta(seconds=20))  # more lag, no progress
    stall = watch.stalled(T0 + timedelta(seconds=31))
    assert stall is not None and (stall.partition, stall.since, stall.lag) == (0, T0, 80)


def test_progress_or_no_lag_is_not_a_stall_and_a_revoked_partition_is_forgotten() -> None:
    watch = LagWatch(stall_after=30)
    watch.update(0, committed=100, lag=50, now=T0)
    watch.update(0, committed=150, lag=40, now=T0 + timedelta(seconds=25))  # advanced
    assert watch.stalled(T0 + timedelta(seconds=50)) is None
    watch = LagWatch(stall_after=30)
    watch.update(1, committed=None, lag=10, now=T0)
    watch.update(1, committed=None, lag=0, now=T0 + timedelta(seconds=40))  # caught up: the clock restarts
    assert watch.stalled(T0 + timedelta(seconds=60)) is None
    watch.update(2, committed=3, lag=9, now=T0)
    assert watch.stalled(T0 + timedelta(seconds=60)) is not None
    watch.forget(2)
    assert watch.stalled(T0 + timedelta(seconds=60)) is None


def test_the_health_message_names_the_stall_its_partition_and_the_last_error() -> None:
    health = IngestionHealth("stalled", since=T0, partition=3, lag=120, last_error="DataError: overflow")
    assert health.message == (
        "ingestion stalled since 2026-03-01T09:00:00+00:00 on partition 3 (lag 120); last error: DataError: overflow"
    )
    assert IngestionHealth("running", last_error="old").message == "ingestion running"
    assert not health.ok


def test_a_dead_letter_is_always_sendable_large_originals_are_cut_with_size_and_hash() -> None:
    big = b'{"x": "' + b"y" * 1_000_000 + b'"}'
    letter = dead_letter(RawMessage("metrics.v1", 2, 41, b"k" * 5000, big), "too long " * 1000, T0)
    assert letter.truncated and letter.original_size == len(big)
    assert letter.original_sha256 == hashlib.sha256(big).hexdigest()
    assert base64.b64decode(letter.original_b64) == big[:DLQ_ORIGINAL_LIMIT]
    assert letter.key is not None and len(letter.key) <= 1024 and len(letter.reason) <= 4100
    assert len(letter.model_dump_json()) < 512 * 1024  # far below the producer's 1 MiB limit
    small = dead_letter(RawMessage("metrics.v1", 0, 1, None, b"{broken"), "not JSON", T0)
    assert not small.truncated and base64.b64decode(small.original_b64) == b"{broken"


def test_data_errors_are_poison_and_connection_errors_are_not() -> None:
    class _Overflow(Exception):
        sqlstate = "22003"

    class _Shutdown(Exception):
        sqlstate = "57P01"

    assert is_poison(OverflowError("date value out of range"))
    assert is_poison(DataError("INSERT ...", {}, _Overflow()))
    assert is_poison(_Overflow())
    assert not is_poison(_Shutdown())
    assert not is_poison(OperationalError("SELECT 1", {}, _Shutdown()))
    assert not is_poison(ConnectionResetError())
    assert not is_poison(TimeoutError())


def test_results_of_the_halves_of_a_bisected_batch_add_up() -> None:
    a = BatchResult(received=3, inserted=2, duplicates=1, applied=2)
    b = BatchResult(received=2, inserted=1, unmapped=1, deferred=0)
    merged = a.merge(b)
    assert (merged.received, merged.inserted, merged.duplicates, merged.applied, merged.unmapped) == (5, 3, 1, 2, 1)
