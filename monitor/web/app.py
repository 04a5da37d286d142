"""The desk's routes. Endpoints are plain functions (Starlette runs them in its thread pool,
beside the synchronous Redis client); the live alerts feed is the one async endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import anyio
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.config import Settings, parse_duration
from monitor.errors import MonitorError
from monitor.model import AlertKind, alert_id
from monitor.retained.cards import Desk, Filters, StoryCard
from monitor.retained.items import Retained, RetainedItems, retained_entry
from monitor.rules import Rule, RuleSet, ad_hoc_rule
from monitor.rules.match import evaluate, explain
from monitor.rules.prefilter import keys
from monitor.store.keys import Keys
from monitor.web.reading import (
    SEVERITIES,
    alert_passes,
    alert_row,
    clauses_of,
    days_param,
    document_of,
    is_number,
    may_contain,
    newest_retained,
    read_after,
    same_secret,
    stream_entries,
)
from monitor.web.render import SECURITY_HEADERS, environment
from monitor.web.serve import Served, bind, with_desk

SESSION = "desk_session"
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
        settings=settings,
        client=client,
        keys=keys,
        rules_of=rules if callable(rules) else lambda: rules,
        desk=Desk(client, keys, retention=retention),
        retained=RetainedItems(
            client, keys, retention=retention, maxlen=settings.retention_max_items
        ),
    )
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


class _Pages:
    def __init__(self, top: Desktop) -> None:
        self.top = top
        self.env = environment()
        token = top.settings.web.token.encode()
        self.session = hmac.new(token, b"desk-session", hashlib.sha256).hexdigest()
        self.csrf = hmac.new(token, b"desk-csrf", hashlib.sha256).hexdigest()
        self.live = 0  # open live alert views
        self.limiter = anyio.CapacityLimiter(LIVE_STREAMS)  # their blocking reads' threads

    # --- helpers -------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.update(
            request=request,
            writable=self.top.writable,
            signed_in=self.signed_in(request),
            csrf=self.csrf if self.signed_in(request) else "",
            rules=self.top.rules.rules,
            severities=SEVERITIES,
            query=dict(request.query_params),
        )
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def signed_in(self, request: Request) -> bool:
        cookie = request.cookies.get(SESSION, "")
        return self.top.writable and same_secret(cookie, self.session)

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
        filters = Filters(
            rule=q.get("rule", ""),
            source=q.get("source", ""),
            language=q.get("lang", ""),
            since=since,
        )
        before = float(q["before"]) if is_number(q.get("before")) else None
        started = time.perf_counter()
        cards = self.top.desk.stories(limit=50, before=before, filters=filters)
        more = ""
        if len(cards) == 50:
            params = {**q, "before": f"{cards[-1].active.timestamp():.3f}"}
            more = "?" + urlencode(params)
        return self.render(
            request,
            "stories.html",
            cards=cards,
            more=more,
            total=self.top.desk.count(),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def story(self, request: Request) -> Response:
        card = self.top.desk.story(request.path_params["story_id"])
        if card is None:
            return self.render(request, "error.html", 404, message="no such story (retained)")
        entries = [r.entry for r in card.reports]
        kept = dict(zip(entries, self.top.retained.get(entries), strict=True))
        hits = {entry: self._hits(item) for entry, item in kept.items() if item is not None}
        alerts = [a for a in self._alerts(limit=5000, story=card.id) if a["story"]["id"] == card.id]
        mutes = self.top.desk.mutes_of(card)
        return self.render(request, "story.html", card=card, hits=hits, alerts=alerts, mutes=mutes)

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
        doc = document_of(kept)
        shown = []
        for match in self.top.rules.match(doc):
            first: dict[str, Any] = {}
            for hit in match.hits:
                first.setdefault(hit.term.split(":", 1)[0], hit)
            shown.append((match.rule_id, list(first.values())))
        return shown

    # --- alerts ---------------------------------------------------------------------

    def _alerts(
        self, *, limit: int, rule: str = "", severity: str = "", story: str = ""
    ) -> list[dict]:
        """The newest `limit` alerts passing the filters (`story`: only those whose JSON
        holds that id at all are parsed; the caller checks the field)."""
        entries = self.top.client.xrevrange(self.top.keys.alerts, count=limit)
        shown = []
        for entry_id, fields in entries:
            if story and story not in fields["alert"]:
                continue
            alert = json.loads(fields["alert"])
            alert["_entry"] = entry_id
            if alert_passes(alert, rule, severity):
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
                        read_after, client, key, after, limiter=self.limiter
                    )
                    for entry_id, fields in stream_entries(reply):
                        after = entry_id
                        alert = json.loads(fields["alert"])
                        if alert_passes(alert, rule, severity):
                            yield f"id: {entry_id}\ndata: {json.dumps(alert_row(alert))}\n\n"
            finally:
                self.live -= 1

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    # --- feeds ----------------------------------------------------------------------

    def feeds(self, request: Request) -> Response:
        from monitor.ingest.registry import feed_rows

        rows = feed_rows(self.top.settings, self.top.client)
        rows.sort(key=lambda r: (not r["errors"], r["name"] or r["url"]))
        return self.render(request, "feeds.html", feeds=rows)

    async def feed_action(self, request: Request) -> Response:
        from monitor.ingest.registry import FeedRegistry, merged, poll_now

        form = await self._writer(request)
        if isinstance(form, Response):
            return form
        fid, action = request.path_params["feed"], request.path_params["action"]
        if action not in ("pause", "resume", "poll-now"):
            return Response("unknown action", 404)
        settings, client = self.top.settings, self.top.client
        registry = FeedRegistry(client, self.top.keys)
        from monitor.ingest.poll import feed_id

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
        days = days_param(q.get("days"))
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
        return self.render(
            request,
            "rules.html",
            tested=tested,
            error=error,
            text=text,
            days=days,
            chosen=chosen,
            recent=recent,
        )

    def search(self, request: Request) -> Response:
        q = request.query_params
        days = days_param(q.get("days"))
        text = q.get("q", "")
        found, error = None, ""
        if text:
            try:
                found = self._test(ad_hoc_rule(text, self.top.rules.aliases), days)
            except MonitorError as exc:
                error = str(exc)
        return self.render(request, "search.html", found=found, error=error, text=text, days=days)

    def _test(self, rule: Rule, days: float, *, alerted: bool = False) -> dict[str, Any]:
        """What `rule` matches among the retained items of the last `days`, newest first,
        with each story's alert: whether its first matching original would raise `new`."""
        matches: list[dict[str, Any]] = []
        stories: dict[str, str] = {}
        scanned = 0
        needs = keys(rule.node)  # a match has one of these words (None: no such word)
        for entry_id, fields in newest_retained(
            self.top.client, self.top.keys.retained, since=time.time() - days * 86400
        ):
            scanned += 1
            if scanned > SCAN_ITEMS:
                break
            if needs is not None and not may_contain(fields, needs):
                continue
            kept = retained_entry(entry_id, fields)
            doc = document_of(kept)
            match = rule.match(doc)
            if match is None:
                continue
            clauses = []
            for clause in clauses_of(rule) if len(matches) < SHOWN else ():
                spans = evaluate(clause, doc)
                clauses.append((str(clause), spans is not None, explain(spans or [], doc)[:4]))
            story = kept.placement.story_id
            if kept.placement.outcome.is_original:
                published = alerted and self.top.client.exists(
                    self.top.keys.alert_seen(alert_id(rule.id, story, AlertKind.NEW))
                )
                stories[story] = "alerted already" if published else "would raise new"
            else:
                stories.setdefault(story, "a copy: no alert")
            matches.append({"kept": kept, "match": match, "clauses": clauses})
        would = sum(v == "would raise new" for v in stories.values())
        return {
            "matches": matches[:SHOWN],
            "count": len(matches),
            "stories": stories,
            "scanned": min(scanned, SCAN_ITEMS),
            "would_alert": would,
        }

    # --- session --------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html", failed=False)
        form = await request.form()
        given = str(form.get("token", ""))
        if not self.top.writable or not same_secret(given, self.top.settings.web.token):
            return self.render(request, "login.html", 403, failed=True)
        response = RedirectResponse("/", 303)
        response.set_cookie(
            SESSION,
            self.session,
            httponly=True,
            samesite="strict",
            max_age=7 * 86400,
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        form = await self._writer(request)
        if isinstance(form, Response):
            return form
        response = RedirectResponse("/", 303)
        response.delete_cookie(SESSION)
        return response


__all__ = ["Served", "StoryCard", "bind", "create_app", "with_desk"]
