"""Hostile input, served for real to a running daemon: each ends in a clear, counted error or
a clean skip, and the daemon goes on alerting on the one honest feed beside them."""

from __future__ import annotations

import re
import signal
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from monitor.config import FeedConfig
from monitor.ingest.items import ItemsQueue
from monitor.ingest.poll import feed_id
from monitor.model import Item
from monitor.store.keys import Keys

from .conftest import RULES
from .feedserver import FeedServer, Reply, rss
from .processes import wait_for
from .test_daemon import alerts, serve_sample

GiB = 1 << 30
ARTICLE = "Officials met in the capital on Tuesday to discuss the harbour project. " * 8


def gzip_bomb(size: int = GiB) -> bytes:
    """`size` zero bytes, gzip-compressed (~1,000 times smaller)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(size >> 20)), packer.flush()])


def endless(piece: bytes, pause: float = 0.0) -> Iterator[bytes]:
    while True:
        yield piece
        if pause:
            time.sleep(pause)


def billion_laughs() -> bytes:
    entities = "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )  # l9 = 10^9 x "lol"
    doc = f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY l0 "lol">{entities}]>
<rss version="2.0"><channel><title>laughs</title>
<item><title>&l9;</title><link>http://127.0.0.1:1/laughs</link></item>
</channel></rss>"""
    return doc.encode()


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>xxe</title>
<item><title>leak &secret; here</title><link>http://127.0.0.1:1/xxe</link>
<description>&secret;</description></item></channel></rss>"""


def encoded(guid: str) -> bytes:
    """A UTF-8 feed with one item titled "Zürich, Москва" (with an en dash)."""
    return rss([{"title": "Zürich \u2013 Москва", "link": f"http://127.0.0.1:1/{guid}"}])


def many_items(count: int, base: str) -> bytes:
    items = "".join(f"<item><link>{base}/gone/{i}</link></item>" for i in range(count))
    return f'<rss version="2.0"><channel><title>many</title>{items}</channel></rss>'.encode()


def serve_hostile(server: FeedServer) -> dict[str, str]:
    """Route the hostile feeds and pages; returns feed path -> the error it must end in."""
    xml = {"Content-Type": "application/rss+xml"}
    html = {"Content-Type": "text/html"}
    bomb = gzip_bomb()
    routes = {
        "/loop.xml": Reply(302, headers={"Location": "/loop.xml"}),
        "/trickle.xml": Reply(200, headers=xml, chunks=endless(b" ", pause=1.0)),
        "/bomb.xml": Reply(200, bomb, {**xml, "Content-Encoding": "gzip"}),
        "/gigabyte.xml": Reply(
            200, headers={**xml, "Content-Length": str(GiB)}, chunks=endless(bytes(1 << 16))
        ),
        "/endless.xml": Reply(200, headers=xml, chunks=endless(b"<rss>" + b" " * 65531)),
        "/laughs.xml": Reply(200, billion_laughs(), xml),
        "/xxe.xml": Reply(200, XXE, xml),
        "/many.xml": Reply(200, many_items(100_000, server.base), xml),
        "/broken-utf8.xml": Reply(
            200, encoded("broken").replace(b"Z\xc3\xbc", b"Z\xff\xc3\xbc"), xml
        ),
        "/mislabelled.xml": Reply(
            200, encoded("mislabelled"), {"Content-Type": "text/xml; charset=iso-8859-1"}
        ),
        "/deep.html": Reply(200, ("<div>" * 100_000 + ARTICLE).encode(), html),
        "/huge.html": Reply(200, headers=html, chunks=endless(b"<p>" + b"x" * 65533)),
    }
    for path, reply in routes.items():
        server.routes[path] = lambda headers, reply=reply: reply
    port = server.httpd.server_address[1]
    linked = [  # pages that cannot be had: the items go on with their summaries
        ("deep", server.url("/deep.html")),
        ("huge", server.url("/huge.html")),
        ("private", f"http://localhost:{port}/private.html"),  # not the feed's host name
    ]
    server.static(
        "/pages.xml",
        rss(
            [
                {"title": f"{name} page", "link": link, "guid": name, "description": ARTICLE}
                for name, link in linked
            ]
        ),
    )
    server.routes["/private.html"] = lambda h: Reply(200, b"<p>internal</p>", html)
    return {
        "/loop.xml": "more than 5 redirects",
        "/trickle.xml": "no complete answer within 3 s",
        "/bomb.xml": "body exceeds 10485760 bytes",
        "/gigabyte.xml": f"body of {GiB} bytes exceeds max_bytes",
        "/endless.xml": "body exceeds 10485760 bytes",
    }


def config(tmp_path: Path, server: FeedServer, paths: list[str], rules: Path) -> Path:
    feeds = "".join(f'[[feeds]]\nurl = "{server.url(p)}"\ninterval = 2\n' for p in paths)
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'rules_dir = "{rules}"\n'
        "[http]\nconnect_timeout = 1\nread_timeout = 1\n"
        "[schedule]\ninterval = 2\nmin_interval = 1\njitter = 0\n"
        '[daemon]\nlisten = "127.0.0.1:0"\nmax_entries = 200\nclaim_idle = 30\n' + feeds
    )
    return path


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_hostile_feeds_and_pages_are_counted_errors_and_the_honest_feed_still_alerts(
    feed_server: FeedServer, daemons, client: redis.Redis, tmp_path: Path
) -> None:
    serve_sample(feed_server)
    errors = serve_hostile(feed_server)
    rules = tmp_path / "rules"
    rules.mkdir()
    for source in RULES.iterdir():
        (rules / source.name).write_text(source.read_text())
    good = ["/laughs.xml", "/xxe.xml", "/many.xml", "/broken-utf8.xml", "/mislabelled.xml"]
    paths = ["/feed.xml", *errors, *good, "/pages.xml"]
    daemon = daemons(config(tmp_path, feed_server, paths, rules))
    wait_for(lambda: daemon.events("daemon_started"))
    wait_for(lambda: daemon.events("http_listening"))
    listen = "http://" + daemon.events("http_listening")[0]["address"]

    keys = Keys()

    def state(path: str) -> dict[str, str]:
        return client.hgetall(keys.feed(feed_id(FeedConfig(url=feed_server.url(path)))))

    wait_for(lambda: all(errors[p] in state(p).get("last_error", "") for p in errors), 60)
    wait_for(lambda: [a["kind"] for a in alerts(client)] == ["new"], 60)
    # 100,000 entries to read: over a minute when the suite's other daemons share the cores.
    wait_for(lambda: int(state("/many.xml").get("total_items", 0)) == 200, 150)
    wait_for(lambda: ItemsQueue(client, keys, maxlen=10**6).lag() == (0, 0), 60)

    # Entity tricks: the billion laughs stay unexpanded, the external entity unread.
    items = [Item.from_json(fields["item"]) for _, fields in client.xrange(Keys().items)]
    titles = {item.url.rsplit("/", 1)[1]: item.title for item in items}
    assert titles["laughs"] == "&l9;"
    assert titles["xxe"] == "leak &secret; here"
    # Encodings: a bad byte costs one character; a UTF-8 feed served as ISO-8859-1 is read right.
    assert titles["broken"] == "Z\ufffdürich \u2013 Москва"
    assert titles["mislabelled"] == "Zürich \u2013 Москва"
    for path in (*good, "/pages.xml"):
        assert state(path)["last_error"] == ""
    assert feed_server.hits("/private.html") == 0  # the address guard refused it

    metrics = httpx.get(f"{listen}/metrics").text
    assert metric(metrics, 'monitor_polls_total{result="error"}') >= len(errors)
    assert metric(metrics, "monitor_entries_skipped_total") >= 100_000 - 200
    assert metric(metrics, "monitor_items_without_page_total") >= 3 + 200  # pages + /gone/
    assert metric(metrics, "monitor_items_failed_total") == 0
    assert httpx.get(f"{listen}/healthz").status_code == 200

    # A pathological rule file is refused on reload; the rules in force stay.
    (rules / "nested.yaml").write_text(
        "id: nested\nname: nested\nquery: " + "(" * 5000 + "treaty" + ")" * 5000 + "\n"
    )
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("rules_reload_failed"))
    assert "nested more than 40 levels" in daemon.events("rules_reload_failed")[0]["error"]

    status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status)[1])  # type: ignore[index]
    print(f"daemon peak RSS {peak // 1024} MB")
    assert peak < 400 * 1024, f"peak RSS {peak // 1024} MB"
    assert daemon.stop() == 0
