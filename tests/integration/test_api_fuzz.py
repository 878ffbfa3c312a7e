"""schemathesis against every service's OpenAPI, in process, with a token that passes every role gate.

A few generated requests per operation, on an empty database and then pinned to a seeded cycle
(``tests/fuzz.py``; ``python -m tests.fuzz`` runs the same with many more). Each service must
answer without a server error, with bodies and content types matching its OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.settings import Settings
from tests.fuzz import SERVICES, fuzz

EXAMPLES = 4
"""Generated requests per operation and pass: enough for the whole file to stay around a minute."""


@pytest.mark.parametrize("service", SERVICES)
async def test_no_server_error_and_no_schema_violation(service: str, settings: Settings, tmp_path: Path) -> None:
    report = await fuzz(service, settings=settings, workdir=tmp_path, examples=EXAMPLES)
    assert report.operations >= 15, report.summary()
    assert report.requests >= report.operations * 2, report.summary()  # both passes reached every operation
    assert sum(n for status, n in report.statuses.items() if status < 300) > 0, report.summary()
    assert not report.findings, "\n\n".join(str(f) for f in report.findings.values())
