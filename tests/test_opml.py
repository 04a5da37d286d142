"""OPML import and export: readers' real formats, hostile files, the round trip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import FeedConfig
from monitor.ingest.opml import OpmlError, parse, render

from .conftest import FIXTURES

OPML = FIXTURES / "opml"


def test_miniflux_export() -> None:
    found = parse((OPML / "miniflux.opml").read_bytes())
    assert [(f.name, f.tags) for f in found.feeds] == [
        ("The Korea Herald - North Korea", ("Asia",)),
        ("Yonhap News Agency", ("Asia",)),
        ("BBC News - World", ("Wires",)),
    ]
    assert found.feeds[1].url == "https://en.yna.co.kr/RSS/news.xml"
    assert found.duplicates == [] and found.invalid == []


def test_freshrss_export_skips_what_is_not_a_feed() -> None:
    found = parse((OPML / "freshrss.opml").read_bytes())
    assert [f.name for f in found.feeds] == [
        "Spiegel International",
        "Novinite",
        "BBC News - World",
    ]
    assert found.feeds[0].tags == ("Europe",)
    (invalid,) = found.invalid
    assert "HTML+XPath" in invalid and invalid.startswith("https://example.org/news")


def test_netnewswire_export_reports_duplicates_and_invalid_urls() -> None:
    found = parse((OPML / "netnewswire.opml").read_bytes())
    assert [(f.name, f.tags) for f in found.feeds] == [
        ("Daring Fireball", ()),
        ("NK News", ("Korea",)),
    ]
    assert found.duplicates == ["https://www.nknews.org/feed/?utm_source=nnw"]
    assert len(found.invalid) == 1 and found.invalid[0].startswith("javascript:alert(1)")


def test_nested_categories_and_category_attributes_become_tags() -> None:
    document = b"""<opml version="2.0"><head/><body>
      <outline text="News"><outline text="Asia">
        <outline text="A" xmlUrl="https://a.example/rss" category="/Korea,/Politics"/>
      </outline></outline></body></opml>"""
    (feed,) = parse(document).feeds
    assert feed.tags == ("News", "Asia", "Korea", "Politics")


@pytest.mark.parametrize("name", ["billion_laughs.opml", "external_entity.opml"])
def test_entities_are_refused(name: str) -> None:
    with pytest.raises(OpmlError, match="refused"):
        parse((OPML / name).read_bytes(), name=name)


def test_a_huge_file_is_refused_before_parsing() -> None:
    outline = b'<outline text="x" xmlUrl="https://example.org/%d"/>\n'
    body = b"".join(outline.replace(b"%d", str(n).encode()) for n in range(200_000))
    document = b'<opml version="2.0"><head/><body>' + body + b"</body></opml>"
    assert len(document) > 10 * 1024 * 1024
    with pytest.raises(OpmlError, match="larger than 5 MB"):
        parse(document)


def test_encodings() -> None:
    with pytest.raises(OpmlError, match="not well-formed"):
        parse((OPML / "wrong_encoding.opml").read_bytes())  # Latin-1 bytes declared UTF-8
    (feed,) = parse((OPML / "latin1.opml").read_bytes()).feeds
    assert feed.name == "Ärzte Zeitung über Gesundheit"


@pytest.mark.parametrize("document", [b"", b"<html><body/></html>", b"not xml at all"])
def test_not_opml(document: bytes) -> None:
    with pytest.raises(OpmlError):
        parse(document)


def test_round_trip() -> None:
    feeds = [
        FeedConfig(url="https://a.example/rss", name="A & <B>", tags=("World", "Asia")),
        FeedConfig(url="https://b.example/atom.xml", name="Bé", tags=("World",)),
        FeedConfig(url="https://c.example/feed"),
    ]
    again = parse(render(feeds)).feeds
    assert sorted(again, key=lambda f: f.url) == sorted(feeds, key=lambda f: f.url)


@pytest.mark.slow
def test_import_list_and_export_on_the_command_line(tmp_path: Path, redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_REDIS_URL"] = redis_url

    def monitor(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "monitor", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = monitor("feeds", "import", str(OPML / "netnewswire.opml"))
    assert first.returncode == 0, first.stderr
    assert "2 feeds added, 0 already there, 1 duplicate in the file, 1 invalid" in first.stdout
    again = monitor("feeds", "import", str(OPML / "miniflux.opml"))
    assert "3 feeds added" in again.stdout
    listed = monitor("feeds", "list", "--json")
    assert len(listed.stdout.splitlines()) == 5
    exported = monitor("feeds", "export", "-o", "out.opml")
    assert exported.returncode == 0
    assert len(parse((tmp_path / "out.opml").read_bytes()).feeds) == 5
    assert (
        "0 feeds added, 3 already there"
        in monitor("feeds", "import", str(OPML / "miniflux.opml")).stdout
    )
    one = tmp_path / "one.opml"
    one.write_text(
        '<opml version="2.0"><body><outline xmlUrl="https://one.example/feed"/></body></opml>'
    )
    assert (
        "one.opml: 1 feed added, 0 already there, 0 duplicates"
        in monitor("feeds", "import", str(one)).stdout
    )
    hostile = monitor("feeds", "import", str(OPML / "billion_laughs.opml"))
    assert (
        hostile.returncode == 2
        and "refused" in hostile.stderr
        and "Traceback" not in hostile.stderr
    )


def test_deep_nesting_is_walked_without_recursion() -> None:
    document = (
        b'<opml version="2.0"><head/><body>'
        + b'<outline text="c">' * 5000
        + b'<outline text="x" xmlUrl="https://a.example/f"/>'
        + b"</outline>" * 5000
        + b"</body></opml>"
    )
    (feed,) = parse(document).feeds
    assert feed.tags == ("c",)
