"""A sink from its settings: the one module that knows every kind of sink."""

from __future__ import annotations

from monitor.delivery.sinks.base import Sink
from monitor.delivery.sinks.notify import AppriseSink
from monitor.delivery.sinks.webhook import WebhookSink
from monitor.sinkconfig import SinkConfig


def build(config: SinkConfig) -> Sink:
    """The sink of a configuration (an Apprise URL it does not know is an error here)."""
    if config.type == "webhook":
        return WebhookSink(config)
    return AppriseSink(config)
