"""The desk: a small server-rendered web page over stories, alerts, feeds and rules
(`monitor web`). Starlette + Jinja2, every asset in the package, nothing fetched at run time.

Read-only unless `web.token` is set; write actions (pause, resume, poll a feed now; mute a
story or a source for a rule) then need a session opened with the token (one per sign-in,
in Redis, ended by signing out, by its expiry or by a change of the token), and each form
carries that session's CSRF token. Everything from a feed is escaped when rendered.

The routes (`app`) parse a request, ask the desk service (`service`, plain data) and render
(`render`); sessions and CSRF are in `session`.

May import: the pipeline, the stages, `retained`, the store and the vocabulary; not the
daemon or the CLI (the daemon serves the desk, not the other way round).
"""

from monitor.web.app import Served, bind, create_app, with_desk

__all__ = ["Served", "bind", "create_app", "with_desk"]
