"""The Apprise sink: any Apprise URL (slack://, msteams://, discord://, tgram://, matrix://,
ntfy://, mmost://, mailto:// for e-mail through SMTP, json:// and form:// for a plain HTTP
endpoint…), with the message written for people (monitor/delivery/sinks/message.py).

Apprise reports success or failure, not the service's status code or Retry-After: every
failure counts as worth another try, and the runner's backoff, breaker and dead letters
(after max_deliveries) do the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import apprise

from monitor.delivery.sinks.base import Attempt
from monitor.delivery.sinks.digest import Window
from monitor.delivery.sinks.message import Message, alert_message, digest_message
from monitor.errors import ConfigError
from monitor.sinkconfig import SinkConfig


class AppriseSink:
    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.apprise = apprise.Apprise()
        if not self.apprise.add(config.url):
            raise ConfigError(
                f"sink {config.name!r}: Apprise does not recognise the url {config.shown_url!r} "
                "(see the Apprise wiki for each service's URL)"
            )

    def close(self) -> None:
        pass

    def send_alert(
        self, alert: dict[str, Any], delivery: int, told: frozenset[str] = frozenset()
    ) -> Attempt:
        severity = str((alert.get("rule") or {}).get("severity", ""))
        kind = apprise.NotifyType.WARNING if severity in ("high", "critical") else None
        return self._notify(alert_message(alert, told), kind or apprise.NotifyType.INFO)

    def send_digest(self, window: Window) -> Attempt:
        message = digest_message(window.sink, window.start, window.end, window.alerts)
        return self._notify(message, apprise.NotifyType.INFO)

    def _notify(self, message: Message, kind: Any) -> Attempt:
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            ok = self.apprise.notify(
                body=message.body,
                title=message.title,
                notify_type=kind,
                body_format=apprise.NotifyFormat.MARKDOWN,
            )
            logged = captured.getvalue().strip().splitlines()
        if ok:
            return Attempt(True, False, "sent")
        return Attempt(
            False, False, (logged[-1] if logged else "not sent (Apprise gave no reason)")[:300]
        )

    def preview_alert(self, alert: dict[str, Any]) -> str:
        return _shown(self.config, alert_message(alert))

    def preview_digest(self, window: Window) -> str:
        return _shown(
            self.config, digest_message(window.sink, window.start, window.end, window.alerts)
        )


def _shown(config: SinkConfig, message: Message) -> str:
    body = "\n".join("    " + line for line in message.body.splitlines())
    return f"to {config.shown_url}\n  {message.title}\n{body}"
