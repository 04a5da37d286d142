"""Sink delivery: alerts per second through `monitor forward`'s loop (SinkRunner) to loopback
receivers — a webhook sink (Standard Webhooks signing), an Apprise json:// sink (the message
for people), a sink whose filter takes nothing (routing cost) and a digest sink (kept in
Redis, then one message). Also one failing endpoint beside a healthy one: how long the
healthy one takes, served together. The alerts are of the shape the pipeline writes.

    python benchmarks/sink_throughput.py [--alerts 2000]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import redis
from _support import http_server, percentile, redis_server, report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' alert factory

from monitor import log
from monitor.delivery.queue import AlertQueue
from monitor.delivery.sinks.build import build
from monitor.delivery.sinks.runner import SinkRunner, serve
from monitor.sinkconfig import parse_sinks
from monitor.store.keys import Keys
from tests.test_sinks import make_alert


def run(client: redis.Redis, table: dict, count: int) -> dict:
    (config,) = parse_sinks([table], "bench")
    runner = SinkRunner(build(config), client)
    started = time.perf_counter()
    stats = runner.run(follow=False)
    seconds = time.perf_counter() - started
    runner.sink.close()
    handled = stats.delivered + stats.filtered + stats.kept
    assert handled == count, (table["name"], stats)
    figures = {"alerts_per_s": round(count / seconds, 1), "seconds": round(seconds, 2)}
    if stats.latencies:
        figures["latency_ms_p50"] = round(percentile(stats.latencies, 50) * 1000, 2)
        figures["latency_ms_p95"] = round(percentile(stats.latencies, 95) * 1000, 2)
    if stats.digests:
        figures["digests"] = stats.digests
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=2000)
    args = parser.parse_args()
    log.configure("warning")
    with redis_server() as url, http_server(lambda path, headers: (200, {}, b"")) as base:
        client = redis.Redis.from_url(url, decode_responses=True)
        queue = AlertQueue(client, Keys(), maxlen=10 * args.alerts, id_ttl=3600)
        old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
        for n in range(args.alerts):
            queue.publish(make_alert(n, created_at=old))
        host = base.split("://", 1)[1]
        for table in (
            {
                "name": "webhook",
                "start": "retained",
                "type": "webhook",
                "url": f"{base}/hook",
                "secret": "k",
            },
            {
                "name": "apprise-json",
                "start": "retained",
                "type": "apprise",
                "url": f"json://{host}/chat",
            },
            {
                "name": "filtered",
                "start": "retained",
                "type": "webhook",
                "url": f"{base}/x",
                "min_severity": "critical",
            },
            {
                "name": "digest",
                "start": "retained",
                "type": "webhook",
                "url": f"{base}/digest",
                "digest": "1h",
            },
        ):
            report(
                "sink_throughput",
                sink=table["name"],
                alerts=args.alerts,
                **run(client, table, args.alerts),
            )

    # Independence: a healthy sink served beside one whose endpoint takes 2 s to fail.
    with redis_server() as url, http_server(lambda path, headers: (200, {}, b"")) as good:

        def slow(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            time.sleep(2)
            return 503, {}, b""

        with http_server(slow) as bad:
            client = redis.Redis.from_url(url, decode_responses=True)
            queue = AlertQueue(client, Keys(), maxlen=10_000, id_ttl=3600)
            for n in range(200):
                queue.publish(make_alert(n))
            stop = threading.Event()
            healthy, failing = (
                SinkRunner(build(c), client, stop=stop)
                for c in parse_sinks(
                    [
                        {"name": "good", "start": "retained", "type": "webhook", "url": f"{good}/"},
                        {
                            "name": "bad",
                            "start": "retained",
                            "type": "webhook",
                            "url": f"{bad}/",
                            "attempts": 1,
                        },
                    ],
                    "bench",
                )
            )
            started = time.perf_counter()
            thread = threading.Thread(
                target=serve, args=([healthy, failing],), kwargs={"follow": True}
            )
            thread.start()
            while healthy.stats.delivered < 200:
                time.sleep(0.01)
            took = time.perf_counter() - started
            stop.set()
            thread.join()
            attempts = failing.stats.failed + failing.stats.delivered
            report(
                "sink_independence",
                healthy_200_alerts_s=round(took, 2),
                failing_attempts_meanwhile=attempts,
            )


if __name__ == "__main__":
    main()
