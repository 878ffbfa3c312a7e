"""The AsyncAPI 3.0 document of Tandem's Kafka topics, generated from ``contracts``.

Written to ``contracts/schemas/asyncapi.json`` by ``python -m contracts.schema_export`` with the
JSON Schemas; ``tests/contract/test_schemas.py`` fails while the file is stale and
``tests/contract/test_asyncapi.py`` validates it with the AsyncAPI project's own CLI. It holds the
servers (production: SASL_SSL with SCRAM), each topic as a channel with its key and headers, one
message per event type and ``schema_version``, and every payload schema under
``components/schemas``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contracts.domain_events import DOMAIN_EVENTS, TypedDomainEvent
from contracts.events import DeadLetter, DomainEvent, MetricEvent
from contracts.topics import CYCLE_EVENTS, METRICS, METRICS_DLQ, TOPICS, TopicSpec

__all__ = ["ASYNCAPI_FILE", "DOCUMENT_VERSION", "TOPIC_MESSAGES", "asyncapi_document", "channel_id", "message_id"]

ASYNCAPI_FILE: Final = "asyncapi.json"

DOCUMENT_VERSION: Final = "1.0.0"
"""The document's own version: raise it when a release changes a message (``contracts.compat --release``)."""

KAFKA_BINDING_VERSION: Final = "0.5.0"

TOPIC_MESSAGES: Final[dict[str, tuple[type[BaseModel], ...]]] = {
    METRICS: (MetricEvent,),
    METRICS_DLQ: (DeadLetter,),
    CYCLE_EVENTS: DOMAIN_EVENTS,
}
"""The models of the messages on each topic (every reader of ``cycle.events.v1``, old versions too)."""

_REF = "#/components/schemas/{model}"


def channel_id(topic: str) -> str:
    """``metrics.dlq.v1`` -> ``metricsDlqV1``: an id AsyncAPI accepts in a ``$ref``."""
    first, *rest = topic.replace("-", ".").split(".")
    return first + "".join(part.capitalize() for part in rest)


def message_id(model: type[BaseModel]) -> str:
    """``GoalApproved.v1`` for a domain event (one message per type and version); else the model's name."""
    if issubclass(model, TypedDomainEvent):
        return f"{model.event_type()}.v{model.version()}"
    return model.__name__


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or model.__name__).strip().split("\n\n")[0].replace("\n", " ")


def _schemas() -> tuple[dict[type[BaseModel], str], dict[str, Any]]:
    """Each message model's schema name, and every schema under ``components/schemas``."""
    from contracts.schema_export import schema_mode  # it imports this module to render the document

    models: list[type[BaseModel]] = [DomainEvent, *(m for ms in TOPIC_MESSAGES.values() for m in ms)]
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, schema_mode(m)) for m in models]
    refs, definitions = models_json_schema(keyed, ref_template=_REF)
    names = {model: refs[(model, mode)]["$ref"].rsplit("/", 1)[-1] for model, mode in keyed}
    return names, definitions.get("$defs", {})


def _message(model: type[BaseModel], schema: str, topic: TopicSpec) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": message_id(model),
        "title": model.__name__,
        "summary": _summary(model),
        "contentType": "application/json",
        "payload": {"$ref": _REF.format(model=schema)},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": topic.key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if issubclass(model, TypedDomainEvent):
        message["tags"] = [{"name": model.SERVICE}]
        message["x-schema-version"] = model.version()
    if topic.headers:
        message["headers"] = {
            "type": "object",
            "properties": {h.name: {"type": "string", "description": h.description} for h in topic.headers},
        }
    return message


def asyncapi_document() -> dict[str, Any]:
    names, schemas = _schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        cid = channel_id(topic.name)
        messages = {message_id(m): _message(m, names[m], topic) for m in TOPIC_MESSAGES[topic.name]}
        channels[cid] = {
            "address": topic.name,
            "title": topic.title,
            "description": f"{topic.description}\n\nKey: {topic.key}\n\nWritten by {topic.producers}.",
            "messages": messages,
            "bindings": {"kafka": {"topic": topic.name, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        receives = topic.name == METRICS
        operations[("receive" if receives else "send") + cid[0].upper() + cid[1:]] = {
            "action": "receive" if receives else "send",
            "title": ("Tandem reads " if receives else "Tandem writes ") + topic.name,
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{name}"} for name in messages],
        }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:tandem:kafka",
        "info": {
            "title": "Tandem Kafka contracts",
            "version": DOCUMENT_VERSION,
            "description": (
                "The topics of Tandem's performance review cycles: metrics from department systems, the "
                "rejected ones, and the domain events of the cycle (goals, evaluation, feedback, results for "
                "payroll). Generated from the `contracts` package; docs/integration.md shows how to start "
                "from it. Every domain event is the DomainEvent envelope with a fixed `type` and "
                "`schema_version` and a typed `payload`; read the envelope, then dispatch on both."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "description": "Production Kafka: SASL_SSL, SCRAM over TLS (TANDEM_KAFKA_SECURITY_PROTOCOL=SASL_SSL).",
                "variables": {
                    "bootstrap": {
                        "default": "kafka.tandem.internal:9093",
                        "description": "The bootstrap servers your platform team gives you.",
                    }
                },
                "security": [
                    {"$ref": "#/components/securitySchemes/scramSha512"},
                    {"$ref": "#/components/securitySchemes/scramSha256"},
                ],
            },
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The embedded local stack (`tandem stack up`): PLAINTEXT, no credentials.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "scramSha512": {
                    "type": "scramSha512",
                    "description": "SASL/SCRAM-SHA-512 over TLS (the default mechanism); one Kafka principal "
                    "per system, with ACLs per topic.",
                },
                "scramSha256": {
                    "type": "scramSha256",
                    "description": "SASL/SCRAM-SHA-256 over TLS, where the cluster is set up for it.",
                },
            },
        },
    }


def render_asyncapi() -> str:
    """The document as checked in: deterministic JSON (sorted keys, trailing newline)."""
    return json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"
