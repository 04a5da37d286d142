"""The webhook sink: POST each alert's JSON document (or a digest's), signed two ways.

Standard Webhooks (https://www.standardwebhooks.com, what its libraries verify):
`webhook-id` (the alert id, or the digest window's id: the same on every retry, so a
receiver deduplicates on it), `webhook-timestamp` (Unix seconds) and `webhook-signature:
v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. The key is the secret's bytes; a secret
written as `whsec_<base64>` (the libraries' own format) is that base64 decoded.

The earlier header, kept for receivers written against it: `X-Monitor-Timestamp` and
`X-Monitor-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, key = the secret's
UTF-8 bytes (monitor/delivery/forward.py, `sign`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from monitor.delivery.sinks.base import Attempt
from monitor.delivery.sinks.digest import Window
from monitor.ingest.schedule import retry_after
from monitor.sinkconfig import SinkConfig

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
DIGEST_SCHEMA = "monitor.digest/1"


def standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_") + "==")
        except (binascii.Error, ValueError):
            pass  # not base64 after all: the text itself is the key
    return secret.encode()


def standard_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def legacy_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def headers(message_id: str, delivery: int, body: bytes, secret: str) -> dict[str, str]:
    """Every header of a webhook request: both signatures when there is a secret."""
    timestamp = str(int(time.time()))
    out = {
        "Content-Type": "application/json",
        "User-Agent": "news-monitor-forwarder",
        "X-Monitor-Alert-Id": message_id,
        "X-Monitor-Delivery": str(delivery),
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
    }
    if secret:
        out["webhook-signature"] = standard_signature(secret, message_id, timestamp, body)
        out["X-Monitor-Timestamp"] = timestamp
        out["X-Monitor-Signature"] = legacy_signature(secret, timestamp, body)
    return out


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def digest_document(window: Window) -> dict[str, Any]:
    return {
        "schema": DIGEST_SCHEMA,
        "id": window.id,
        "sink": window.sink,
        "window": {"start": _iso(window.start), "end": _iso(window.end)},
        "alerts": list(window.alerts),
    }


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class WebhookSink:
    def __init__(self, config: SinkConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self.client = client or httpx.Client(timeout=config.timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def send_alert(
        self, alert: dict[str, Any], delivery: int, told: frozenset[str] = frozenset()
    ) -> Attempt:
        return self.post(str(alert.get("id", "")), encode(alert), delivery)

    def send_digest(self, window: Window) -> Attempt:
        return self.post(window.id, encode(digest_document(window)), 1)

    def post(self, message_id: str, body: bytes, delivery: int) -> Attempt:
        """One request: delivered on 2xx; 408, 425, 429 and 5xx are worth another try."""
        try:
            response = self.client.post(
                self.config.url,
                content=body,
                headers=headers(message_id, delivery, body, self.config.secret),
            )
        except httpx.HTTPError as exc:
            return Attempt(False, False, f"{type(exc).__name__}: {exc}")
        detail = f"HTTP {response.status_code}"
        if 200 <= response.status_code < 300:
            return Attempt(True, False, detail)
        return Attempt(
            False,
            response.status_code not in RETRYABLE,
            detail,
            retry_after(response.headers.get("retry-after")),
        )

    def preview_alert(self, alert: dict[str, Any]) -> str:
        body = encode(alert)
        shown = body[:300].decode(errors="replace")
        head = f"POST {self.config.shown_url} webhook-id: {alert.get('id')} ({len(body)} bytes)"
        return f"{head}\n{shown}…"

    def preview_digest(self, window: Window) -> str:
        body = encode(digest_document(window))
        count = len(window.alerts)
        return (
            f"POST {self.config.shown_url} webhook-id: {window.id} ({len(body)} bytes: "
            f"{DIGEST_SCHEMA}, {count} alert{'' if count == 1 else 's'})"
        )
