"""The desk's routes. Endpoints are plain functions (Starlette runs them in its thread pool,
beside the synchronous Redis client); the live alerts feed is the one async endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import anyio
import jinja2
import redis
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.config import Settings, parse_duration
from monitor.desk import Desk, Filters, StoryCard
from monitor.errors import MonitorError
from monitor.keys import Keys
from monitor.model import AlertKind, alert_id
from monitor.queue import Retained, RetainedItems, _retained
from monitor.rules import Document, Rule, RuleSet, ad_hoc_rule
from monitor.rules.match import evaluate, explain
from monitor.rules.prefilter import keys

SESSION = "desk_session"
SEVERITIES = ("low", "medium", "high", "critical")
SCAN_ITEMS = 2000  # retained items a search or a rule test looks through, newest first
SHOWN = 200  # matches listed (with their explanations); all are counted
LIVE_STREAMS = 16  # live alert views open at once
_STREAM_ID = re.compile(r"^\d+-\d+$")


@dataclass
class Desktop:
    """What every page reads from."""

    settings: Settings
    client: redis.Redis
    rules_of: Callable[[], RuleSet]  # the rules in force (a daemon reloads them)
    keys: Keys
    desk: Desk
    retained: RetainedItems

    @property
    def rules(self) -> RuleSet:
        return self.rules_of()

    @property
    def writable(self) -> bool:
        return bool(self.settings.web.token)


def create_app(
    settings: Settings, client: redis.Redis, rules: RuleSet | Callable[[], RuleSet]
) -> Starlette:
    """The desk. `rules`: the rule set, or a function giving the one in force."""
    keys = Keys(settings.prefix)
    retention = settings.retention_days * 86400
    top = Desktop(
        settings=settings, client=client, keys=keys,
        rules_of=rules if callable(rules) else lambda: rules,
        desk=Desk(client, keys, retention=retention),
        retained=RetainedItems(client, keys, retention=retention,
                               maxlen=settings.retention_max_items),
    )  # fmt: skip
    pages = _Pages(top)
    static = resources.files("monitor.web") / "static"
    routes = [
        Route("/", pages.stories),
        Route("/story/{story_id}", pages.story),
        Route("/story/{story_id}/mute", pages.mute, methods=["POST"]),
        Route("/alerts", pages.alerts),
        Route("/alerts/stream", pages.alert_stream),
        Route("/feeds", pages.feeds),
        Route("/feeds/{feed}/{action}", pages.feed_action, methods=["POST"]),
        Route("/rules", pages.rules_page),
        Route("/search", pages.search),
        Route("/login", pages.login, methods=["GET", "POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    return Starlette(routes=routes)


def with_desk(
    desk: Starlette, endpoints: dict[str, Callable[[], tuple[int, str, bytes]]]
) -> Starlette:
    """An app serving `endpoints` (path -> (status, content type, body): a daemon's
    /healthz, /livez and /metrics) and the desk under every other path."""

    def answer(request: Request) -> Response:
        status, media, body = endpoints[request.url.path]()
        return Response(body, status_code=status, media_type=media)

    routes: list[Route | Mount] = [Route(path, answer) for path in endpoints]
    return Starlette(routes=[*routes, Mount("/", desk)])


class Served:
    """An ASGI app served by uvicorn in a thread, on a socket bound by the caller."""

    def __init__(self, app: Starlette, sock: socket.socket) -> None:
        import uvicorn

        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="http", daemon=True
        )
        self.thread.start()

    def shutdown(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket. TCP_NODELAY is inherited by connections: a keep-alive
    reply's body is not held back waiting for the ACK of its headers (40 ms a page)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.web", "templates"),
        autoescape=True,  # a feed is hostile input: everything is escaped unless marked
        undefined=jinja2.StrictUndefined,
    )
    env.filters["marked"] = marked
    env.filters["safe_href"] = safe_href
    env.filters["when"] = _when
    env.filters["ago"] = _ago
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


def _when(value: datetime | float | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(value: datetime | None) -> str:
    if value is None:
        return ""
    seconds = max(0.0, time.time() - value.timestamp())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


class _Pages:
    def __init__(self, top: Desktop) -> None:
        self.top = top
        self.env = _environment()
        token = top.settings.web.token.encode()
        self.session = hmac.new(token, b"desk-session", hashlib.sha256).hexdigest()
        self.csrf = hmac.new(token, b"desk-csrf", hashlib.sha256).hexdigest()
        self.live = 0  # open live alert views
        self.limiter = anyio.CapacityLimiter(LIVE_STREAMS)  # their blocking reads' threads

    # --- helpers -------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.update(
            request=request, writable=self.top.writable, signed_in=self.signed_in(request),
            csrf=self.csrf if self.signed_in(request) else "", rules=self.top.rules.rules,
            severities=SEVERITIES, query=dict(request.query_params),
        )  # fmt: skip
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)

    def signed_in(self, request: Request) -> bool:
        cookie = request.cookies.get(SESSION, "")
        return self.top.writable and _same(cookie, self.session)

    async def _writer(self, request: Request) -> dict[str, str] | Response:
        """The form of a write action, or the refusal: a session and its CSRF token."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not self.top.writable:
            return Response("read-only: set web.token to allow changes", 403)
        if not self.signed_in(request) or not hmac.compare_digest(form.get("csrf", ""), self.csrf):
            return Response("sign in first (and send the form's csrf field)", 403)
        return form

    # --- stories --------------------------------------------------------------------

    def stories(self, request: Request) -> Response:
        q = request.query_params
        since = 0.0
        if q.get("since"):
            try:
                since = time.time() - parse_duration(q["since"])
            except ValueError as exc:
                return self.render(request, "error.html", 400, message=str(exc))
        filters = Filters(rule=q.get("rule", ""), source=q.get("source", ""),
                          language=q.get("lang", ""), since=since)  # fmt: skip
        before = float(q["before"]) if _number(q.get("before")) else None
        started = time.perf_counter()
        cards = self.top.desk.stories(limit=50, before=before, filters=filters)
        more = ""
        if len(cards) == 50:
            params = {**q, "before": f"{cards[-1].active.timestamp():.3f}"}
            more = "?" + urlencode(params)
        return self.render(
            request, "stories.html", cards=cards, more=more, total=self.top.desk.count(),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )  # fmt: skip

    def story(self, request: Request) -> Response:
        card = self.top.desk.story(request.path_params["story_id"])
        if card is None:
            return self.render(request, "error.html", 404, message="no such story (retained)")
        entries = [r.entry for r in card.reports]
        kept = dict(zip(entries, self.top.retained.get(entries), strict=True))
        hits = {entry: self._hits(item) for entry, item in kept.items() if item is not None}
        alerts = [a for a in self._alerts(limit=5000) if a["story"]["id"] == card.id]
        mutes = self.top.desk.mutes_of(card)
        return self.render(request, "story.html", card=card, hits=hits, alerts=alerts,
                           mutes=mutes)  # fmt: skip

    async def mute(self, request: Request) -> Response:
        form = await self._writer(request)
        if isinstance(form, Response):
            return form
        story_id = request.path_params["story_id"]
        rule, scope = form.get("rule", ""), form.get("scope", "story")
        if self.top.rules.get(rule) is None or scope not in ("story", "source"):
            return Response("unknown rule or scope", 400)
        value = story_id if scope == "story" else form.get("source", "")
        undo = form.get("undo") == "1"
        await anyio.to_thread.run_sync(lambda: self.top.desk.mute(rule, scope, value, undo=undo))
        return RedirectResponse(f"/story/{story_id}", 303)

    def _hits(self, kept: Retained) -> list[tuple[str, list]]:
        """Per matching rule, the first hit of each of its terms (an alias counts once)."""
        doc = _document(kept)
        shown = []
        for match in self.top.rules.match(doc):
            first: dict[str, Any] = {}
            for hit in match.hits:
                first.setdefault(hit.term.split(":", 1)[0], hit)
            shown.append((match.rule_id, list(first.values())))
        return shown

    # --- alerts ---------------------------------------------------------------------

    def _alerts(self, *, limit: int, rule: str = "", severity: str = "") -> list[dict]:
        entries = self.top.client.xrevrange(self.top.keys.alerts, count=limit)
        shown = []
        for entry_id, fields in entries:
            alert = json.loads(fields["alert"])
            alert["_entry"] = entry_id
            if _alert_passes(alert, rule, severity):
                shown.append(alert)
        return shown

    def alerts(self, request: Request) -> Response:
        q = request.query_params
        shown = self._alerts(limit=500, rule=q.get("rule", ""), severity=q.get("severity", ""))
        last = shown[0]["_entry"] if shown else "$"
        stream = "/alerts/stream?" + urlencode({**q, "after": last})
        return self.render(request, "alerts.html", alerts=shown[:100], stream=stream)

    async def alert_stream(self, request: Request) -> Response:
        """Server-sent events: each new alert passing the filters, as JSON. A reconnecting
        browser resumes after the last event it got (Last-Event-ID). The blocking reads run
        on threads of their own limiter, and at most LIVE_STREAMS are open at once, so open
        tabs never starve the other pages (nor /healthz when the desk runs in the daemon)."""
        q = request.query_params
        rule, severity = q.get("rule", ""), q.get("severity", "")
        after = request.headers.get("last-event-id") or q.get("after", "$")
        if after != "$" and not _STREAM_ID.match(after):
            return Response("bad stream position", 400)
        if self.live >= LIVE_STREAMS:
            return Response("too many live views open", 503, headers={"Retry-After": "30"})
        client, key = self.top.client, self.top.keys.alerts

        async def events() -> AsyncIterator[str]:
            nonlocal after
            self.live += 1
            try:
                if after == "$":
                    last = await anyio.to_thread.run_sync(
                        lambda: client.xrevrange(key, count=1), limiter=self.limiter
                    )
                    after = last[0][0] if last else "0-0"
                yield ": connected\n\n"
                while not await request.is_disconnected():
                    reply = await anyio.to_thread.run_sync(
                        _read_after, client, key, after, limiter=self.limiter
                    )
                    for entry_id, fields in _stream_entries(reply):
                        after = entry_id
                        alert = json.loads(fields["alert"])
                        if _alert_passes(alert, rule, severity):
                            yield f"id: {entry_id}\ndata: {json.dumps(_alert_row(alert))}\n\n"
            finally:
                self.live -= 1

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    # --- feeds ----------------------------------------------------------------------

    def feeds(self, request: Request) -> Response:
        from monitor.registry import feed_rows

        rows = feed_rows(self.top.settings, self.top.client)
        rows.sort(key=lambda r: (not r["errors"], r["name"] or r["url"]))
        return self.render(request, "feeds.html", feeds=rows)

    async def feed_action(self, request: Request) -> Response:
        from monitor.registry import FeedRegistry, merged, poll_now

        form = await self._writer(request)
        if isinstance(form, Response):
            return form
        fid, action = request.path_params["feed"], request.path_params["action"]
        if action not in ("pause", "resume", "poll-now"):
            return Response("unknown action", 404)
        settings, client = self.top.settings, self.top.client
        registry = FeedRegistry(client, self.top.keys)
        from monitor.poll import feed_id

        feeds = merged(settings.feeds, registry)
        feed = next((f for f in feeds if feed_id(f) == fid), None)
        if feed is None:
            return Response("no such feed", 404)
        if action == "pause":
            await anyio.to_thread.run_sync(registry.pause, feed)
        elif action == "resume":
            await anyio.to_thread.run_sync(registry.resume, feed)
        else:
            await anyio.to_thread.run_sync(lambda: poll_now(settings, client, feed, feeds))
        return RedirectResponse("/feeds", 303)

    # --- rules, search --------------------------------------------------------------

    def rules_page(self, request: Request) -> Response:
        q = request.query_params
        days = _days(q.get("days"))
        chosen = self.top.rules.get(q.get("rule", ""))
        text = q.get("q", "") or (chosen.query if chosen else "")
        tested = None
        error = ""
        if text:
            try:
                rule = ad_hoc_rule(text, self.top.rules.aliases, chosen.id if chosen else "query")
            except MonitorError as exc:
                error = str(exc)
            else:
                tested = self._test(rule, days, alerted=chosen is not None)
        recent = {}
        for r in self.top.rules.rules:  # each rule's recent matches, from the desk's index
            recent[r.id] = self.top.desk.stories(limit=5, filters=Filters(rule=r.id), scan=500)
        return self.render(request, "rules.html", tested=tested, error=error, text=text,
                           days=days, chosen=chosen, recent=recent)  # fmt: skip

    def search(self, request: Request) -> Response:
        q = request.query_params
        days = _days(q.get("days"))
        text = q.get("q", "")
        found, error = None, ""
        if text:
            try:
                found = self._test(ad_hoc_rule(text, self.top.rules.aliases), days)
            except MonitorError as exc:
                error = str(exc)
        return self.render(request, "search.html", found=found, error=error, text=text,
                           days=days)  # fmt: skip

    def _test(self, rule: Rule, days: float, *, alerted: bool = False) -> dict[str, Any]:
        """What `rule` matches among the retained items of the last `days`, newest first,
        with each story's alert: whether its first matching original would raise `new`."""
        matches: list[dict[str, Any]] = []
        stories: dict[str, str] = {}
        scanned = 0
        needs = keys(rule.node)  # a match has one of these words (None: no such word)
        for entry_id, fields in _newest_retained(self.top.client, self.top.keys.retained,
                                                 since=time.time() - days * 86400):  # fmt: skip
            scanned += 1
            if scanned > SCAN_ITEMS:
                break
            if needs is not None and not _may_contain(fields, needs):
                continue
            kept = _retained(entry_id, fields)
            doc = _document(kept)
            match = rule.match(doc)
            if match is None:
                continue
            clauses = []
            for clause in _clauses(rule) if len(matches) < SHOWN else ():
                spans = evaluate(clause, doc)
                clauses.append((str(clause), spans is not None, explain(spans or [], doc)[:4]))
            story = kept.placement.story_id
            if str(kept.placement.outcome) in ("new_story", "same_story"):
                published = alerted and self.top.client.exists(
                    self.top.keys.alert_seen(alert_id(rule.id, story, AlertKind.NEW))
                )
                stories[story] = "alerted already" if published else "would raise new"
            else:
                stories.setdefault(story, "a copy: no alert")
            matches.append({"kept": kept, "match": match, "clauses": clauses})
        would = sum(v == "would raise new" for v in stories.values())
        return {
            "matches": matches[:SHOWN], "count": len(matches), "stories": stories,
            "scanned": min(scanned, SCAN_ITEMS), "would_alert": would,
        }  # fmt: skip

    # --- session --------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html", failed=False)
        form = await request.form()
        given = str(form.get("token", ""))
        if not self.top.writable or not _same(given, self.top.settings.web.token):
            return self.render(request, "login.html", 403, failed=True)
        response = RedirectResponse("/", 303)
        response.set_cookie(SESSION, self.session, httponly=True, samesite="strict",
                            max_age=7 * 86400, secure=request.url.scheme == "https")  # fmt: skip
        return response

    async def logout(self, request: Request) -> Response:
        form = await self._writer(request)
        if isinstance(form, Response):
            return form
        response = RedirectResponse("/", 303)
        response.delete_cookie(SESSION)
        return response


