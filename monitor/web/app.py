"""The desk's routes: each parses its request, asks the desk service (service.py) and
renders what it gives. Endpoints are plain functions (Starlette runs them in its thread
pool, beside the synchronous Redis client); the live alerts feed is the one async endpoint,
and the write actions are async to read their forms."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import anyio
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.config import Settings, parse_duration
from monitor.retained.cards import Filters
from monitor.rules import RuleFiles, RuleSet
from monitor.store.keys import Keys
from monitor.store.refusals import refusal
from monitor.web.reading import SEVERITIES, days_param, is_number, shown
from monitor.web.render import SECURITY_HEADERS, environment
from monitor.web.serve import Served, bind, with_desk
from monitor.web.service import FEED_ACTIONS, STORIES, DeskService
from monitor.web.session import Sessions, client_address

LIVE_STREAMS = 16  # live alert views open at once
ALERTS_SHOWN = 100  # alerts the alerts page lists (the live view adds the new ones)
_STREAM_ID = re.compile(r"^\d+-\d+$")


def create_app(
    settings: Settings, client: redis.Redis, rules: RuleSet | RuleFiles, *, reload: bool = True
) -> Starlette:
    """The desk. `rules`: the rule set, or a rules directory's, loaded again when its files
    change unless `reload` is False (a daemon's desk: the daemon reloads them)."""
    service = DeskService(settings, client, rules, reload=reload)
    sessions = Sessions(
        settings.web.token, client, Keys(settings.prefix), settings.web.session_hours
    )
    pages = Pages(service, sessions)
    static = resources.files("monitor.web") / "static"
    routes = [
        Route("/", pages.stories),
        Route("/top", pages.top),
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
    return Starlette(routes=routes, exception_handlers={redis.RedisError: pages.redis_refused})


class Pages:
    """The route handlers."""

    def __init__(self, service: DeskService, session: Sessions) -> None:
        self.service = service
        self.session = session
        self.env = environment()
        self.live = 0  # open live alert views
        self.limiter = anyio.CapacityLimiter(LIVE_STREAMS)  # their blocking reads' threads

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        opened = self.session.current(request)
        context.update(
            request=request,
            writable=self.session.writable,
            signed_in=opened is not None,
            csrf=opened.csrf if opened else "",
            rules=self.service.rules.rules,
            severities=SEVERITIES,
            query=dict(request.query_params),
        )
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "error.html", status, message=message)

    def redis_refused(self, request: Request, exc: Exception) -> Response:
        """A page that Redis refused (out of memory, a replica, an ACL denial…): 503, saying
        why and that nothing was done; any other Redis error stays a server error."""
        found = refusal(exc)
        if found is None:
            raise exc
        if found.writes_refused:
            message = (
                f"Redis refuses writes: {found.reason}. Nothing was changed; try again once "
                "Redis accepts writes (free memory, raise maxmemory, or fix the replica, disk "
                "or user)."
            )
        else:
            message = f"Redis refused the command: {found.reason}. Try again in a moment."
        response = self.render(request, "error.html", 503, message=message, title="Unavailable")
        response.headers["Retry-After"] = "30"
        return response

    # --- stories --------------------------------------------------------------------

    def stories(self, request: Request) -> Response:
        q = request.query_params
        since = 0.0
        if q.get("since"):
            try:
                since = time.time() - parse_duration(q["since"])
            except ValueError:
                return self.error(
                    request,
                    400,
                    f"since: expected a duration like 90m, 12h, 3d or 2w, got {shown(q['since'])}",
                )
        filters = Filters(
            rule=q.get("rule", ""),
            source=q.get("source", ""),
            language=q.get("lang", ""),
            since=since,
        )
        before = float(q["before"]) if is_number(q.get("before")) else None
        found = self.service.stories(filters, before)
        more = ""
        if len(found.cards) == STORIES:
            more = "?" + urlencode({**q, "before": f"{found.cards[-1].active.timestamp():.3f}"})
        unknown = filters.rule if filters.rule and not self.service.rules.get(filters.rule) else ""
        return self.render(
            request,
            "stories.html",
            cards=found.cards,
            more=more,
            total=found.total,
            ms=found.ms,
            filtered=filters != Filters(),
            unknown_rule=unknown,
        )

    def top(self, request: Request) -> Response:
        """The stories most reported in the last hours of report time, with their reports
        per hour drawn as bars."""
        q = request.query_params
        hours = q.get("hours", "6")
        if not hours.isdigit() or not 1 <= int(hours) <= 720:
            return self.error(request, 400, f"hours: expected 1 to 720, got {shown(hours)}")
        found = self.service.top(int(hours), q.get("rule", ""))
        return self.render(request, "top.html", top=found)

    def story(self, request: Request) -> Response:
        page = self.service.story(request.path_params["story_id"])
        if page is None:
            return self.error(request, 404, "no such story (retained)")
        return self.render(
            request,
            "story.html",
            card=page.card,
            hits=page.hits,
            alerts=page.alerts,
            mutes=page.mutes,
        )

    async def mute(self, request: Request) -> Response:
        form = await self.session.checked_form(request)
        story_id = request.path_params["story_id"]
        rule, scope, source = (
            form.get("rule", ""),
            form.get("scope", "story"),
            form.get("source", ""),
        )
        undo = form.get("undo") == "1"
        muted = await anyio.to_thread.run_sync(
            lambda: self.service.mute(story_id, rule, scope, source, undo=undo)
        )
        if not muted:
            return PlainTextResponse("unknown rule or scope", 400)
        return RedirectResponse(f"/story/{story_id}", 303)

    # --- alerts ---------------------------------------------------------------------

    def alerts(self, request: Request) -> Response:
        q = request.query_params
        shown = self.service.alerts(q.get("rule", ""), q.get("severity", ""))
        last = shown[0].entry_id if shown else "$"
        stream = "/alerts/stream?" + urlencode({**q, "after": last})
        alerts = [d.alert for d in shown[:ALERTS_SHOWN]]
        return self.render(request, "alerts.html", alerts=alerts, stream=stream)

    async def alert_stream(self, request: Request) -> Response:
        """Server-sent events: each new alert passing the filters, as JSON. A reconnecting
        browser resumes after the last event it got (Last-Event-ID). The blocking reads run
        on threads of their own limiter, and at most LIVE_STREAMS are open at once, so open
        tabs never starve the other pages (nor /healthz when the desk runs in the daemon)."""
        q = request.query_params
        rule, severity = q.get("rule", ""), q.get("severity", "")
        after = request.headers.get("last-event-id") or q.get("after", "$")
        if after != "$" and not _STREAM_ID.match(after):
            return PlainTextResponse("bad stream position", 400)
        if self.live >= LIVE_STREAMS:
            return PlainTextResponse("too many live views open", 503, headers={"Retry-After": "30"})
        service = self.service

        async def events() -> AsyncIterator[str]:
            nonlocal after
            self.live += 1
            try:
                if after == "$":
                    after = await anyio.to_thread.run_sync(
                        service.newest_alert, limiter=self.limiter
                    )
                yield ": connected\n\n"
                while not await request.is_disconnected():
                    after, rows = await anyio.to_thread.run_sync(
                        service.alerts_after, after, rule, severity, limiter=self.limiter
                    )
                    for entry_id, row in rows:
                        yield f"id: {entry_id}\ndata: {json.dumps(row)}\n\n"
            finally:
                self.live -= 1

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    # --- feeds ----------------------------------------------------------------------

    def feeds(self, request: Request) -> Response:
        return self.render(request, "feeds.html", feeds=self.service.feeds())

    async def feed_action(self, request: Request) -> Response:
        await self.session.checked_form(request)
        fid, action = request.path_params["feed"], request.path_params["action"]
        if action not in FEED_ACTIONS:
            return PlainTextResponse("unknown action", 404)
        found = await anyio.to_thread.run_sync(self.service.feed_action, fid, action)
        if not found:
            return PlainTextResponse("no such feed", 404)
        return RedirectResponse("/feeds", 303)

    # --- rules, search --------------------------------------------------------------

    def rules_page(self, request: Request) -> Response:
        q = request.query_params
        days = days_param(q.get("days"))
        page = self.service.rules_page(q.get("rule", ""), q.get("q", ""), days)
        return self.render(
            request,
            "rules.html",
            tested=page.tried.found,
            error=page.tried.error,
            hints=page.tried.hints,
            text=page.text,
            days=days,
            chosen=page.chosen,
            recent=page.recent,
            rules_error=self.service.rules_error,
        )

    def search(self, request: Request) -> Response:
        q = request.query_params
        days = days_param(q.get("days"))
        text = q.get("q", "")
        tried = self.service.search(text, days)
        return self.render(
            request,
            "search.html",
            found=tried.found,
            error=tried.error,
            hints=tried.hints,
            text=text,
            days=days,
        )

    # --- session --------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return await anyio.to_thread.run_sync(self.sign_in_page, request)
        form = await request.form()
        return await anyio.to_thread.run_sync(self.sign_in, request, str(form.get("token", "")))

    def sign_in_page(self, request: Request) -> Response:
        return self.render(request, "login.html", failed=False, refused="")

    def sign_in(self, request: Request, given: str) -> Response:
        """A session for the right token; wrong ones are counted per address, and past the
        limit the address waits (429) whatever it sends."""
        if not self.session.writable:
            return self.render(request, "login.html", 403, failed=True, refused="")
        address = client_address(request)
        wait = self.session.refused_for(address)
        if wait:
            minutes = -(-wait // 60)
            message = f"Too many wrong tokens from this address: try again in {minutes} min."
            response = self.render(request, "login.html", 429, failed=False, refused=message)
            response.headers["Retry-After"] = str(wait)
            return response
        if not self.session.opens(given):
            return self.render(request, "login.html", 403, failed=True, refused="")
        self.session.signed_in_from(address)
        response = RedirectResponse("/", 303)
        self.session.open(response, request)
        return response

    async def logout(self, request: Request) -> Response:
        await self.session.checked_form(request)
        response = RedirectResponse("/", 303)
        await anyio.to_thread.run_sync(self.session.close, response, request)
        return response


__all__ = ["Served", "bind", "create_app", "with_desk"]
