"""Fuzzing the desk (hypothesis): arbitrary query parameters, path parts and form fields
(unicode, control characters, huge, negative, NaN, percent-encoded junk, duplicated or
missing) on every route, read-only and signed in, over a desk seeded by a replay. Whatever
is sent, the answer is never a server error nor a traceback, and a refusal says why in
one line."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest
import redis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, assume, example, given, seed, settings
from hypothesis import strategies as st

from monitor.config import WebSettings
from monitor.rules import load_rules
from monitor.web import create_app

from .conftest import RULES
from .test_web import TOKEN, replayed

# 2,500 requests over the routes a run (FUZZ_DESK_EXAMPLES=N: N). They are drawn from a seed
# that changes every day (FUZZ_DESK_SEED=S: seed S, to reproduce a failure; the test prints
# the seed it used), so that successive runs send different requests.
EXAMPLES = int(os.environ.get("FUZZ_DESK_EXAMPLES", "2500"))
SEED = int(os.environ.get("FUZZ_DESK_SEED", str(int(time.time() // 86400))))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

NASTY = [
    "",
    " ",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "1e309",
    "-1e309",
    "1e-320",
    "-1",
    "0",
    "-0",
    "1" * 400,
    "9" * 400 + "d",
    "1.5",
    "0x10",
    "1_000",
    "\x00",
    "\x1b[31m",
    "\r\nX-Injected: 1",
    "\ud800",
    "é",
    "🦀",
    "%00",
    "%ZZ",
    "%",
    "../..",
    "a/b",
    "a/../b",
    "/",
    "dprk-russia-treaty",
    "dprk-russia-treaty/x",
    "taiwan-strait-drills",
    "high",
    "critical",
    "HIGH",
    "story",
    "source",
    "1",
    "$",
    "0-0",
    "1-1",
    "99999999999999999999999-0",
    "1h",
    "2w",
    "0d",
    "-1d",
    "1e9w",
    "(",
    ")",
    "((((kim",
    "kim))))",
    '"',
    "NEAR/99999999999",
    "title:",
    "@nobody",
    "@leaders",
    "kim AND",
    "*",
    "x" * 10_000,
    "(" * 3000 + "kim" + ")" * 3000,
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "{% raw %}",
]
# Text, mostly of the nasty sorts above; surrogates cannot be sent and are left out.
VALUE = st.sampled_from(NASTY).filter(lambda v: "\ud800" not in v) | st.text(
    st.characters(exclude_categories=["Cs"]), max_size=40
)
PARAMS = ["since", "rule", "source", "lang", "before", "severity", "q", "days", "after", "x"]
PARAMS += ["hours"]
FIELDS = ["csrf", "rule", "scope", "source", "undo", "token", "x"]


def pairs(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Fields given any number of times (missing, once, duplicated), in any order."""
    return st.lists(st.tuples(st.sampled_from(names) | VALUE, VALUE), max_size=6)


def path_part() -> st.SearchStrategy[str]:
    """A path segment: sent percent-encoded (any text), or as raw junk."""
    return VALUE.map(lambda v: quote(v, safe="")) | st.sampled_from(
        ["%", "%ZZ", "%00", "%2F", "a%2Fb", "..", ".", "%C3", "%FF%FE", "a/b"]
    )


GET = ["/", "/alerts", "/feeds", "/rules", "/search", "/login", "/story/{id}", "/alerts/stream"]
GET += ["/top"]
POST = [
    "/story/{id}/mute",
    "/feeds/{feed}/{action}",
    "/login",
    "/logout",
    "/feeds/{feed}/pause",
    "/feeds/{feed}/poll-now",
]


ROUTES = [("GET", t) for t in GET] + [("POST", t) for t in POST]
SHARDS = 4  # the routes split into shards, fuzzed by parallel workers


@st.composite
def requests(draw, shard: int) -> dict:
    """One request to a route of the shard: method, path (its parts fuzzed), query, form,
    CSRF and session."""
    method, template = draw(st.sampled_from(ROUTES[shard::SHARDS]))
    feed = draw(path_part() | st.just("{feed}"))  # "{feed}": a real feed's id
    path = template.format(id=draw(path_part()), feed=feed, action=draw(path_part()))
    query = draw(pairs(PARAMS))
    if path == "/alerts/stream":
        # A valid position streams until the browser leaves: only refusals are fuzzed here.
        query.append(("after", draw(VALUE.filter(lambda v: not re.match(r"^(\$|\d+-\d+)$", v)))))
    return {
        "method": method,
        "path": path,
        "query": query,
        "form": draw(pairs(FIELDS)),
        "csrf": draw(st.sampled_from(["good", "bad", "none"])),
        "signed_in": draw(st.booleans()),
    }


