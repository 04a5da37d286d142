"""Nothing stale, nothing dropped: a report's time, the alert age policy and a
feed's first poll as a baseline; distinct posts of a shared page; JSON Feed. Real feed
servers on 127.0.0.1, a real Redis, real `monitor` processes."""

from __future__ import annotations

import dataclasses
import email.utils
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from structlog.testing import capture_logs

from monitor.config import FeedConfig, HttpSettings, ScheduleSettings
from monitor.errors import FeedError
from monitor.ingest.feeds import item_url, parse_document, parse_feed
from monitor.ingest.fetch import HttpFetcher
from monitor.ingest.items import ItemsQueue
from monitor.ingest.poll import Poller, newest
from monitor.model import CLOCK_SKEW, Item, report_time
from monitor.pipeline.process import article_of
from monitor.pipeline.replay import read_feeds
from monitor.store.keys import Keys

from .conftest import FIXTURES, RULES
from .feedserver import FeedServer, Reply
from .processes import wait_for
from .test_cli import json_lines, monitor

FEEDS = FIXTURES / "feeds"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SCHEDULE = ScheduleSettings(interval=600, min_interval=60, max_interval=3600, jitter=0)
RULE = "id: reservoir\nname: Reservoir news\nseverity: medium\nquery: reservoir\n"


# --- a report's time ------------------------------------------------------------------


def test_a_reports_time_is_its_date_clamped_to_first_seen_else_first_seen() -> None:
    old = NOW - timedelta(days=400)
    assert report_time(old, NOW) == old
    assert report_time(None, NOW) == NOW
    assert report_time(datetime(2030, 1, 1, tzinfo=UTC), NOW) == NOW  # a broken clock
    assert report_time(NOW + CLOCK_SKEW / 2, NOW) == NOW + CLOCK_SKEW / 2  # a clock a bit fast
    assert report_time(old, None) == old
    item = Item(
        guid="g",
        url="",
        title="t",
        source="s",
        feed="f",
        published=datetime(2030, 1, 1, tzinfo=UTC),
        first_seen=NOW,
    )
    assert (item.time, item.skewed) == (NOW, True)
    assert Item.from_json(item.to_json()) == item


def entry(n: int, when: datetime | None, **extra: str) -> Item:
    return Item(
        guid=f"urn:e:{n}",
        url=f"http://example.org/{n}",
        title=f"e{n}",
        source="s",
        feed="f",
        published=when,
        first_seen=NOW,
        **extra,
    )


def test_future_dated_and_undated_entries_do_not_crowd_fresh_ones_out() -> None:
    future = [entry(n, datetime(2030, 1, 1, tzinfo=UTC)) for n in range(5)]
    fresh = [entry(n, NOW - timedelta(minutes=n)) for n in range(5, 8)]
    undated = [entry(n, None) for n in range(8, 10)]
    # Never seen before, a future-dated entry is as new as the poll: it competes, it does
    # not win every time as "2030" would.
    chosen = newest(future + undated + fresh, 5)
    assert {e.guid for e in fresh} <= {e.guid for e in chosen}


def test_a_re_listed_future_dated_entry_ranks_by_when_it_was_first_seen(
    feed_server: FeedServer, poller: Poller, client: redis.Redis
) -> None:
    t1 = datetime.now(UTC) - timedelta(hours=5)
    future = [rss_entry(n, datetime(2030, 1, 1, tzinfo=UTC)) for n in range(4)]
    feed = FeedConfig(url=feed_server.url("/feed.xml"))
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, rss(future))
    poller.max_entries = 4
    with capture_logs() as logs:
        first = poller.poll(feed, now=t1.timestamp())
    assert (len(first.new), first.skewed) == (4, 4)
    assert [e["entries"] for e in logs if e["event"] == "feed_clock_skew"] == [4]
    queued = [Item.from_json(f["item"]) for _, f in client.xrange(Keys().items)]
    assert all(abs((i.time - t1).total_seconds()) < 1 for i in queued if i.time)

    fresh = [rss_entry(n, t1 + timedelta(hours=1, minutes=n)) for n in range(10, 13)]
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, rss(future + fresh))
    second = poller.poll(feed)
    assert sorted(i.guid for i in second.new) == [f"urn:e:{n}" for n in range(10, 13)]
    assert second.skipped == 3  # three of the old future-dated ones, not the fresh ones


