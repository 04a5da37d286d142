"""Feed parsing and URL canonicalisation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from monitor.errors import FeedError
from monitor.ingest.feeds import canonical_url, parse_feed
from monitor.pipeline.replay import feed_files, read_feeds

from .conftest import FIXTURES, SAMPLE_FEEDS

FEEDS = FIXTURES / "feeds"


def test_sample_feed_items_carry_the_fields() -> None:
    items = read_feeds([SAMPLE_FEEDS])
    assert len(items) == 5
    for item in items:
        assert item.guid.startswith("https://")
        assert item.title and item.source and item.summary
        assert item.published is not None
        assert datetime(2024, 6, 18).date() <= item.published.date() <= datetime(2024, 6, 19).date()
        assert not item.content  # summary only: the text must come from the page
        page = Path(item.url.removeprefix("file://"))
        assert page.is_file() and page.parent == SAMPLE_FEEDS / "pages"
    assert [i.published for i in items] == sorted(i.published for i in items)


def test_links_resolve_relative_to_the_feed_from_any_directory(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (item, *_) = read_feeds([SAMPLE_FEEDS / "feed.xml"])
    assert item.url == (SAMPLE_FEEDS / "pages").resolve().as_uri() + item.url.rsplit("/pages", 1)[1]


def test_http_feed_links_resolve_against_the_feed_url() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
      <item><title>A</title><link>/news/a.html</link></item></channel></rss>"""
    (item,) = parse_feed(body, url="https://example.org/feeds/rss.xml")
    assert item.url == "https://example.org/news/a.html"
    assert item.guid == ""  # no GUID: the link is the identity
    assert item.key == item.url
    assert item.source == "T"


def test_atom_content_is_kept() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
      <feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:f</id>
      <entry><id>urn:e1</id><title>E</title><link href="https://example.org/e1"/>
      <updated>2024-06-19T10:00:00Z</updated>
      <content type="html">&lt;p&gt;Full text here.&lt;/p&gt;</content></entry></feed>"""
    (item,) = parse_feed(body, url="https://example.org/atom")
    assert item.guid == "urn:e1" and "Full text here." in item.content
    assert item.published == datetime.fromisoformat("2024-06-19T10:00:00+00:00")


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "https://www.koreaherald.com/article/3421317?utm_source=rss&utm_medium=feed&fbclid=abc",
            "https://www.koreaherald.com/article/3421317",
        ),
        ("HTTPS://Example.ORG:443/a?b=2&a=1#top", "https://example.org/a?a=1&b=2"),
        ("http://example.org:8080", "http://example.org:8080/"),
        ("https://example.org/a?id=7&gclid=x&ref_src=twsrc", "https://example.org/a?id=7"),
        ("urn:uuid:1234", "urn:uuid:1234"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_an_html_page_is_not_a_feed() -> None:
    with pytest.raises(FeedError, match=r"not_a_feed\.xml: not a readable feed"):
        read_feeds([FEEDS / "not_a_feed.xml"])


def test_a_truncated_feed_keeps_what_parses_with_a_warning() -> None:
    with capture_logs() as logs:
        items = read_feeds([FEEDS / "broken.xml"])
    assert 1 <= len(items) < 5
    assert any(e["event"] == "feed_ill_formed" and e["log_level"] == "warning" for e in logs)


def test_feedparser_is_never_given_a_path() -> None:
    with pytest.raises(TypeError):
        parse_feed("/etc/hostname", url="file:///etc/hostname")  # type: ignore[arg-type]


def test_missing_paths_and_empty_directories_are_errors(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="no such file or directory"):
        feed_files([tmp_path / "nope"])
    with pytest.raises(FeedError, match="no feed files"):
        feed_files([tmp_path])


def test_bad_ports_do_not_break_canonicalisation() -> None:
    from monitor.config import FeedConfig
    from monitor.errors import ConfigError

    assert canonical_url("http://example.com:99999/a") == "http://example.com:99999/a"
    assert canonical_url("http://[::1/feed") == "http://[::1/feed"
    with pytest.raises(ConfigError, match="bad url"):
        FeedConfig(url="http://example.com:abc/feed")


def test_a_canonical_link_to_another_site_or_the_home_page_is_ignored() -> None:
    from monitor.extract import _canonical

    page = "https://news.example/2024/06/19/story.html"
    assert _canonical("https://news.example/", page) == ""
    assert _canonical("https://other.example/2024/story", page) == ""
    assert _canonical("https://news.example/a/story", page) == "https://news.example/a/story"
    assert _canonical(page, page) == ""


TITLE = "Zürich café \u2013 déjà vu"


def _doc(declared: str) -> str:
    return (
        f'<?xml version="1.0" encoding="{declared}"?><rss version="2.0"><channel><title>t'
        f"</title><item><title>{TITLE}</title><link>http://e.org/1</link></item></channel></rss>"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "title"),
    [
        # a few invalid bytes in UTF-8: only they are lost, not every accented letter
        (
            _doc("utf-8").encode().replace(b"caf", b"\xff\xfecaf"),
            "",
            "Zürich \ufffd\ufffdcafé \u2013 déjà vu",
        ),
        # UTF-8 served as ISO-8859-1 / windows-1251 (header or declaration): read as UTF-8
        (_doc("utf-8").encode(), "text/xml; charset=windows-1251", TITLE),
        (_doc("iso-8859-1").encode(), "", TITLE),
        # really ISO-8859-1, declared UTF-8: feedparser's windows-1252 fallback
        (_doc("utf-8").encode("latin-1", "replace"), "", "Zürich café ? déjà vu"),
        # what it says it is
        (_doc("windows-1251").replace(TITLE, "Москва").encode("cp1251"), "", "Москва"),
        (_doc("iso-8859-1").encode("latin-1", "replace"), "text/xml", "Zürich café ? déjà vu"),
    ],
)
def test_wrong_and_broken_encodings(body: bytes, content_type: str, title: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    [item] = parse_feed(body, url="http://e.org/feed", headers=headers)
    assert item.title == title
    assert item.url == "http://e.org/1"
