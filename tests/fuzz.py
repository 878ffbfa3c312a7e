"""Fuzz every service's API with schemathesis, in process (ASGI), with a token that passes every role gate.

Each operation of each service's OpenAPI document gets ``examples`` generated requests (valid by the
schema, on a fresh SQLite database, then again with the path parameters pinned to a small seeded
cycle so requests reach real rows); every response is checked for

* ``not_a_server_error``: no 5xx, except a 502/503 from the few operations that call a neighbour that
  is deliberately down here (Temporal, Kafka, the stage services; see ``NEIGHBOURS``);
* ``response_schema_conformance``: the body matches the declared response schema;
* ``content_type_conformance``: the content type is the declared one.

``tests/integration/test_api_fuzz.py`` runs it with a few examples per operation; the deeper run::

    python -m tests.fuzz                       # 50 examples per operation, every service
    python -m tests.fuzz --examples 200 goals  # one service, more examples
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings

from services.common.settings import DEV_JWT_SECRET, Settings

__all__ = ["SERVICES", "Finding", "ServiceReport", "fuzz_service", "main"]

SERVICES = ("cycles", "goals", "tracking", "evaluation", "feedback", "results")
ALL_ROLES = ["hr_admin", "dept_head", "manager", "employee", "ops", "department_system"]
UNREACHABLE_HTTP = "http://127.0.0.1:9"
UNREACHABLE_HOSTPORT = "127.0.0.1:9"

NEIGHBOURS: dict[str, set[tuple[str, str]]] = {
    "cycles": {
        ("GET", "/v1/cycles/{cycle_id}/status"),
        ("POST", "/v1/cycles/{cycle_id}/pause"),
        ("POST", "/v1/cycles/{cycle_id}/resume"),
        ("POST", "/v1/cycles/{cycle_id}/cancel"),
        ("POST", "/v1/cycles/{cycle_id}/extend"),
        ("POST", "/v1/cycles/{cycle_id}/force-stage"),
        ("POST", "/v1/cycles/{cycle_id}/incident"),
    },
    "tracking": {("POST", "/v1/ingest/metrics")},
}
"""Operations whose 502/503 means "the neighbour is down", which it is in this run on purpose."""


def app_factory(service: str) -> Callable[[Settings], FastAPI]:
    if service == "cycles":
        from services.cycles.app import create_app as cycles

        return cycles
    if service == "goals":
        from services.goals.app import create_app as goals

        return goals
    if service == "tracking":
        from services.tracking.app import create_app as tracking

        return lambda s: tracking(s, run_consumer=False, staleness_interval=0)
    if service == "evaluation":
        from services.evaluation.app import create_app as evaluation

        return evaluation
    if service == "feedback":
        from services.feedback.app import create_app as feedback

        return feedback
    if service == "results":
        from services.results.app import create_app as results

        return results
    raise ValueError(f"unknown service {service!r}; one of {SERVICES}")


def offline_settings(base: Settings, database_url: str) -> Settings:
    """Every neighbour (Temporal, Kafka, the other services) points at a closed port."""
    return base.model_copy(
        update={
            "database_url": database_url,
            "outbox_relay": False,
            "cycle_workflows": False,
            "temporal_address": UNREACHABLE_HOSTPORT,
            "kafka_bootstrap_servers": UNREACHABLE_HOSTPORT,
            **{f"{name}_url": UNREACHABLE_HTTP for name in SERVICES},
        }
    )


@dataclass(frozen=True)
class Finding:
    service: str
    operation: str
    check: str
    status: int
    message: str
    curl: str

    def __str__(self) -> str:
        return f"[{self.service}] {self.operation} -> {self.status}: {self.check}\n  {self.message}\n  {self.curl}"


@dataclass
class ServiceReport:
    service: str
    operations: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        by_class = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"{self.service:<11} {self.operations:>3} operations, {self.requests:>6} requests, "
            f"{len(self.findings)} findings, {self.seconds:6.1f}s  [{by_class}]"
        )


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    return [not_a_server_error, response_schema_conformance, content_type_conformance]


@contextmanager
def _schema(app: FastAPI) -> Iterator[Any]:
    """The app's schema; schemathesis runs the app's lifespan (migrations included) in its portal."""
    import schemathesis
    from schemathesis.python import asgi

    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    try:
        yield schema
    finally:
        asgi.shutdown_lifespans()


def fuzz_service(
    service: str,
    *,
    settings: Settings,
    database_url: str,
    examples: int,
    path_values: dict[str, str] | None = None,
    report: ServiceReport | None = None,
) -> ServiceReport:
    """Run ``examples`` generated requests per operation of ``service``; collect distinct findings."""
    from services.common.auth import mint_token

    report = report or ServiceReport(service)
    started = time.perf_counter()
    app = app_factory(service)(offline_settings(settings, database_url))
    token = mint_token(settings, sub="fuzz", roles=ALL_ROLES, employee_id="e-hr", department_id="sales")
    headers = {"Authorization": f"Bearer {token}"}
    checks = _checks()
    allowed_neighbour_errors = NEIGHBOURS.get(service, set())
    with _schema(app) as schema:
        operations = [result.ok() for result in schema.get_all_operations()]
        report.operations = max(report.operations, len(operations))
        for operation in operations:
            _fuzz_operation(
                operation,
                report,
                examples=examples,
                headers=headers,
                checks=checks,
                path_values=path_values,
                neighbour=(operation.method.upper(), operation.path) in allowed_neighbour_errors,
            )
    report.seconds += time.perf_counter() - started
    return report


def _fuzz_operation(
    operation: Any,
    report: ServiceReport,
    *,
    examples: int,
    headers: dict[str, str],
    checks: list[Any],
    path_values: dict[str, str] | None,
    neighbour: bool,
) -> None:
    from schemathesis.core.failures import FailureGroup

    name = f"{operation.method.upper()} {operation.path}"

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        if path_values:
            for param in list(case.path_parameters or {}):
                if param in path_values:
                    case.path_parameters[param] = path_values[param]
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # noqa: BLE001 - an unhandled exception is the app's 500, re-raised by the transport
            report.requests += 1
            report.statuses[500] = report.statuses.get(500, 0) + 1
            report.findings.setdefault(
                (name, f"unhandled {type(exc).__name__}"),
                Finding(report.service, name, f"unhandled {type(exc).__name__}", 500, str(exc)[:600], _curl(case)),
            )
            return
        report.requests += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        if response.status_code in (502, 503) and neighbour:
            return
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                title = str(failure.title)
                report.findings.setdefault(
                    (name, title),
                    Finding(
                        service=report.service,
                        operation=name,
                        check=title,
                        status=response.status_code,
                        message=(failure.message or "")[:600],
                        curl=_curl(case),
                    ),
                )

    run()


def _curl(case: Any) -> str:
    return str(case.as_curl_command(headers={"Authorization": "Bearer $TOKEN"}))


async def fuzz(service: str, *, settings: Settings, workdir: Path, examples: int) -> ServiceReport:
    """Fuzz on an empty database, then with path parameters pinned to a seeded cycle.

    The seeded cycle is the authz matrix's (``seed_into``), so requests also reach real rows. The
    schemathesis calls are blocking (they drive the app in schemathesis' own event-loop thread), so
    they run in a worker thread and this coroutine can be awaited from any event loop.
    """
    from tests.integration.test_authz_matrix import seed_into

    empty = f"sqlite+aiosqlite:///{workdir}/{service}-empty.db"
    report = await asyncio.to_thread(fuzz_service, service, settings=settings, database_url=empty, examples=examples)
    seeded = f"sqlite+aiosqlite:///{workdir}/{service}-seeded.db"
    values = await seed_into(service, offline_settings(settings, seeded), seeded)
    return await asyncio.to_thread(
        fuzz_service,
        service,
        settings=settings,
        database_url=seeded,
        examples=examples,
        path_values=values,
        report=report,
    )


async def _fuzz_all(services: list[str], *, settings: Settings, examples: int) -> list[ServiceReport]:
    reports: list[ServiceReport] = []
    with tempfile.TemporaryDirectory(prefix="tandem-fuzz-") as workdir:
        for service in services:
            report = await fuzz(service, settings=settings, workdir=Path(workdir), examples=examples)
            print(report.summary(), flush=True)
            reports.append(report)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)} (default: all)")
    parser.add_argument("--examples", type=int, default=50, help="generated requests per operation and pass")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        parser.error(f"unknown service(s) {unknown}; choose from {', '.join(SERVICES)}")
    os.environ.setdefault("TANDEM_ENV", "test")
    settings = Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-fuzz", outbox_relay=False, cycle_workflows=False)
    started = time.perf_counter()
    reports = asyncio.run(_fuzz_all(args.services or list(SERVICES), settings=settings, examples=args.examples))
    findings = [f for r in reports for f in r.findings.values()]
    print()
    for finding in findings:
        print(finding, end="\n\n")
    print(
        f"{sum(r.requests for r in reports)} requests to {sum(r.operations for r in reports)} operations "
        f"in {time.perf_counter() - started:.0f}s: {len(findings)} findings"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