# --- polling: first poll as a baseline, folded entries counted ---------------------------


@pytest.fixture
def poller(client: redis.Redis):
    settings = HttpSettings(read_timeout=1.0, connect_timeout=1.0, max_bytes=500_000)
    fetcher = HttpFetcher(settings, trusted_hosts=["127.0.0.1"])
    yield Poller(client, Keys(), fetcher, ItemsQueue(client, Keys(), maxlen=10_000), SCHEDULE)
    fetcher.close()


# Five unrelated reports that all mention the reservoir (the rule's one word).
LIVE = {
    1: "Engineers opened the northern sluice gates of the reservoir after heavy rain upstream; "
    "farmers downstream were told to move cattle from the low meadows before the evening.",
    2: "Floating solar panels on the reservoir produced their first electricity on Tuesday, "
    "the utility said, enough for about four thousand homes once the second array is wired.",
    3: "A rowing club asked the council to lift its ban on regattas at the reservoir, arguing "
    "that the safety boats bought last year answer every objection raised at the inquiry.",
    4: "Archive: how the reservoir drowned the old village of Marren in 1952, told by the "
    "last families who left, with photographs of the church tower rising from the water.",
    5: "Breaking: the reservoir spillway overflowed at dawn for the first time since records "
    "began; police closed the valley road and the dam keepers are checking the embankment.",
}


def rss_entry(n: int, when: datetime | None, link: str = "") -> str:
    date = f"<pubDate>{email.utils.format_datetime(when)}</pubDate>" if when else ""
    link = link or f"http://water.example.org/live/{n}"
    body = LIVE.get(n, f"Report {n} mentions the reservoir in passing. " * 5)
    return (
        f"<item><title>Report {n} on the reservoir</title><link>{link}</link>"
        f"<guid>urn:e:{n}</guid>{date}<description>{body}</description></item>"
    )


def rss(items: list[str], catalogue: bool = False) -> bytes:
    """A feed of `items`, after the back catalogue's old and undated reports if asked."""
    base = (FEEDS / "back_catalogue.xml").read_text()
    head, _, rest = base.partition("<item>")
    old = "<item>" + rest.rsplit("</channel>", 1)[0] if catalogue else ""
    return (head + "".join(items) + old + "</channel></rss>").encode()


def test_only_the_first_poll_is_a_baseline(feed_server: FeedServer, poller: Poller) -> None:
    feed = FeedConfig(url=feed_server.url("/feed.xml"))
    now = datetime.now(UTC)
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, rss([], catalogue=True))
    first = poller.poll(feed)
    assert first.baseline and len(first.new) == 8
    assert all(i.baseline and i.first_seen for i in first.new)
    body = rss([rss_entry(1, now)], catalogue=True)
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, body)
    second = poller.poll(feed)
    assert not second.baseline and [(i.guid, i.baseline) for i in second.new] == [
        ("urn:e:1", False)
    ]


def test_an_empty_first_poll_is_the_baseline_too(feed_server: FeedServer, poller: Poller) -> None:
    feed = FeedConfig(url=feed_server.url("/feed.xml"))
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, rss([]))
    assert poller.poll(feed).baseline
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, rss([rss_entry(1, None)]))
    later = poller.poll(feed)
    assert not later.baseline and not later.new[0].baseline  # undated, but news: it may alert


def test_a_new_guid_for_a_known_link_is_folded_and_counted_once(
    feed_server: FeedServer, poller: Poller
) -> None:
    feed = FeedConfig(url=feed_server.url("/feed.xml"))
    now = datetime.now(UTC)
    first = rss_entry(1, now, link="http://water.example.org/a?utm_source=rss")
    again = first.replace("urn:e:1", "urn:e:1-republished")
    feed_server.routes["/feed.xml"] = lambda h: Reply(200, rss([first, again]))
    with capture_logs() as logs:
        report = poller.poll(feed)
        repeat = poller.poll(feed)
    assert (len(report.new), report.folded, repeat.folded) == (1, 1, 0)
    folded = [e for e in logs if e["event"] == "same_item"]
    assert [(e["guid"], e["reason"]) for e in folded] == [("urn:e:1-republished", "link known")]