_SECURITY_HEADERS = {
    # Everything the pages need is ours: no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _document(kept: Retained) -> Document:
    return Document(
        title=kept.item.title or kept.article.title, text=kept.article.text,
        source=kept.item.source, lang=kept.article.language, url=kept.url,
    )  # fmt: skip


def _clauses(rule: Rule) -> tuple:
    from monitor.rules.query import And

    return rule.node.nodes if isinstance(rule.node, And) else (rule.node,)


def _newest_retained(client: redis.Redis, key: str, since: float) -> Iterator[tuple[str, dict]]:
    """Retained entries (id, fields), newest first, back to `since`."""
    high, low = "+", f"{int(since * 1000)}-0"
    while True:
        entries = client.xrevrange(key, max=high, min=low, count=500)
        yield from entries
        if len(entries) < 500:
            return
        high = "(" + entries[-1][0]


def _may_contain(fields: dict[str, str], needs: frozenset[tuple[str, bool]]) -> bool:
    """Whether a retained item may hold one of the (folded) words a match needs: a cheap
    look at its raw text before it is parsed and tokenised. Exact for ASCII text (a word
    or prefix that is not a substring of the lower-cased text cannot be one of its
    tokens); other text is always looked at properly."""
    text = "\n".join(fields.values())  # text, title, the item (source, summary), language
    if not text.isascii():
        return True
    lower = text.lower()
    return any(word in lower for word, _ in needs)


def _read_after(client: redis.Redis, key: str, after: str) -> Any:
    return client.xread({key: after}, count=50, block=1000)


def _alert_passes(alert: dict, rule: str, severity: str) -> bool:
    if rule and alert["rule"]["id"] != rule:
        return False
    if severity in SEVERITIES:
        return SEVERITIES.index(alert["rule"]["severity"]) >= SEVERITIES.index(severity)
    return True


def _alert_row(alert: dict) -> dict[str, Any]:
    """What the live alerts page shows of an alert (rendered as text by the page)."""
    return {
        "created": _when(alert["created_at"]), "kind": alert["kind"],
        "severity": alert["rule"]["severity"], "rule": alert["rule"]["name"],
        "title": alert["item"]["title"], "source": alert["item"]["source"],
        "url": alert["item"]["url"], "story": alert["story"]["id"],
        "size": alert["story"]["size"],
    }  # fmt: skip


def _stream_entries(reply: Any) -> list:
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3
        return next(iter(reply.values()))[0]
    return reply[0][1]


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of whatever was sent (any characters) with a secret."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _number(text: str | None) -> bool:
    try:
        return math.isfinite(float(text or ""))
    except ValueError:
        return False


def _days(text: str | None) -> float:
    return min(max(float(text or 7), 0.01), 365.0) if _number(text) else 7.0


__all__ = ["Served", "StoryCard", "bind", "create_app", "with_desk"]
