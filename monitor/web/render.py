"""How the desk renders: Jinja2 with autoescape (a feed is hostile input) and its filters."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jinja2
from markupsafe import Markup, escape

from monitor.units import counted


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.web", "templates"),
        autoescape=True,  # a feed is hostile input: everything is escaped unless marked
        undefined=jinja2.StrictUndefined,
    )
    env.filters["marked"] = marked
    env.filters["safe_href"] = safe_href
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.filters["counted"] = counted  # {{ n|counted("report") }}: "1 report", "2 reports"
    env.filters["number"] = number
    return env


def marked(snippet: str) -> Markup:
    """A snippet with its «hits» as <mark>, everything else escaped."""
    out = []
    for n, piece in enumerate(str(snippet).replace("»", "«").split("«")):
        out.append(f"<mark>{escape(piece)}</mark>" if n % 2 else str(escape(piece)))
    return Markup("".join(out))


def safe_href(url: str) -> str:
    """A link for people: http(s) only (a feed's `javascript:` link is not one)."""
    return url if url.lower().startswith(("https://", "http://")) else "#"


def when(value: datetime | float | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def number(value: float) -> str:
    """A number as people write it: 7, 0.5, 1.25 (not 7.0), to two decimals at most."""
    return f"{round(float(value), 2):g}"


def ago(value: datetime | None) -> str:
    if value is None:
        return ""
    seconds = max(0.0, time.time() - value.timestamp())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


SECURITY_HEADERS = {
    # Everything the pages need is ours: no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
