"""What every kind of sink does: send an alert or a digest window once, say how it went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from monitor.delivery.sinks.digest import Window
from monitor.sinkconfig import SinkConfig


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
