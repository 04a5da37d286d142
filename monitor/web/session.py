"""Who may write: a session opened with `web.token`, and the CSRF token each form carries.

Each sign-in opens a session of its own in Redis (`Keys.desk_session`), with an expiry of
`web.session_hours`; signing out deletes it, so a copied cookie dies with it. The cookie
carries a random id (256 bits) and nothing else: unsigned, since a forged id names no
session, and Redis holds only a hash of it, so whoever reads Redis cannot lift a live
cookie. The session records a fingerprint of the token it was opened with (an HMAC keyed
by the token, never the token), so changing the token ends every session. Its CSRF token
is random, per session. Failed sign-ins are counted per client address
(`Keys.desk_sign_ins`): past SIGN_IN_FAILURES in SIGN_IN_WINDOW seconds, the address gets
429 until the window ends."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import anyio
import redis
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from monitor.store.keys import Keys

COOKIE = "desk_session"
SIGN_IN_FAILURES = 5  # wrong tokens an address may send per window
SIGN_IN_WINDOW = 300  # seconds, from its first failure
_ID_CHARS = 64  # a cookie longer than an id is no id (token_urlsafe(32) gives 43)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Opened:
    """The session a request belongs to."""

    csrf: str


class Sessions:
    """The desk's sessions, in Redis."""

    def __init__(self, token: str, client: redis.Redis, keys: Keys, hours: float) -> None:
        self.token = token
        self.client = client
        self.keys = keys
        self.lifetime = max(1, round(hours * 3600))  # seconds

    @property
    def writable(self) -> bool:
        """Whether the desk allows changes at all (a token is set)."""
        return bool(self.token)

    def current(self, request: Request) -> Opened | None:
        """The open session whose id the request's cookie carries, if it was opened with
        the token in force and has not expired or been closed."""
        sid = request.cookies.get(COOKIE, "")
        if not self.writable or not sid or len(sid) > _ID_CHARS:
            return None
        stored: dict[str, str] = self.client.hgetall(  # type: ignore[assignment]
            self.keys.desk_session(_digest(sid))
        )
        if not same_secret(stored.get("token", ""), self._fingerprint(sid)):
            return None  # no such session, or opened with another token
        return Opened(csrf=stored.get("csrf", ""))

    def signed_in(self, request: Request) -> bool:
        return self.current(request) is not None

    def opens(self, given: str) -> bool:
        """Whether `given` (what a sign-in form sent) is the token."""
        return self.writable and same_secret(given, self.token)

    def open(self, response: Response, request: Request) -> None:
        """A new session, stored with its expiry; its id goes in the response's cookie."""
        sid = secrets.token_urlsafe(32)
        key = self.keys.desk_session(_digest(sid))
        record = {"token": self._fingerprint(sid), "csrf": secrets.token_hex(32)}
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping=record)
        pipe.expire(key, self.lifetime)
        pipe.execute()
        response.set_cookie(
            COOKIE,
            sid,
            httponly=True,
            # Lax, not Strict: an alert's link to the desk, followed from mail or chat, opens
            # it signed in; a cross-site POST still carries no cookie (and no CSRF token).
            samesite="lax",
            max_age=self.lifetime,
            secure=request.url.scheme == "https",
        )

    def close(self, response: Response, request: Request) -> None:
        """Ends the request's session: its record is deleted, whatever copies of the
        cookie exist."""
        sid = request.cookies.get(COOKIE, "")
        if sid and len(sid) <= _ID_CHARS:
            self.client.delete(self.keys.desk_session(_digest(sid)))
        response.delete_cookie(COOKIE, httponly=True, samesite="lax")

    def refused_for(self, address: str) -> int:
        """Counts a sign-in attempt from `address`: 0 if it may go on, else the seconds
        until it may try again (it sent SIGN_IN_FAILURES wrong tokens this window). A
        refused address is refused whatever it sends, or the answer would tell a guesser
        when it guessed right."""
        key = self.keys.desk_sign_ins(address)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, 0, ex=SIGN_IN_WINDOW, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, attempts, ttl = pipe.execute()
        if attempts <= SIGN_IN_FAILURES:
            return 0
        if attempts == SIGN_IN_FAILURES + 1:  # once a window: a guesser may go on and on
            log.warning("desk_sign_in_refused", address=address, retry_after=ttl)
        return max(1, int(ttl))

    def signed_in_from(self, address: str) -> None:
        """A right token from `address`: its earlier failures are forgotten."""
        self.client.delete(self.keys.desk_sign_ins(address))

    async def checked_form(self, request: Request) -> dict[str, str]:
        """The form of a write action, sent by a session with the form's CSRF token;
        otherwise the request is refused (403)."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not self.writable:
            raise HTTPException(403, "read-only: set web.token to allow changes")
        opened = await anyio.to_thread.run_sync(self.current, request)
        if opened is None or not same_secret(form.get("csrf", ""), opened.csrf):
            raise HTTPException(403, "sign in first (and send the form's csrf field)")
        return form

    def _fingerprint(self, sid: str) -> str:
        # Keyed by the token and salted by the session id: the token cannot be read back
        # from Redis, and one guess tests one session only.
        return hmac.new(self.token.encode(), _encoded(sid), hashlib.sha256).hexdigest()


def client_address(request: Request) -> str:
    """Where a request came from, as uvicorn reports it: the peer, or the X-Forwarded-For
    of a reverse proxy on the same host (uvicorn trusts 127.0.0.1's by default)."""
    return request.client.host if request.client else "unknown"


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _digest(sid: str) -> str:
    return hashlib.sha256(_encoded(sid)).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of whatever was sent (any characters) with a secret."""
    return hmac.compare_digest(_encoded(given), expected.encode())
