"""The desk's sessions: one per sign-in, in Redis with an expiry; a cookie copied before
sign-out, expiry or a change of the token is refused after it; wrong tokens are limited
per client address."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from monitor.config import Settings, WebSettings
from monitor.errors import ConfigError
from monitor.web.session import COOKIE, SIGN_IN_FAILURES, SIGN_IN_WINDOW

TOKEN = "s3cret-desk-token"
STORY = "0123456789abcdef"  # a mute needs no story to exist yet
MUTE = f"/story/{STORY}/mute"


def writable(redis_url: str, token: str = TOKEN, **web) -> Settings:
    return Settings(redis_url=redis_url, web=WebSettings(token=token, **web))


def sign_in(web: httpx.Client, token: str = TOKEN) -> tuple[str, str]:
    """Signs `web` in: the session's cookie and its CSRF token."""
    answer = web.post("/login", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', web.get("/").text)
    assert csrf
    return web.cookies[COOKIE], csrf[1]


@pytest.fixture
def browsers() -> Iterator[Callable[..., httpx.Client]]:
    """More clients of a desk (each keeps its own cookies), closed at the end."""
    opened: list[httpx.Client] = []

    def open_client(web: httpx.Client, **options: Any) -> httpx.Client:
        opened.append(httpx.Client(base_url=web.base_url, timeout=30, **options))
        return opened[-1]

    yield open_client
    for browser in opened:
        browser.close()


def writes(web: httpx.Client, csrf: str) -> int:
    """The status of a write action (mute a story for a rule)."""
    form = {"csrf": csrf, "rule": "dprk-russia-treaty", "scope": "story"}
    return web.post(MUTE, data=form, follow_redirects=False).status_code


def signed_out(web: httpx.Client) -> bool:
    page = web.get("/").text
    return 'href="/login">Sign in' in page and "Sign out" not in page


def session_keys(client: redis.Redis) -> list[str]:
    return list(client.scan_iter("monitor:desk:session:*"))


def test_a_session_per_sign_in_and_a_cookie_copied_before_sign_out_is_refused_after_it(
    redis_url: str, client: redis.Redis, desk, browsers
) -> None:
    web = desk(writable(redis_url), client)
    answer = web.post("/login", data={"token": TOKEN}, follow_redirects=False)
    set_cookie = answer.headers["set-cookie"].lower()
    for part in ("httponly", "samesite=lax", f"max-age={12 * 3600}"):
        assert part in set_cookie
    assert "secure" not in set_cookie  # plain http here; https requests get Secure
    cookie, csrf = sign_in(web)
    other = browsers(web, cookies={COOKIE: sign_in(browsers(web))[0]})
    assert len(session_keys(client)) == 3  # one per sign-in
    (key, *_) = session_keys(client)
    assert TOKEN not in str(client.hgetall(key)) and cookie not in str(session_keys(client))
    assert 0 < client.ttl(key) <= 12 * 3600

    copy = browsers(web, cookies={COOKIE: cookie})
    assert writes(copy, csrf) == 303 and not signed_out(copy)
    assert web.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert writes(copy, csrf) == 403  # the copied cookie, after sign-out
    assert signed_out(copy) and signed_out(web)
    assert copy.post("/logout", data={"csrf": csrf}).status_code == 403
    assert not signed_out(other)  # the other sign-ins' sessions stay open
    assert len(session_keys(client)) == 2
    assert writes(other, csrf) == 403  # a CSRF token is its session's only


def test_an_expired_session_is_refused(redis_url: str, client: redis.Redis, desk, browsers) -> None:
    web = desk(writable(redis_url, session_hours=2), client)
    cookie, csrf = sign_in(web)
    (key,) = session_keys(client)
    assert 7190 < client.ttl(key) <= 7200  # web.session_hours
    copy = browsers(web, cookies={COOKIE: cookie})
    assert writes(copy, csrf) == 303
    client.pexpire(key, 1)
    time.sleep(0.05)
    assert writes(copy, csrf) == 403 and writes(web, csrf) == 403
    assert signed_out(copy) and session_keys(client) == []


def test_changing_the_token_ends_every_session(
    redis_url: str, client: redis.Redis, desk, browsers
) -> None:
    first = desk(writable(redis_url), client)
    sessions = [sign_in(first), sign_in(browsers(first))]
    restarted = desk(writable(redis_url), client)  # the same token: sessions stay open
    for cookie, csrf in sessions:
        assert writes(browsers(restarted, cookies={COOKIE: cookie}), csrf) == 303
    changed = desk(writable(redis_url, token="a-new-token"), client)
    for cookie, csrf in sessions:
        copy = browsers(changed, cookies={COOKIE: cookie})
        assert writes(copy, csrf) == 403 and signed_out(copy)
    assert writes(browsers(changed, cookies={COOKIE: ""}), "") == 403
    cookie, csrf = sign_in(changed, "a-new-token")
    assert writes(browsers(changed, cookies={COOKIE: cookie}), csrf) == 303


def test_wrong_tokens_are_limited_per_address(
    redis_url: str, client: redis.Redis, desk, browsers
) -> None:
    web = desk(writable(redis_url), client)
    for _ in range(SIGN_IN_FAILURES):
        assert web.post("/login", data={"token": "guess"}).status_code == 403
    refused = web.post("/login", data={"token": "guess"})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= SIGN_IN_WINDOW
    assert "Too many wrong tokens from this address: try again in 5 min." in refused.text
    # While refused, the right token is refused too (or the answer would reveal a hit).
    assert web.post("/login", data={"token": TOKEN}).status_code == 429

    # Another address (the loopback's 127.0.0.2) still may try, and a right token is
    # let in at once and forgets its address's failures.
    elsewhere = browsers(web, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    for _ in range(SIGN_IN_FAILURES - 1):
        assert elsewhere.post("/login", data={"token": "guess"}).status_code == 403
    started = time.monotonic()
    cookie, csrf = sign_in(elsewhere)
    assert time.monotonic() - started < 2
    assert writes(elsewhere, csrf) == 303
    assert client.get("monitor:desk:sign-in:127.0.0.2") is None
    assert client.get("monitor:desk:sign-in:127.0.0.1") == str(SIGN_IN_FAILURES + 2)
    del cookie


def test_the_refusal_ends_with_its_window(redis_url: str, client: redis.Redis, desk) -> None:
    web = desk(writable(redis_url), client)
    for _ in range(SIGN_IN_FAILURES + 1):
        web.post("/login", data={"token": "guess"})
    assert web.post("/login", data={"token": TOKEN}).status_code == 429
    client.pexpire("monitor:desk:sign-in:127.0.0.1", 1)
    time.sleep(0.05)
    sign_in(web)


@pytest.mark.parametrize("hours", [0, -1, float("inf"), float("nan")])
def test_session_hours_must_be_a_positive_finite_number(hours: float) -> None:
    with pytest.raises(ConfigError, match="session_hours"):
        WebSettings(session_hours=hours)


def test_a_read_only_desk_counts_no_sign_ins(redis_url: str, client: redis.Redis, desk) -> None:
    web = desk(dataclasses.replace(writable(redis_url), web=WebSettings()), client)
    for _ in range(SIGN_IN_FAILURES + 2):
        assert web.post("/login", data={"token": "x"}).status_code == 403
    assert list(client.scan_iter("monitor:desk:*")) == []


def test_behind_a_local_proxy_the_cookie_is_secure_and_addresses_are_the_users(
    redis_url: str, client: redis.Redis, desk
) -> None:
    # uvicorn trusts X-Forwarded-* from 127.0.0.1: a reverse proxy on the same host.
    web = desk(writable(redis_url), client)
    https = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}
    answer = web.post("/login", data={"token": TOKEN}, headers=https, follow_redirects=False)
    assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()
    for _ in range(SIGN_IN_FAILURES + 1):
        web.post("/login", data={"token": "guess"}, headers=https)
    assert web.post("/login", data={"token": "guess"}, headers=https).status_code == 429
    other = {**https, "x-forwarded-for": "198.51.100.9"}
    assert web.post("/login", data={"token": "guess"}, headers=other).status_code == 403
