"""The request-path collectors expose exactly what prometheus_client's own metrics would."""

from __future__ import annotations

import io
import json
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from switchboard_common.access_log import AccessLog
from switchboard_common.loop_metrics import LoopCounter, LoopGauge, LoopHistogram

OBSERVATIONS = [0.0, 0.004, 0.005, 0.0051, 0.3, 1.0, 2.5, 7, 120, 1e6]
BUCKETS = (0.005, 0.1, 1, 2.5, 10, 300)


def exposition(registry: CollectorRegistry) -> set[str]:
    return {line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")
            and "_created" not in line}


def test_histogram_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("t_seconds", "doc", ["route"], BUCKETS, ours)
    reference = Histogram("t_seconds", "doc", ["route"], buckets=BUCKETS, registry=theirs)
    for i, value in enumerate(OBSERVATIONS):
        route = "/a" if i % 2 else "/b"
        loop.observe((route,), value)
        reference.labels(route).observe(value)
    assert exposition(ours) == exposition(theirs)


def test_counter_and_gauge_match_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = LoopCounter("t_requests", "doc", ["model", "status"], ours)
    gauge = LoopGauge("t_inflight", "doc", [], ours)
    reference = Counter("t_requests", "doc", ["model", "status"], registry=theirs)
    reference_gauge = Gauge("t_inflight", "doc", registry=theirs)
    for model, status, amount in [("m", "200", 1), ("m", "200", 2), ("n", "429", 1)]:
        counter.inc((model, status), amount)
        reference.labels(model, status).inc(amount)
    gauge.add((), 3)
    gauge.add((), -1)
    reference_gauge.inc(3)
    reference_gauge.dec(1)
    assert exposition(ours) == exposition(theirs)


def test_access_log_writes_one_json_line_per_request() -> None:
    stream = io.StringIO()
    log = AccessLog("facade", stream)
    for i in range(3):
        log.write({"request_id": f"req_{i}", "status": 200, "key_alias": "alice"})
    log.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["req_0", "req_1", "req_2"]
    assert all(line["logger"] == "switchboard.access" and line["service"] == "facade" and line["ts"].endswith("Z")
               for line in lines)


def test_access_log_follows_the_log_level() -> None:
    log = AccessLog("facade", io.StringIO())
    logger = logging.getLogger("switchboard.access")
    previous = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert not log.enabled()
        logger.setLevel(logging.INFO)
        assert log.enabled()
    finally:
        logger.setLevel(previous)
