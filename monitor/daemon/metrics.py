"""The daemon's Prometheus metrics, in one registry (served on /metrics)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # *_created series: noise for a daemon's dashboards
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("monitor_polls", "Feed polls, by result", ["result"], registry=r)
        self.http = Counter("monitor_http_responses", "Feed HTTP responses", ["code"], registry=r)
        self.enqueued = Counter("monitor_items_enqueued", "New entries appended", registry=r)
        self.skipped = Counter(
            "monitor_entries_skipped", "Entries beyond daemon.max_entries in a poll", registry=r
        )
        self.skewed = Counter(
            "monitor_feed_clock_skew",
            "New entries dated in the future: their report time is when they were first seen",
            registry=r,
        )
        self.folded = Counter(
            "monitor_entries_same_item",
            "New entries folded into a known one because their link is known (same item)",
            registry=r,
        )
        self.suppressed = Counter(
            "monitor_alerts_suppressed",
            "Originals matching a rule that raised no alert: too old, or a first poll's undated",
            ["reason"],
            registry=r,
        )
        self.no_page = Counter(
            "monitor_items_without_page",
            "Items processed from their feed text: the page could not be fetched or extracted",
            registry=r,
        )
        self.processed = Counter(
            "monitor_items_processed", "Items processed, by dedup outcome", ["outcome"], registry=r
        )
        self.failed = Counter("monitor_items_failed", "Item processing failures", registry=r)
        self.dead = Counter("monitor_items_dead", "Items moved to the dead letters", registry=r)
        self.alerts = Counter("monitor_alerts_published", "Alerts published", registry=r)
        self.alerts_staged = Gauge(
            "monitor_alerts_staged",
            "Alerts published, held from consumers until on disk (alerts.durable_hold)",
            registry=r,
        )
        self.latency = Histogram(
            "monitor_processing_seconds",
            "Time to process one item",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.poll_time = Histogram("monitor_poll_seconds", "Time of one poll", registry=r)
        self.lag = Gauge("monitor_items_lag", "Items not yet read by any daemon", registry=r)
        self.pending = Gauge("monitor_items_pending", "Items read but not acked", registry=r)
        self.feeds = Gauge("monitor_feeds", "Configured feeds", registry=r)
        self.rules = Gauge("monitor_rules", "Loaded rules", registry=r)
        self.evicted = Counter(
            "monitor_redis_evicted_keys", "Keys Redis evicted while the daemon ran", registry=r
        )
        self.refusals = Counter(
            "monitor_redis_write_refusals",
            "Times Redis began refusing writes (OOM, READONLY, MISCONF, ACL), by reason",
            ["reason"],
            registry=r,
        )
        self.writable = Gauge(
            "monitor_redis_writable", "1 while Redis accepts the daemon's writes", registry=r
        )
        self.failing = Gauge(
            "monitor_items_failing_in_a_row", "Items that failed since the last success", registry=r
        )
        self.stalled = Gauge(
            "monitor_loop_seconds_since_turn",
            "Seconds since the processing loop turned",
            registry=r,
        )
        group = ["stream", "group"]
        self.group_lag = Gauge(
            "monitor_group_lag", "Entries not yet delivered to a consumer group", group, registry=r
        )
        self.group_pending = Gauge(
            "monitor_group_pending", "Entries delivered to a group, not acked", group, registry=r
        )
        self.group_age = Gauge(
            "monitor_group_oldest_seconds",
            "Age of a group's oldest entry not handled yet (pending or not delivered)",
            group,
            registry=r,
        )
        self.group_used = Gauge(
            "monitor_group_retention_used",
            "Share of the stream's retention a group's oldest unhandled entry has used "
            "(trimmed at 1; warned from 0.8)",
            group,
            registry=r,
        )
        self.items_trimmed = Counter(
            "monitor_items_trimmed_before_delivery",
            "Pending items found trimmed from the stream, dead-lettered",
            registry=r,
        )
        self.healthy = Gauge(
            "monitor_healthy", "1 while /healthz would answer 200 (Redis probe aside)", registry=r
        )