# --- distinct posts of a shared page ---------------------------------------------------


def test_every_post_of_a_day_page_is_an_item() -> None:
    items = parse_feed((FEEDS / "fragments.xml").read_bytes(), url="http://daypage.example.org/")
    assert len(items) == 5 and all(i.shared_page for i in items)
    assert len({item_url(i) for i in items}) == 5
    assert item_url(items[0]) == "http://daypage.example.org/2024/06/19.html#a120114"
    # A lone fragment (tracking, or a comments anchor) is not a post of a shared page:
    lone = parse_feed(rss([rss_entry(1, None, link="http://x.example/a#xtor=RSS-3")]), url="u:")
    assert not lone[0].shared_page and item_url(lone[0]) == "http://x.example/a"


@pytest.mark.slow
def test_day_page_posts_reach_the_stream_and_keep_their_own_text(
    feed_server: FeedServer, poller: Poller, client: redis.Redis, tmp_path: Path, redis_url: str
) -> None:
    feed = FeedConfig(url=feed_server.url("/feed.xml"))
    feed_server.static("/feed.xml", (FEEDS / "fragments.xml").read_bytes())
    report = poller.poll(feed)
    assert (len(report.new), report.folded) == (5, 0)

    # Replayed, each post is its own item with its own text: the day's page is never
    # fetched (pages/ has none of them; a fetch would leave a warning).
    out = monitor(
        "replay",
        "--json",
        "--rules",
        str(RULES),
        str(FEEDS / "fragments.xml"),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert out.returncode == 0, out.stderr
    *rows, summary = json_lines(out.stdout)
    assert summary["summary"]["items"] == 5 and summary["summary"]["same_items"] == 0
    assert [r["text_from"] for r in rows] == ["feed"] * 5
    assert all(r["warnings"] == [] for r in rows)
    assert len({r["url"] for r in rows}) == 5 and all("#a" in r["url"] for r in rows)


# --- JSON Feed -------------------------------------------------------------------------


def test_json_feed_1_0_and_1_1_map_to_items() -> None:
    one = parse_document((FEEDS / "jsonfeed-1.0.json").read_bytes(), url="https://h.example/f")
    assert one.title == "Harbour Notes"
    strike, talks, no_id = one.items
    assert (strike.guid, strike.title, strike.source) == (
        "1001",
        "Ferry crews announce a strike",
        "Harbour Notes",
    )
    assert strike.published == datetime(2024, 6, 19, 6, 0, tzinfo=UTC)
    assert "strike on Friday" in strike.content and strike.summary.startswith("Ferry crews")
    assert strike.author == "Harbour desk"  # the feed's author when the item has none
    assert talks.guid == "1002" and talks.author == "A. Reporter"  # a numeric 1.0 id
    assert talks.content.count("<p>") == 2  # content_text, paragraphs kept
    assert no_id.guid == "" and no_id.url == "https://harbour.example.org/2024/06/no-id"

    eleven = parse_feed((FEEDS / "jsonfeed-1.1.json").read_bytes(), url="https://m.example/f")
    post, link = eleven
    assert post.author == "Micro Author, Guest" and post.title == ""
    assert post.published == datetime(2024, 6, 20, 16, 30, 1, tzinfo=UTC)
    assert link.url == "https://news.example.com/launch"  # external_url when there is no url
    assert link.published == datetime(2024, 6, 20, 17, 0, tzinfo=UTC)  # date_modified


def test_json_feed_with_raw_control_characters_is_read() -> None:
    (post, _) = parse_feed((FEEDS / "jsonfeed-control.json").read_bytes(), url="https://m/f")
    assert "Three\tminutes of\nnoise" in post.content


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            (FEEDS / "jsonfeed-truncated.json").read_bytes(),
            "not a readable JSON feed (line 1, column 655: unterminated string)",
        ),
        (b'{"title": "no version", "items": []}', "not a JSON feed (no jsonfeed.org version)"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "items is not a list"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [' * 3000, "JSON feed"),
    ],
)
def test_a_broken_json_feed_is_one_clear_error(body: bytes, message: str) -> None:
    with pytest.raises(FeedError) as error:
        parse_feed(body, url="https://h.example/feed.json")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_json_feed_polls_with_conditional_get(feed_server: FeedServer, poller: Poller) -> None:
    feed = FeedConfig(url=feed_server.url("/feed.json"))
    body = (FEEDS / "jsonfeed-1.0.json").read_bytes()
    feed_server.static("/feed.json", body, **{"Content-Type": "application/feed+json"})
    first = poller.poll(feed)
    assert (first.status, len(first.new), first.error) == (200, 3, "")
    assert "application/feed+json" in feed_server.requests[-1][1]["accept"]
    second = poller.poll(feed)
    assert (second.status, second.new) == (304, [])


