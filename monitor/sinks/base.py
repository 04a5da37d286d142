"""What every kind of sink does: send an alert or a digest window once, say how it went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from monitor.sinks.config import SinkConfig
from monitor.sinks.digest import Window


@dataclass(frozen=True, slots=True)
class Attempt:
    delivered: bool
    final: bool = False  # not delivered, and trying again will not help
    detail: str = ""
    retry_after: float | None = None  # seconds the receiver asked to wait


class Sink(Protocol):
    config: SinkConfig

    def send_alert(
        self, alert: dict[str, Any], delivery: int, told: frozenset[str] = frozenset()
    ) -> Attempt:
        """`told`: the URLs of the story's reports this sink has already sent people."""
        ...

    def send_digest(self, window: Window) -> Attempt: ...

    def preview_alert(self, alert: dict[str, Any]) -> str: ...

    def preview_digest(self, window: Window) -> str: ...

    def close(self) -> None: ...


def build(config: SinkConfig) -> Sink:
    """The sink of a configuration (an Apprise URL it does not know is an error here)."""
    if config.type == "webhook":
        from monitor.sinks.webhook import WebhookSink

        return WebhookSink(config)
    from monitor.sinks.notify import AppriseSink

    return AppriseSink(config)