class Desk:
    """A blocking client of the app in-process (no socket): an async httpx client on the
    ASGI transport, driven from a portal's event loop. Server errors come back as 500s."""

    def __init__(self, portal: BlockingPortal, app) -> None:
        self.portal = portal
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://desk")

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.portal.call(lambda: self.client.request(method, path, **kwargs))

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@pytest.fixture
def desks(redis_url: str, client: redis.Redis) -> Iterator[dict[bool, Desk]]:
    """In-process clients of a seeded, writable desk: signed in (True) and not (False)."""
    settings = dataclasses.replace(replayed(redis_url, client), web=WebSettings(token=TOKEN))
    app = create_app(settings, client, load_rules(RULES))
    with start_blocking_portal() as portal:
        anonymous, signed = Desk(portal, app), Desk(portal, app)
        assert signed.post("/login", data={"token": TOKEN}, follow_redirects=False).is_redirect
        yield {False: anonymous, True: signed}
        for desk in (anonymous, signed):
            portal.call(desk.client.aclose)


def assert_clean(response, request: dict) -> None:
    body = response.text
    assert response.status_code < 500, (request, body[:500])
    assert "Traceback" not in body and 'File "' not in body, (request, body[:500])
    if response.status_code >= 400:
        if response.headers.get("content-type", "").startswith("text/html"):
            found = re.search(r'<p class="error">(.*?)</p>', body, re.S)
            message = found[1] if found else ""
            if not found:  # a page that shows its own refusal (login, a bad query)
                assert response.status_code in (403,) and "sign" in body.lower(), request
        else:
            message = body
        assert "\n" not in message.strip() and len(message) < 300, (request, message)


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_any_request_gets_a_clean_answer(desks: dict[bool, Desk], shard: int) -> None:
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', desks[True].get("/feeds").text)
    assert csrf
    feed = re.search(r'action="/feeds/([^/"]+)/', desks[True].get("/feeds").text)
    seen = {"count": 0}

    @seed(SEED + shard)
    @settings(FUZZ, max_examples=FUZZ.max_examples // SHARDS)
    @given(requests(shard))
    @example({"method": "GET", "path": "/", "query": [("before", "nan")], "form": [],
              "csrf": "none", "signed_in": False})  # fmt: skip
    def run(request: dict) -> None:
        # Longer URLs no client sends (httpx refuses them, as servers do past ~8 KB lines).
        assume(len(urlencode(request["query"])) < 60_000)
        seen["count"] += 1
        web = desks[request["signed_in"]]
        form = list(request["form"])
        if request["csrf"] == "good":
            form.append(("csrf", csrf[1]))
        elif request["csrf"] == "bad":
            form.append(("csrf", "0" * 64))
        fields: dict[str, list[str]] = {}
        for name, value in form:
            fields.setdefault(name, []).append(value)
        response = web.request(
            request["method"],
            request["path"].replace("{feed}", feed[1] if feed else "none"),
            params=request["query"],
            data=fields if request["method"] == "POST" else None,
            follow_redirects=False,
        )
        assert_clean(response, request)

    print(f"desk fuzz, shard {shard}: FUZZ_DESK_SEED={SEED}")  # shown when it fails
    run()
    print(f"desk fuzz, shard {shard}: {seen['count']} requests")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"csrf=x"),  # no boundary
        ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data\r\n\r\nx"),
        ("multipart/form-data; boundary=zz", b"--zz--garbage\xff" * 100),
        ("application/x-www-form-urlencoded", b"%ZZ=%&&==&csrf=%00&rule=\xff\xfe"),
        ("application/x-www-form-urlencoded", b"a=" + b"x" * 2_000_000),
        ("application/json", b'{"csrf": 1}'),
        ("text/plain; charset=no-such", b"\xff"),
    ],
)
@pytest.mark.parametrize("path", ["/login", "/logout", "/story/x/mute", "/feeds/x/pause"])
def test_any_form_body_gets_a_clean_answer(
    desks: dict[bool, Desk], path: str, content_type: str, body: bytes
) -> None:
    for web in desks.values():
        response = web.post(
            path, content=body, headers={"content-type": content_type}, follow_redirects=False
        )
        assert_clean(response, {"path": path, "content-type": content_type})