@pytest.mark.slow
def test_replay_reads_json_feeds_and_names_the_broken_one(tmp_path: Path, redis_url: str) -> None:
    folder = tmp_path / "feeds"
    folder.mkdir()
    for name in ("jsonfeed-1.0.json", "jsonfeed-1.1.json", "fragments.xml"):
        (folder / name).write_bytes((FEEDS / name).read_bytes())
    (folder / "manifest.json").write_text('{"not": "a feed"}')  # skipped, with a warning
    out = monitor(
        "replay",
        "--json",
        "--log-level",
        "info",
        "--rules",
        str(RULES),
        str(folder),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert out.returncode == 0, out.stderr
    assert json_lines(out.stdout)[-1]["summary"]["items"] == 3 + 2 + 5
    assert "manifest.json" in out.stderr and "not a JSON feed" in out.stderr

    broken = monitor(
        "replay",
        "--rules",
        str(RULES),
        str(FEEDS / "jsonfeed-truncated.json"),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert broken.returncode == 2
    (line,) = broken.stderr.strip().splitlines()
    assert "jsonfeed-truncated.json" in line and "line 1, column 655" in line


# --- the alert age policy, through replay -----------------------------------------------


@pytest.mark.slow
def test_replay_of_a_back_catalogue_alerts_only_on_its_recent_reports(
    tmp_path: Path, redis_url: str
) -> None:
    (tmp_path / "reservoir.yaml").write_text(RULE)
    out = monitor(
        "replay",
        "--json",
        "--rules",
        str(tmp_path),
        str(FEEDS / "back_catalogue.xml"),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert out.returncode == 0, out.stderr
    *rows, summary = json_lines(out.stdout)
    # As of when the file was written (its newest report, 2019-11-05): that one is news, the
    # older ones and the undated ones (a first poll) are not.
    alerted = [r["guid"] for r in rows if r["alerts"]]
    assert alerted == ["urn:water:2019-11-05"]
    reasons = {r["guid"]: r["alert_suppressed"] for r in rows if not r["alerts"]}
    assert reasons["urn:water:2016-03-14"] == "older than 48h"
    assert reasons["urn:water:undated-1"] == "undated, on the feed's first poll"
    assert all(r["rules"] == ["reservoir"] for r in rows)  # matched, placed, retained all the same
    assert summary["summary"]["alerts_suppressed"] == {
        "older than 48h": 5,
        "undated, on the feed's first poll": 2,
    }

    today = monitor(
        "replay",
        "--json",
        "--fresh",
        "--as-of",
        "now",
        "--rules",
        str(tmp_path),
        str(FEEDS / "back_catalogue.xml"),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert json_lines(today.stdout)[-1]["summary"]["alerts_published"] == 0


@pytest.mark.slow
def test_alerts_max_age_0_switches_the_age_policy_off(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "reservoir.yaml").write_text(RULE)
    cfg = tmp_path / "monitor.toml"
    cfg.write_text('[alerts]\nmax_age = "0s"\n')
    out = monitor(
        "--config",
        str(cfg),
        "replay",
        "--json",
        "--as-of",
        "now",
        "--rules",
        str(tmp_path),
        str(FEEDS / "back_catalogue.xml"),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert out.returncode == 0, out.stderr
    *rows, summary = json_lines(out.stdout)
    # Every dated report alerts (one story each); the undated ones of a first poll do not.
    assert summary["summary"]["alerts_suppressed"] == {"undated, on the feed's first poll": 2}
    assert len([r for r in rows if r["alerts"]]) == summary["summary"]["alerts_published"] >= 1


def test_read_feeds_replays_each_file_as_of_when_it_was_written() -> None:
    items = read_feeds([FEEDS / "back_catalogue.xml"])
    assert {i.first_seen for i in items} == {datetime(2019, 11, 5, 8, 10, tzinfo=UTC)}
    assert all(i.baseline for i in items)


# --- the daemon, end to end --------------------------------------------------------------


@pytest.mark.slow
def test_a_new_feed_alerts_on_its_fresh_reports_only_then_on_news_only(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "reservoir.yaml").write_text(RULE)
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(
        f'rules_dir = "{rules}"\n[schedule]\ninterval = 1\nmin_interval = 1\njitter = 0\n'
        f'[daemon]\nlisten = "127.0.0.1:0"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/feed.xml")}"\ninterval = 1\n'
    )
    now = datetime.now(UTC)
    fresh = [rss_entry(1, now - timedelta(hours=3)), rss_entry(2, now - timedelta(minutes=5))]
    stale = rss_entry(3, now - timedelta(days=5))  # within the window, but not news
    feed_server.static("/feed.xml", rss([*fresh, stale], catalogue=True))
    daemon = daemons(cfg)
    wait_for(lambda: len(daemon.events("item_processed")) == 11, timeout=60)

    def alerted() -> list[str]:
        return [json.loads(f["alert"])["item"]["guid"] for _, f in client.xrange(Keys().alerts)]

    assert sorted(alerted()) == ["urn:e:1", "urn:e:2"]  # not the 2016-2019 reports, nor e3
    processed = {e["item"]: e for e in daemon.events("item_processed")}
    assert len(processed) == 11 and all(e["rules"] == ["reservoir"] for e in processed.values())

    # Later an old report surfaces in the feed: no alert. Then a fresh one: an alert.
    old = rss_entry(4, now - timedelta(days=30))
    feed_server.static("/feed.xml", rss([old, *fresh, stale], catalogue=True))
    wait_for(lambda: len(daemon.events("item_processed")) == 12, timeout=30)
    assert sorted(alerted()) == ["urn:e:1", "urn:e:2"]
    news = rss_entry(5, datetime.now(UTC))
    feed_server.static("/feed.xml", rss([news, old, *fresh, stale], catalogue=True))
    wait_for(lambda: len(alerted()) == 3, timeout=30)
    assert alerted()[-1] == "urn:e:5"

    (listening,) = daemon.events("http_listening")
    metrics = httpx.get(f"http://{listening['address']}/metrics").text
    assert 'monitor_alerts_suppressed_total{reason="too_old"} 8.0' in metrics  # 6 + e3 + e4
    assert 'monitor_alerts_suppressed_total{reason="undated"} 2.0' in metrics
    assert daemon.stop() == 0


@pytest.mark.slow
def test_consume_shows_the_articles_own_date_and_age(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "reservoir.yaml").write_text(RULE)
    monitor(
        "replay",
        "--rules",
        str(tmp_path),
        str(FEEDS / "back_catalogue.xml"),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    out = monitor("consume", "--from-start", cwd=tmp_path, redis_url=redis_url)
    assert out.returncode == 0, out.stderr
    assert "published 2019-11-05 08:10 UTC (" in out.stdout
    assert "years before the alert)" in out.stdout


def test_copies_with_skewed_and_missing_dates_stay_one_story_with_one_alert(
    redis_url: str, client: redis.Redis
) -> None:
    """The Korea Herald report, republished by four outlets whose feeds date it in four
    ways: undated, a broken clock (2030), years ago, and an hour ago. One story for the three
    whose time is now (a date in the future is clamped to when it was seen); the one dated
    years ago is placed in its own time's window (stories have one clock, report times), and
    raises nothing. One `new` alert, raised by a copy that is news."""
    from monitor.config import Settings
    from monitor.ingest.fetch import LocalFetcher
    from monitor.pipeline import runtime
    from monitor.rules import load_rules

    from .conftest import ROOT, SAMPLE_FEEDS

    pipeline = runtime.pipeline(
        client, Settings(redis_url=redis_url), load_rules(RULES), LocalFetcher(ROOT)
    )
    now = datetime.now(UTC)
    herald = next(i for i in read_feeds([SAMPLE_FEEDS]) if "koreaherald" in i.guid)
    page, _ = article_of(herald, pipeline.fetcher)
    text = "".join(f"<p>{p}</p>" for p in page.text.split("\n"))
    dates = [
        None,
        datetime(2030, 6, 19, tzinfo=UTC),
        datetime(2015, 6, 19, tzinfo=UTC),
        now - timedelta(hours=1),
    ]
    results = []
    for n, when in enumerate(dates):
        copy = dataclasses.replace(
            herald,
            guid=f"{herald.guid}/copy{n}",
            url=f"https://outlet{n}.example/herald",
            content=text,
            source=f"Outlet {n}",
            published=when,
            first_seen=now,
            baseline=False,
        )
        results.append(pipeline.process(copy))
    undated, skewed, years_ago, recent = results
    assert len({r.placement.story_id for r in (undated, skewed, recent)}) == 1
    assert years_ago.placement.story_id != recent.placement.story_id and not years_ago.alerts
    new = [a for r in results for a in r.alerts]
    assert len(new) == 1 and results[0].alerts == new  # the first: undated, so seen now
    outcomes = [str(r.placement.outcome) for r in results]
    assert outcomes == ["new_story", "near_duplicate", "new_story", "near_duplicate"]
    kinds = [json.loads(f["alert"])["kind"] for _, f in client.xrange(Keys().alerts)]
    assert kinds == ["new"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "t",'
        b' "date_published": "0001-01-01T00:00:00+01:00"}]}',
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": ' + b"9" * 5000 + b"}]}",
    ],
    ids=["date-out-of-range", "huge-integer"],
)
def test_hostile_json_feeds_give_an_item_or_a_feed_error_never_a_crash(body: bytes) -> None:
    try:
        items = parse_feed(body, url="https://h.example/feed.json")
    except FeedError as exc:
        assert "not a readable JSON feed" in str(exc)
    else:
        assert items[0].published is None


def test_links_that_are_not_articles_are_dropped() -> None:
    body = rss([rss_entry(1, None, link="javascript:alert(document.cookie)")])
    (item,) = parse_feed(body, url="http://x.example/feed.xml")
    assert item.url == "" and item.guid == "urn:e:1"
    json_body = (
        b'{"version": "https://jsonfeed.org/version/1", "items": '
        b'[{"url": "data:text/html,<script>alert(1)</script>", "title": "x"}]}'
    )
    (item,) = parse_feed(json_body, url="https://h.example/feed.json")
    assert item.url == "" and item.guid.startswith("urn:monitor:entry:")


def test_a_replayed_file_is_as_of_its_build_date_unless_that_is_stale_or_ahead() -> None:
    from monitor.ingest.feeds import FeedDocument
    from monitor.pipeline.replay import written

    old, new = NOW - timedelta(days=3), NOW - timedelta(hours=1)
    items = [entry(1, old), entry(2, new), entry(3, datetime(2030, 1, 1, tzinfo=UTC))]
    assert written(FeedDocument(title="f", items=items, updated=NOW), NOW) == NOW
    stale = FeedDocument(title="f", items=items, updated=old - timedelta(days=1))
    assert written(stale, NOW) == new  # a build date never updated: the newest entry wins
    ahead = FeedDocument(title="f", items=items, updated=NOW + timedelta(days=1))
    assert written(ahead, NOW) == new
    assert written(FeedDocument(title="f", items=[]), NOW) == NOW


def test_the_days_first_post_is_a_post_of_its_page_from_the_start() -> None:
    """Alone in the feed, a post whose permalink GUID is its #anchor link is already one
    post of the day's page: its identity does not change when the second post appears."""
    page = "http://daypage.example.org/2024/06/21.html"

    def post(anchor: str, text: str) -> str:
        link = f"{page}#{anchor}"
        return (
            f"<item><description>{text}</description><link>{link}</link><guid>{link}</guid></item>"
        )

    first, second = post("a0800", "Morning."), post("a1200", "Noon.")
    (alone,) = parse_feed(rss([first]), url="http://daypage.example.org/rss.xml")
    both = parse_feed(rss([second, first]), url="http://daypage.example.org/rss.xml")
    assert alone.shared_page and item_url(alone) == item_url(both[1]) == f"{page}#a0800"
    tracking = rss([rss_entry(1, None, link="http://x.example/a#xtor=RSS-3")])
    assert not parse_feed(tracking, url="http://x.example/rss")[0].shared_page
