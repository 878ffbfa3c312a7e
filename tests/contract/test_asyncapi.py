"""The AsyncAPI document matches the code and is valid for the AsyncAPI project's own CLI.

The CLI (``@asyncapi/cli``, pinned in ``tools/asyncapi/package-lock.json``) is installed with
``npm ci`` in the background when the session starts (``tests/npm_tools.py``), so a fresh clone
needs only Node.js and npm; without npm the test fails and says so (a skipped validation would let
an invalid document ship).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from contracts.asyncapi import ASYNCAPI_FILE, TOPIC_MESSAGES, asyncapi_document, channel_id, message_id
from contracts.domain_events import DOMAIN_EVENTS
from contracts.schema_export import SCHEMA_DIR
from contracts.topics import CYCLE_EVENTS, TOPICS
from tests import npm_tools


def _cli() -> Path:
    return npm_tools.ensure("asyncapi")


def _validate(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # The CLI's usage metrics are off: no network call from a test (its config file says so).
    metrics = tmp_path / "asyncapi-analytics.json"
    metrics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "tandem-test"}))
    env = {**os.environ, "ASYNCAPI_METRICS_CONFIG_PATH": str(metrics), "CI": "true"}
    return subprocess.run(
        [str(_cli()), "validate", str(path), "--fail-severity=warn"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.npm_tool
def test_the_checked_in_document_is_valid_for_the_asyncapi_cli(tmp_path: Path) -> None:
    done = _validate(SCHEMA_DIR / ASYNCAPI_FILE, tmp_path)
    assert done.returncode == 0, f"asyncapi validate failed:\n{done.stdout}\n{done.stderr}"
    assert "is valid" in done.stdout, done.stdout


@pytest.mark.npm_tool
def test_the_cli_really_validates(tmp_path: Path) -> None:
    """A broken copy (an operation on a channel that does not exist) is refused: the check above means something."""
    broken: dict[str, Any] = asyncapi_document()
    broken["operations"]["sendCycleEventsV1"]["channel"] = {"$ref": "#/channels/nowhere"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    done = _validate(path, tmp_path)
    assert done.returncode != 0, done.stdout


def test_every_topic_message_and_security_scheme_is_in_the_document() -> None:
    document = json.loads((SCHEMA_DIR / ASYNCAPI_FILE).read_text())
    assert document == asyncapi_document(), "stale: run `python -m contracts.schema_export`"
    assert document["asyncapi"].startswith("3.0")
    assert {c["address"] for c in document["channels"].values()} == {t.name for t in TOPICS}
    events = document["channels"][channel_id(CYCLE_EVENTS)]["messages"]
    assert set(events) == {message_id(m) for m in DOMAIN_EVENTS}
    for topic in TOPICS:
        for model in TOPIC_MESSAGES[topic.name]:
            message = document["channels"][channel_id(topic.name)]["messages"][message_id(model)]
            assert message["bindings"]["kafka"]["key"]["description"] == topic.key
            schema = message["payload"]["$ref"].rsplit("/", 1)[-1]
            assert schema in document["components"]["schemas"]
    metrics = document["channels"][channel_id("metrics.v1")]["messages"]["MetricEvent"]
    assert set(metrics["headers"]["properties"]) == {"tandem-principal", "tandem-principal-department"}
    production = document["servers"]["production"]
    assert production["protocol"] == "kafka-secure"
    schemes = document["components"]["securitySchemes"]
    assert {schemes[ref["$ref"].rsplit("/", 1)[-1]]["type"] for ref in production["security"]} == {
        "scramSha512",
        "scramSha256",
    }


def test_the_header_names_are_the_ones_the_gateway_stamps() -> None:
    from contracts.topics import PRINCIPAL_DEPARTMENT_HEADER, PRINCIPAL_HEADER
    from services.common import kafka

    assert (kafka.PRINCIPAL_HEADER, kafka.PRINCIPAL_DEPARTMENT_HEADER) == (
        PRINCIPAL_HEADER,
        PRINCIPAL_DEPARTMENT_HEADER,
    )
