"""Who may write: a session opened with `web.token`, and the CSRF token each form carries.
Both are derived from the token, so restarting the desk keeps sessions open and changing
the token closes them."""

from __future__ import annotations

import hashlib
import hmac

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "desk_session"
MAX_AGE = 7 * 86400  # seconds a session lasts


class Session:
    def __init__(self, token: str) -> None:
        self.token = token
        self.cookie = hmac.new(token.encode(), b"desk-session", hashlib.sha256).hexdigest()
        self.csrf = hmac.new(token.encode(), b"desk-csrf", hashlib.sha256).hexdigest()

    @property
    def writable(self) -> bool:
        """Whether the desk allows changes at all (a token is set)."""
        return bool(self.token)

    def signed_in(self, request: Request) -> bool:
        return self.writable and same_secret(request.cookies.get(COOKIE, ""), self.cookie)

    def opens(self, given: str) -> bool:
        """Whether `given` (what a sign-in form sent) is the token."""
        return self.writable and same_secret(given, self.token)

    def open(self, response: Response, request: Request) -> None:
        response.set_cookie(
            COOKIE,
            self.cookie,
            httponly=True,
            samesite="strict",
            max_age=MAX_AGE,
            secure=request.url.scheme == "https",
        )

    def close(self, response: Response) -> None:
        response.delete_cookie(COOKIE)

    async def checked_form(self, request: Request) -> dict[str, str]:
        """The form of a write action, sent by a session with the form's CSRF token;
        otherwise the request is refused (403)."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not self.writable:
            raise HTTPException(403, "read-only: set web.token to allow changes")
        if not self.signed_in(request) or not same_secret(form.get("csrf", ""), self.csrf):
            raise HTTPException(403, "sign in first (and send the form's csrf field)")
        return form


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of whatever was sent (any characters) with a secret."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())
