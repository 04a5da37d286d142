# ruff: noqa: RUF001 (rule names have en dashes, as in rules/dprk-russia-treaty.yaml)
"""Sinks: routing, messages for people, Standard Webhooks, Apprise targets (json://, form://,
e-mail through a real SMTP server), digests sent once, retries, rate limits, dead letters."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook, WebhookVerificationError
from structlog.testing import capture_logs

from monitor.alertfilter import Filter
from monitor.config import load
from monitor.delivery.consumer import dead_letters, requeue
from monitor.delivery.forward import verify
from monitor.delivery.queue import AlertQueue
from monitor.delivery.sinks.build import build
from monitor.delivery.sinks.digest import DigestStore
from monitor.delivery.sinks.message import alert_message, digest_message
from monitor.delivery.sinks.overview import preview, status
from monitor.delivery.sinks.runner import SinkRunner, serve
from monitor.errors import ConfigError
from monitor.sinkconfig import Schedule, SinkConfig, parse_schedule, parse_sinks
from monitor.store.keys import Keys

from .feedserver import FeedServer, Reply

ROOT = Path(__file__).resolve().parent.parent


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_alert(n: int, **changes: Any) -> dict[str, Any]:
    """An alert document as the pipeline writes it (docs/alert.schema.json)."""
    now = datetime.now(UTC)
    alert: dict[str, Any] = {
        "schema": "monitor.alert/1",
        "id": f"{n:020x}",
        "kind": "new",
        "created_at": stamp(now),
        "rule": {"id": "dprk-russia-treaty", "name": "DPRK–Russia treaty", "severity": "high"},
        "story": {
            "id": f"story{n:04d}aaaaaaaaaaaa",
            "size": 3,
            "wires": ["AP", "Reuters"],
            "sources": [
                {
                    "source": "Yonhap",
                    "url": f"https://en.yna.co.kr/{n}",
                    "title": "Putin, Kim sign pact",
                    "published": stamp(now - timedelta(minutes=30)),
                },
                {
                    "source": "NK News",
                    "url": f"https://www.nknews.org/{n}",
                    "title": "Treaty signed",
                    "published": stamp(now - timedelta(minutes=20)),
                },
                {
                    "source": "TASS",
                    "url": f"https://tass.com/{n}",
                    "title": "Strategic partnership",
                    "published": stamp(now - timedelta(minutes=10)),
                },
            ],
        },
        "item": {
            "guid": f"g{n}",
            "url": f"https://en.yna.co.kr/{n}",
            "title": f"Putin and Kim sign mutual defence treaty ({n})",
            "source": "Yonhap",
            "published": stamp(now - timedelta(minutes=30)),
            "language": "en",
            "excerpt": "Russian President Vladimir Putin and North Korean leader Kim Jong Un…",
            "text_from": "page",
            "wires": ["Reuters"],
        },
        "matches": [
            {
                "field": "text",
                "term": "@dprk:north korean",
                "snippet": "Putin and «North Korean» leader Kim Jong Un signed",
            },
            {"field": "title", "term": "treaty", "snippet": "sign mutual defence «treaty»"},
        ],
        "score": 3,
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(alert.get(key), dict):
            alert[key] = {**alert[key], **value}
        else:
            alert[key] = value
    return alert


def publish(client: redis.Redis, *alerts: dict[str, Any]) -> None:
    queue = AlertQueue(client, Keys(), maxlen=10_000, id_ttl=3600)
    for alert in alerts:
        queue.publish(alert)


def sink(name: str, type: str, url: str, **options: Any) -> SinkConfig:
    """A sink that takes the alerts a test published before it (`start`'s default, "now",
    has a test of its own)."""
    options.setdefault("start", "retained")
    (config,) = parse_sinks([{"name": name, "type": type, "url": url, **options}], "test")
    return config


_OPEN: list[SinkRunner] = []


def runner(client: redis.Redis, config: SinkConfig, **options: Any) -> SinkRunner:
    made = SinkRunner(build(config), client, **options)
    _OPEN.append(made)
    return made


@pytest.fixture(autouse=True)
def _close_sinks() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().sink.close()


# --- SMTP: a real server on 127.0.0.1 --------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def mail_url(port: int, **params: str) -> str:
    fields = {"from": "monitor@example.org", "to": "desk@example.org", **params}
    query = "&".join(f"{k}={v}" for k, v in fields.items())
    return f"mailto://127.0.0.1:{port}?{query}"


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


# --- pure parts -------------------------------------------------------------------------


def test_filters_take_rules_severity_tags_sources_languages_and_kinds() -> None:
    alert = make_alert(1, rule={"tags": ["asia", "korea"]})
    assert Filter().matches(alert)
    assert Filter(rules=("dprk-*",)).matches(alert)
    assert not Filter(rules=("taiwan-*", "china")).matches(alert)
    assert Filter(min_severity="high").matches(alert)
    assert not Filter(min_severity="critical").matches(alert)
    assert Filter(tags=("korea",)).matches(alert)
    assert not Filter(tags=("europe",)).matches(make_alert(2))  # a rule without tags
    assert Filter(sources=("yna.co.kr",)).matches(alert)  # a domain covers its subdomains
    assert Filter(sources=("yonhap",)).matches(alert)  # or the source's name
    assert not Filter(sources=("na.co.kr",)).matches(alert)
    assert Filter(languages=("en",)).matches(alert)
    assert not Filter(languages=("ko",)).matches(alert)
    assert Filter(languages=("ko",)).matches(make_alert(3, item={"language": None}))
    assert Filter(kinds=("new",)).matches(alert)
    assert not Filter(kinds=("update",)).matches(alert)
    backfilled = make_alert(4, backfill=True)
    assert Filter(kinds=("backfill",)).matches(backfilled)
    assert not Filter(kinds=("new",)).matches(backfilled)
    # every criterion given must hold
    assert not Filter(min_severity="high", tags=("europe",)).matches(alert)


def test_sinks_from_the_file_and_secrets_from_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(
        '[[sinks]]\nname = "on-call"\ntype = "webhook"\nurl = "https://hooks.example.org/x"\n'
        'min_severity = "critical"\n\n[[sinks]]\nname = "asia-desk"\ntype = "apprise"\n'
        'url = "mailto://127.0.0.1:8025?to=asia@example.org"\ntags = ["asia"]\n'
        'digest = "08:30"\nrate_per_minute = 6\n'
    )
    env = {
        "MONITOR_SINKS_ON_CALL_SECRET": "whsec_c2VjcmV0",
        "MONITOR_SINKS_ASIA_DESK_KINDS": "new,update",
    }
    on_call, asia = load(cfg, env=env).sinks
    assert on_call.secret == "whsec_c2VjcmV0" and on_call.consumer_group == "sink:on-call"
    assert on_call.filter.min_severity == "critical"
    assert asia.filter.kinds == ("new", "update") and asia.filter.tags == ("asia",)
    assert asia.digest == Schedule(daily_at=8 * 60 + 30) and asia.rate_per_minute == 6.0
    assert "c2VjcmV0" not in repr(on_call) and "asia@" not in repr(asia)  # no secrets in logs
    for table, error in [
        ({"name": "x", "type": "sms", "url": "u"}, "expected webhook or apprise"),
        ({"name": "x", "type": "webhook", "url": "ftp://h"}, "needs an http(s) URL"),
        ({"name": "x", "type": "webhook", "url": "http://h", "colour": "red"}, "unknown key"),
        ({"name": "x", "type": "webhook", "url": "http://h", "digest": "weekly"}, "daily time"),
        ({"name": "x", "type": "webhook", "url": "http://h", "min_severity": "x"}, "min_severity"),
        ({"name": "x", "type": "webhook", "url": "http://h", "kinds": ["old"]}, "kinds"),
        ({"name": "x", "type": "webhook", "url": "http://h", "attempts": 1.5}, "whole number"),
        ({"name": "X Y", "type": "webhook", "url": "http://h"}, "bad sink name"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(error)):
            parse_sinks([table], "monitor.toml")
    with pytest.raises(ConfigError, match="MONITOR_SINKS_PAGER_URL: no sink"):
        load(cfg, env={"MONITOR_SINKS_PAGER_URL": "x"})
    with pytest.raises(ConfigError, match="Apprise does not recognise"):
        build(sink("x", "apprise", "nosuchservice://abc"))


def test_windows_of_a_period_and_of_a_daily_time() -> None:
    hourly = parse_schedule("1h")
    at = datetime(2026, 12, 2, 7, 59, 59, tzinfo=UTC).timestamp()
    start, end = hourly.window(at)
    assert (datetime.fromtimestamp(start, UTC).hour, end - start) == (7, 3600)
    daily = parse_schedule("08:00")
    start, end = daily.window(at)  # before 08:00: the window that began yesterday
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert daily.window(end)[0] == end  # a window ends where the next begins
    with pytest.raises(ValueError):
        parse_schedule("25:00")


def test_the_message_is_made_for_people() -> None:
    message = alert_message(make_alert(7))
    assert (
        message.title == "[HIGH] DPRK–Russia treaty: Putin and Kim sign mutual defence treaty (7)"
    )
    body = message.body
    assert "Yonhap · " in body and "UTC" in body  # source and the article's date
    assert "Also reported by 2 sources (wires: AP, Reuters): NK News, TASS" in body
    assert "“Putin and **«North Korean»** leader Kim Jong Un signed”" in body  # words marked
    assert "https://en.yna.co.kr/7" in body
    update = alert_message(make_alert(8, kind="update", item={"source": "TASS"}, story={"size": 4}))
    assert update.title.startswith("[HIGH] DPRK–Russia treaty — update: ")
    assert "What changed: TASS reported it too; the story now has 4 reports" in update.body
    one = make_alert(9, kind="update", story={"size": 1, "sources": []})
    assert "the story now has 1 report from 1 source." in alert_message(one).body


# --- real receivers ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_email_sink_through_a_real_smtp_server(
    client: redis.Redis, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    publish(client, make_alert(1), make_alert(2, rule={"severity": "critical"}))
    config = sink("editor", "apprise", mail_url(port, name="News%20monitor"))
    stats = runner(client, config).run(follow=False)
    assert stats.delivered == 2 and stats.failed == 0
    assert len(box.messages) == 2
    first = box.messages[0]
    assert box.envelopes[0] == ("monitor@example.org", ["desk@example.org"])
    assert (
        first["Subject"]
        == "[HIGH] DPRK–Russia treaty: Putin and Kim sign mutual defence treaty (1)"
    )
    assert first["To"] == "desk@example.org" and "monitor@example.org" in first["From"]
    text = text_of(first)
    assert "Also reported by 2 sources (wires: AP, Reuters): NK News, TASS" in text
    assert "https://en.yna.co.kr/1" in text
    html = first.get_body(preferencelist=("html",))
    assert html is not None and "<strong>«North Korean»</strong>" in str(html.get_content())
    assert box.messages[1]["Subject"].startswith("[CRITICAL] ")
    assert runner(client, config).run(follow=False).delivered == 0  # acked: not sent again


def test_apprise_json_and_form_targets_reach_an_http_receiver(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    feed_server.routes["/chat"] = lambda h: Reply(200)
    feed_server.routes["/form"] = lambda h: Reply(200)
    publish(client, make_alert(1))
    host = feed_server.url("/").split("://", 1)[1].rstrip("/")
    chat = runner(client, sink("chat", "apprise", f"json://{host}/chat"))
    form = runner(client, sink("form", "apprise", f"form://{host}/form"))
    assert chat.run(follow=False).delivered == 1 and form.run(follow=False).delivered == 1
    by_path = dict(zip((p for p, _ in feed_server.requests), feed_server.bodies, strict=True))
    posted = json.loads(by_path["/chat"])
    assert posted["title"].startswith("[HIGH] DPRK–Russia treaty: Putin and Kim")
    assert "Also reported by 2 sources" in posted["message"]
    fields = parse_qs(by_path["/form"].decode())
    assert fields["title"][0].startswith("[HIGH] DPRK–Russia treaty")
    assert "https://en.yna.co.kr/1" in fields["message"][0]


@pytest.mark.parametrize("secret", ["plain-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
def test_the_webhook_sink_is_verified_by_the_standard_webhooks_library(
    client: redis.Redis, feed_server: FeedServer, secret: str
) -> None:
    feed_server.routes["/hook"] = lambda h: Reply(204)
    publish(client, make_alert(1), make_alert(2))
    config = sink("hook", "webhook", feed_server.url("/hook"), secret=secret)
    assert runner(client, config).run(follow=False).delivered == 2
    receiver = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    for (_, headers), body in zip(feed_server.requests, feed_server.bodies, strict=True):
        document = receiver.verify(body, headers)  # raises unless signed right
        assert headers["webhook-id"] == document["id"] == headers["x-monitor-alert-id"]
        # the earlier header is kept, for receivers written against it
        if not secret.startswith("whsec_"):
            assert verify(
                secret, headers["x-monitor-timestamp"], body, headers["x-monitor-signature"]
            )
        with pytest.raises(WebhookVerificationError):
            receiver.verify(body.replace(b"Putin", b"Biden"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another key").verify(feed_server.bodies[0], feed_server.requests[0][1])


def test_an_alert_reaches_exactly_the_sinks_whose_filters_match(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    for path in ("/oncall", "/asia", "/all", "/updates"):
        feed_server.routes[path] = lambda h: Reply(200)
    publish(
        client,
        make_alert(1, rule={"severity": "critical", "tags": ["asia"]}),
        make_alert(
            2,
            rule={"id": "taiwan-drills", "name": "Taiwan drills", "severity": "medium"},
            item={"language": "zh", "url": "https://www.cna.com.tw/2", "source": "CNA"},
        ),
        make_alert(3, kind="update", rule={"tags": ["asia"]}),
        make_alert(4, rule={"severity": "low"}, backfill=True),
    )
    host = feed_server.url("/").rstrip("/")
    sinks = [
        sink("oncall", "webhook", f"{host}/oncall", min_severity="critical"),
        sink("asia", "webhook", f"{host}/asia", tags=["asia"], kinds=["new", "update"]),
        sink("all", "webhook", f"{host}/all"),
        sink(
            "updates",
            "webhook",
            f"{host}/updates",
            rules=["dprk-*"],
            kinds=["update", "backfill"],
            languages=["en"],
        ),
    ]
    runners = [runner(client, s) for s in sinks]
    serve(runners, follow=False)
    got: dict[str, list[int]] = {}
    for (path, _), body in zip(feed_server.requests, feed_server.bodies, strict=True):
        got.setdefault(path.strip("/"), []).append(int(json.loads(body)["id"], 16))
    assert {k: sorted(v) for k, v in got.items()} == {
        "oncall": [1],
        "asia": [1, 3],
        "all": [1, 2, 3, 4],
        "updates": [3, 4],
    }
    filtered = {r.name: r.stats.filtered for r in runners}
    assert filtered == {"oncall": 3, "asia": 2, "all": 0, "updates": 2}
    for r in runners:  # every alert is acked in every sink's group, sent or filtered out
        assert r.consumer.lag() == (0, 0)


def test_a_failing_endpoint_never_delays_another_sink(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    feed_server.routes["/slow"] = lambda h: Reply(503, delay=0.3, headers={"Retry-After": "5"})
    feed_server.routes["/fast"] = lambda h: Reply(200)
    publish(client, *(make_alert(n) for n in range(5)))
    stop = threading.Event()
    bad = runner(client, sink("bad", "webhook", feed_server.url("/slow"), attempts=3), stop=stop)
    good = runner(client, sink("good", "webhook", feed_server.url("/fast")), stop=stop)
    started = time.monotonic()
    thread = threading.Thread(target=serve, args=([bad, good],), kwargs={"follow": True})
    thread.start()
    while good.stats.delivered < 5 and time.monotonic() - started < 10:
        time.sleep(0.02)
    took = time.monotonic() - started
    slow = [p for p, _ in feed_server.requests if p == "/slow"]
    stop.set()  # (ends the bad sink's 5 s wait for its second attempt at once)
    thread.join(10)
    # all five delivered while "bad" still waits to retry its first alert
    assert good.stats.delivered == 5 and took < 5.0 and len(slow) <= 1
    assert bad.stats.delivered == 0 and not thread.is_alive()


def test_retry_after_is_honoured_and_the_rate_limit_spaces_sends(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    times: list[float] = []
    answers = iter([Reply(429, headers={"Retry-After": "1"}), Reply(200), Reply(200), Reply(200)])

    def route(headers: dict[str, str]) -> Reply:
        times.append(time.monotonic())
        return next(answers)

    feed_server.routes["/hook"] = route
    publish(client, *(make_alert(n) for n in range(3)))
    config = sink("paced", "webhook", feed_server.url("/hook"), backoff=0.01, rate_per_minute=300)
    stats = runner(client, config).run(follow=False)
    assert stats.delivered == 3
    assert times[1] - times[0] >= 0.95  # the receiver asked for 1 s; the backoff was 0.01 s
    assert times[2] - times[1] >= 0.19 and times[3] - times[2] >= 0.19  # 300/min: 0.2 s apart


def test_a_refused_alert_is_dead_lettered_and_redriven(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    refuse = {"00000000000000000002"}

    def route(headers: dict[str, str]) -> Reply:
        return Reply(422) if headers["webhook-id"] in refuse else Reply(200)

    feed_server.routes["/hook"] = route
    publish(client, *(make_alert(n) for n in (1, 2, 3)))
    config = sink("tickets", "webhook", feed_server.url("/hook"), backoff=0.01)
    first = runner(client, config)
    assert first.run(follow=False).delivered == 2 and first.stats.dead == 1
    (letter,) = dead_letters(client)
    assert letter["group"] == "sink:tickets" and letter["reason"] == "HTTP 422"
    refuse.clear()  # the receiver is fixed
    (moved,) = requeue(client, ids=[letter["id"]])
    assert moved["group"] == "sink:tickets"
    again = runner(client, config)
    assert again.run(follow=False).delivered == 1
    assert json.loads(feed_server.bodies[-1])["id"] == "00000000000000000002"


@pytest.mark.slow
def test_a_digest_over_a_window_is_sent_once_across_forwarder_restarts(
    client: redis.Redis, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    period = 5.0
    schedule = Schedule(period=period)
    now = time.time()
    if schedule.window(now)[1] - now < 3.0:  # leave the first run time inside the window
        time.sleep(schedule.window(now)[1] - now + 0.05)
    created = datetime.now(UTC)
    publish(
        client,
        make_alert(1),
        make_alert(
            2,
            kind="update",
            story={"id": "story0001aaaaaaaaaaaa"},
            item={"source": "TASS", "title": "TASS: treaty"},
        ),
        make_alert(
            3,
            rule={
                "id": "dprk-missile-launch",
                "name": "North Korea missile launch",
                "severity": "critical",
            },
        ),
        make_alert(4, rule={"severity": "low"}),  # filtered out
    )
    config = sink("digest", "apprise", mail_url(port), digest="5s", min_severity="high")
    first = runner(client, config).run(follow=False)  # keeps them; the window is still open
    assert (first.kept, first.filtered, first.digests) == (3, 1, 0) and not box.messages
    store = DigestStore(client, Keys(), "digest", schedule)
    (start,) = store.waiting()
    assert status(client, config).endswith("3 alerts in 1 digest window to send")
    assert start == int(schedule.window(created.timestamp())[0])
    time.sleep(max(0.0, start + period - time.time()) + 0.05)
    second = runner(client, config).run(follow=False)  # a new forwarder: sends the window
    assert second.digests == 1 and len(box.messages) == 1
    third = runner(client, config).run(follow=False)  # and another: nothing twice
    assert third.digests == 0 and len(box.messages) == 1
    assert list(store.sent()) == [start] and store.sent()[start]["alerts"] == 3
    assert "0 alerts in 0 digest windows to send, last sent 20" in status(client, config)
    assert store.waiting() == []
    (message,) = box.messages
    assert message["Subject"].startswith("Digest ") and "2 stories, 2 rules" in message["Subject"]
    text = text_of(message)
    # per rule, most severe first; the treaty story once, with its update folded in
    assert text.index("North Korea missile launch") < text.index("DPRK–Russia treaty")
    assert text.count("Putin and Kim sign mutual defence treaty (1)") == 1 and "+1 update" in text


def test_the_webhook_digest_is_one_signed_document(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    feed_server.routes["/hook"] = lambda h: Reply(200)
    hour_ago = stamp(datetime.now(UTC) - timedelta(hours=2))
    publish(client, make_alert(1, created_at=hour_ago), make_alert(2, created_at=hour_ago))
    config = sink("hourly", "webhook", feed_server.url("/hook"), digest="1h", secret="k")
    stats = runner(client, config).run(follow=False)  # the window ended: kept, then sent
    assert (stats.kept, stats.digests) == (2, 1)
    ((_, headers),) = feed_server.requests
    document = Webhook(b"k").verify(feed_server.bodies[0], headers)
    assert document["schema"] == "monitor.digest/1" and len(document["alerts"]) == 2
    assert headers["webhook-id"] == document["id"]


def test_digest_text_groups_stories_per_rule() -> None:
    alerts = [make_alert(1), make_alert(2, kind="update", story={"id": "story0001aaaaaaaaaaaa"})]
    message = digest_message("desk", 0, 3600, alerts)
    assert message.title == "Digest 1970-01-01 00:00 UTC to 01:00 UTC: 1 story, 1 rule"
    assert "## [HIGH] DPRK–Russia treaty — 1 story" in message.body
    assert "+1 update" in message.body


def test_dry_run_prints_what_each_sink_would_send_and_sends_nothing(
    client: redis.Redis, redis_url: str, tmp_path: Path, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    publish(client, make_alert(1), make_alert(2, rule={"severity": "low"}))
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(
        f'[[sinks]]\nname = "editor"\ntype = "apprise"\nurl = "{mail_url(port)}"\n'
        'min_severity = "high"\nstart = "retained"\n\n[[sinks]]\nname = "daily"\n'
        'type = "webhook"\nurl = "https://hooks.example.org/secret-token"\ndigest = "08:00"\n'
        'start = "retained"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "forward", "--config", str(cfg), "--dry-run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "== sink editor (apprise mailto://127.0.0.1" in out and "1 message would be sent" in out
    assert "[HIGH] DPRK–Russia treaty: Putin and Kim sign mutual defence treaty (1)" in out
    assert "== sink daily (webhook https://hooks.example.org/…, digest daily at 08:00 UTC" in out
    assert "secret-token" not in out
    assert not box.messages
    assert client.xinfo_groups(Keys().alerts) == []  # no group made, nothing acked


@pytest.mark.slow
def test_forward_serves_every_sink_from_the_command_line_with_metrics(
    client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
    feed_server: FeedServer,
) -> None:
    box, port = smtp
    feed_server.routes["/chat"] = lambda h: Reply(200)
    publish(client, make_alert(1), make_alert(2, rule={"severity": "low"}))
    host = feed_server.url("/").split("://", 1)[1].rstrip("/")
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(
        f'[[sinks]]\nname = "editor"\ntype = "apprise"\nurl = "{mail_url(port)}"\n'
        f'min_severity = "high"\nstart = "retained"\n\n[[sinks]]\nname = "chat"\n'
        f'type = "apprise"\nurl = "json://{host}/chat"\nstart = "retained"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "forward", "--config", str(cfg)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "editor: 1 delivered, 1 filtered" in run.stderr
    assert "chat: 2 delivered" in run.stderr
    assert len(box.messages) == 1 and len(feed_server.bodies) == 2
    lines = run.stderr.splitlines()
    assert any("median latency" in line for line in lines)
    status = subprocess.run(
        [sys.executable, "-m", "monitor", "status", "--config", str(cfg)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "sinks: 2" in status.stdout
    assert (
        f"editor (apprise mailto://127.0.0.1:{port}/…): 0 waiting, 0 in progress" in status.stdout
    )


def test_sink_metrics_count_deliveries_latency_and_lag(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    feed_server.routes["/hook"] = lambda h: Reply(200)
    publish(client, make_alert(1), make_alert(2, rule={"severity": "low"}))
    r = runner(client, sink("m", "webhook", feed_server.url("/hook"), min_severity="high"))
    r.run(follow=False)
    registry = r.metrics.registry
    assert (
        registry.get_sample_value("monitor_sink_delivered_total", {"sink": "m", "what": "alert"})
        == 1
    )
    assert registry.get_sample_value("monitor_sink_filtered_total", {"sink": "m"}) == 1
    assert registry.get_sample_value("monitor_sink_latency_seconds_count", {"sink": "m"}) == 1
    assert registry.get_sample_value("monitor_sink_lag", {"sink": "m"}) == 0
    publish(client, make_alert(3))
    r._measure_lag(force=True)
    assert registry.get_sample_value("monitor_sink_lag", {"sink": "m"}) == 1
    count, (shown,) = preview(r, client)  # the one it would send now
    assert count == 1 and "webhook-id: 00000000000000000003" in shown
    publish(client, *(make_alert(n) for n in range(10, 30)))
    count, shown_all = preview(r, client, limit=5)
    assert count == 21 and len(shown_all) == 5


@pytest.mark.slow
def test_rule_tags_reach_the_alert_and_route_a_real_replayed_alert(
    client: redis.Redis, redis_url: str, tmp_path: Path, smtp: tuple[Mailbox, int]
) -> None:
    import shutil

    import jsonschema

    box, port = smtp
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    treaty = rules / "dprk-russia-treaty.yaml"
    treaty.write_text(treaty.read_text() + "\ntags: [asia, korea]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "replay",
            "--fresh",
            "--rules",
            str(rules),
            str(ROOT / "sample_feeds"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replayed.returncode == 0, replayed.stderr
    (entry,) = client.xrange(Keys().alerts)
    alert = json.loads(entry[1]["alert"])
    assert alert["rule"]["tags"] == ["asia", "korea"]
    jsonschema.validate(alert, json.loads((ROOT / "docs" / "alert.schema.json").read_text()))
    europe = runner(client, sink("europe", "apprise", mail_url(port), tags=["europe"]))
    korea = runner(
        client, sink("korea", "apprise", mail_url(port, to="korea@example.org"), tags=["korea"])
    )
    assert europe.run(follow=False).filtered == 1 and korea.run(follow=False).delivered == 1
    (message,) = box.messages
    assert message["To"] == "korea@example.org"
    assert message["Subject"] == f"[HIGH] DPRK–Russia treaty: {alert['item']['title']}"
    text = text_of(message)
    assert alert["item"]["url"] in text and alert["item"]["source"] in text
    assert "**" not in text and "«" in text  # plain text: no Markdown, the hits still marked


def test_the_documented_sink_tables_load(tmp_path: Path) -> None:
    """The TOML of docs/consumers.md, and deploy/monitor.toml's commented examples
    uncommented, are valid sinks (Apprise knows every URL)."""
    text = (ROOT / "docs" / "consumers.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    blocks += re.findall(r"<<'TOML'\n(.*?)TOML\n", text, flags=re.S)
    deploy = (ROOT / "deploy" / "monitor.toml").read_text()
    examples = deploy[deploy.index("# [[sinks]]") :]
    blocks.append("\n".join(line.removeprefix("# ") for line in examples.splitlines()))
    names = []
    for n, block in enumerate(blocks):
        cfg = tmp_path / f"sinks{n}.toml"
        cfg.write_text(block)
        for config in load(cfg, env={}).sinks:
            build(config).close()
            names.append(config.name)
    assert names == [
        "oncall",
        "asia-desk",
        "tickets",
        "editor",
        "chat",
        "oncall",
        "asia-desk",
        "tickets",
    ]


@pytest.mark.slow
def test_a_bare_alert_document_is_still_sent_and_an_unknown_sink_is_named(
    client: redis.Redis, feed_server: FeedServer, redis_url: str, tmp_path: Path
) -> None:
    feed_server.routes["/chat"] = lambda h: Reply(200)
    publish(client, {"id": "bare"})  # written by some other tool: no rule, no item
    host = feed_server.url("/").split("://", 1)[1].rstrip("/")
    stats = runner(client, sink("chat", "apprise", f"json://{host}/chat")).run(follow=False)
    assert stats.delivered == 1
    assert json.loads(feed_server.bodies[0])["title"] == "[ALERT] unnamed rule: (no title)"
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(f'[[sinks]]\nname = "chat"\ntype = "apprise"\nurl = "json://{host}/chat"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url
    for args, error in [
        (["--config", str(cfg), "--sink", "pager"], "no sink pager (sinks: chat)"),
        ([], "no sinks: add [[sinks]] to monitor.toml"),
        (["--config", str(cfg), "--attempts", "9"], "--attempts: with --webhook only"),
        (["--webhook", "http://127.0.0.1:9/", "--dry-run"], "go with the sinks, not --webhook"),
    ]:
        run = subprocess.run(
            [sys.executable, "-m", "monitor", "forward", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2 and error in run.stderr, run.stderr


@pytest.mark.slow
def test_an_smtp_server_that_is_down_leaves_the_alert_pending_with_the_reason(
    client: redis.Redis,
) -> None:
    publish(client, make_alert(1))
    config = sink("editor", "apprise", mail_url(free_port()), attempts=2, backoff=0.01)
    with capture_logs() as logs:
        stats = runner(client, config).run(follow=False)
    assert (stats.delivered, stats.failed, stats.dead) == (0, 1, 0)
    (retry,) = [e for e in logs if e["event"] == "alert_retry"]
    assert retry["reason"].startswith("Connection error while submitting email")
    assert retry["group"] == "sink:editor"
    assert client.xpending(Keys().alerts, "sink:editor")["pending"] == 1  # for a later try


def test_a_new_sink_starts_with_the_alerts_published_from_then_on(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    feed_server.routes["/chat"] = lambda h: Reply(200)
    publish(client, make_alert(1))  # the retained backlog: not for a channel added today
    host = feed_server.url("/").split("://", 1)[1].rstrip("/")
    config = sink("chat", "apprise", f"json://{host}/chat", start="now")
    assert preview(runner(client, config), client) == (0, [])
    assert runner(client, config).run(follow=False).delivered == 0
    publish(client, make_alert(2))
    assert preview(runner(client, config), client)[0] == 1
    assert runner(client, config).run(follow=False).delivered == 1
    (body,) = feed_server.bodies
    assert "(2)" in json.loads(body)["title"]
    with pytest.raises(ConfigError, match="start: expected now or retained"):
        sink("x", "webhook", "http://h/", start="yesterday")


def test_an_update_says_which_sources_are_new_to_the_sinks_readers(
    client: redis.Redis, feed_server: FeedServer
) -> None:
    feed_server.routes["/chat"] = lambda h: Reply(200)
    first = make_alert(1)
    first["story"]["sources"] = first["story"]["sources"][:2]  # Yonhap, NK News
    update = make_alert(
        2,
        kind="update",
        story={"id": first["story"]["id"], "size": 4},
        item={"source": "TASS", "url": "https://tass.com/1"},
    )
    update["story"]["sources"] = [
        *first["story"]["sources"],
        {"source": "TASS", "url": "https://tass.com/1", "title": "t", "published": None},
        {"source": "KCNA", "url": "https://kcna.kp/1", "title": "t", "published": None},
    ]
    host = feed_server.url("/").split("://", 1)[1].rstrip("/")
    chat = sink("chat", "apprise", f"json://{host}/chat")
    publish(client, first)
    assert runner(client, chat).run(follow=False).delivered == 1
    publish(client, update)
    assert runner(client, chat).run(follow=False).delivered == 1
    message = json.loads(feed_server.bodies[1])["message"]
    assert "What changed: new since the last message: TASS, KCNA; the story now has 4" in message
