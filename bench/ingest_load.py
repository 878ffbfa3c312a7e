"""Helper processes of ``bench/ingest.py --latency``; not meant to be run by hand.

    python bench/ingest_load.py generate CONFIG_JSON   # the load generator, in its own process
    python bench/ingest_load.py serve CONFIG_JSON      # the tracking app under uvicorn, no consumer

``generate`` builds every event up front (so the generator's own CPU stays small), warms its
connection up with one event per department, prints ``{"ready": ...}`` and waits for a line on
stdin. Then it sends open-loop: tick ``n`` is due at ``start + n * batch / rate`` whatever happened
to the earlier ticks (each tick is its own task), so a slow acknowledgement never delays the next
send; if the generator itself falls behind, the tick is sent late and its intended time is kept
(coordinated omission). Each tick is one department's ``batch`` events: on Kafka one produce batch
to the department's partition (key ``department:metric``, the default partitioner's choice), on
HTTP one ``POST /v1/ingest/metrics``. It prints one JSON line: per tick the department, intended,
sent and accepted times (``time.monotonic()``, system-wide on Linux, so comparable with the bench
process), the events and whether they were accepted (producer ack / 202), plus its own CPU time.

``serve`` runs the tracking app (``create_app``, its in-process consumer off: the standalone consumer
does the ingesting) under uvicorn on the given port; with ``"profile": FILE`` it writes a cProfile
of the app process to FILE when stopped.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _events(config: dict[str, Any], department: str, count: int, stamp: str) -> list[dict[str, Any]]:
    common = {"source": "bench", "metric": config["metric"], "value": 1.0, "unit": "units"}
    return [
        {"event_id": str(uuid.uuid4()), "department_id": department, "occurred_at": stamp} | common
        for _ in range(count)
    ]


async def generate(config: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    departments: list[str] = config["departments"]
    rate, batch, path = float(config["rate"]), int(config["batch"]), config["path"]
    ticks = max(1, round(rate * float(config["seconds"]) / batch))
    tick = batch / rate
    stamp = datetime.now(UTC).isoformat()
    keys = {d: f"{d}:{config['metric']}".encode() for d in departments}

    producer: Any = None
    http: Any = None
    partition: dict[str, int] = {}
    if path == "kafka":
        from aiokafka.partitioner import DefaultPartitioner

        from services.common.kafka import create_producer

        producer = await create_producer(
            config["bootstrap"], idempotence=config["idempotence"], linger_ms=0, max_batch_size=1024 * 1024
        )
        partitions = sorted(await producer.partitions_for(config["topic"]))
        chooser = DefaultPartitioner()
        partition = {d: chooser(keys[d], partitions, partitions) for d in departments}
        # Every tick's records, encoded now: the timed loop only hands them to the producer.
        bodies: list[Any] = [
            [json.dumps(e).encode() for e in _events(config, departments[n % len(departments)], batch, stamp)]
            for n in range(ticks)
        ]
    else:
        import httpx

        http = httpx.AsyncClient(
            base_url=config["url"], timeout=120, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)
        )
        headers = {
            d: {"Authorization": f"Bearer {config['tokens'][d]}", "Content-Type": "application/json"}
            for d in departments
        }
        bodies = [
            json.dumps({"events": _events(config, departments[n % len(departments)], batch, stamp)}).encode()
            for n in range(ticks)
        ]

    async def deliver(department: str, body: Any) -> bool:
        if producer is not None:
            builder = producer.create_batch()
            for value in body:
                if builder.append(key=keys[department], value=value, timestamp=None) is None:
                    raise RuntimeError("produce batch full: raise max_batch_size")
            await (await producer.send_batch(builder, config["topic"], partition=partition[department]))
            return True
        answer = await http.post("/v1/ingest/metrics", content=body, headers=headers[department])
        return bool(answer.status_code == 202)

    # Warm-up (not measured): one event per department, so connections, metadata and the
    # consumer's group join are done before the first timed tick.
    for department in departments:
        warm = _events(config, department, 1, stamp)
        body = [json.dumps(warm[0]).encode()] if producer is not None else json.dumps({"events": warm}).encode()
        if not await deliver(department, body):
            raise RuntimeError(f"warm-up event of {department} refused")
    print(json.dumps({"ready": True, "ticks": ticks}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    rows: list[list[Any]] = []
    errors: list[str] = []

    async def timed(n: int, department: str, intended: float, body: Any) -> None:
        sent = time.monotonic()
        try:
            ok = await deliver(department, body)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            ok = False
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__}: {exc}")
        rows.append([n, department, intended, sent, time.monotonic(), batch, ok])

    cpu_started = _cpu()
    started = time.monotonic()
    tasks = []
    for n in range(ticks):
        intended = started + n * tick
        delay = intended - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        department = departments[n % len(departments)]
        tasks.append(asyncio.create_task(timed(n, department, intended, bodies[n])))
        bodies[n] = None  # free as we go
    await asyncio.gather(*tasks)
    result = {"started": started, "tick": tick, "rows": rows, "errors": errors, "cpu_seconds": _cpu() - cpu_started}
    if producer is not None:
        await producer.stop()
    if http is not None:
        await http.aclose()
    print(json.dumps(result), flush=True)


def serve(config: dict[str, Any]) -> None:
    import uvicorn

    from services.common.settings import DEV_JWT_SECRET, Settings
    from services.tracking.app import create_app

    rate = float(config["rate"])
    settings = Settings(
        env="test", jwt_secret=DEV_JWT_SECRET + "-bench", outbox_relay=False, cycle_workflows=False,
        kafka_bootstrap_servers=config["bootstrap"], kafka_idempotence=config["idempotence"],
        database_url=config["database_url"], auto_migrate=False,
        ingest_rate_per_second=10 * rate, ingest_rate_burst=int(10 * rate),
    )  # fmt: skip
    topic = config["topic"]
    app = create_app(settings, run_consumer=False, topic=topic, dlq_topic=f"{topic}.dlq", group_id=f"lat-{topic}")
    profiler = None
    if config.get("profile"):
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: the machine may be shared
        profiler.enable()

    def stopped(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    # uvicorn shuts down gracefully on SIGTERM, then re-raises it under the handler found at start.
    signal.signal(signal.SIGTERM, stopped)
    try:
        uvicorn.run(app, host="127.0.0.1", port=int(config["port"]), log_level="warning", access_log=False)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(config["profile"])


if __name__ == "__main__":
    command, raw = sys.argv[1], json.loads(sys.argv[2])
    if command == "generate":
        asyncio.run(generate(raw))
    elif command == "serve":
        serve(raw)
    else:
        raise SystemExit(f"unknown command {command!r}")
