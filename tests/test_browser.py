"""The desk in a real browser (Debian's chromium, headless): after the seed replay the
stories page shows the one story with its five sources; the story's page, reached through
the link the browser rendered, lists them; screenshots are taken of each page.

Skipped, with the reason, where chromium is not installed (`.ci/run` installs it).
DESK_SCREENSHOTS=1 also writes the screenshots to docs/screenshots/ (how the README's are made).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import redis

from .conftest import ROOT
from .test_web import TOKEN, replayed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def browse(url: str, tmp: Path, *, screenshot: Path | None = None, size: str = "1280,900") -> str:
    """The DOM as the browser rendered it (and a screenshot of the page, if asked)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    base = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}"]
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    if screenshot is not None:
        subprocess.run(
            [*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=90, check=True
        )
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", screenshot.read_bytes()[16:24])
        assert (width, height) == tuple(int(n) for n in size.split(","))
    return dom


@pytest.mark.slow
def test_the_seed_story_in_a_real_browser(
    redis_url: str,
    client: redis.Redis,
    desk,
    tmp_path: Path,
) -> None:
    import dataclasses

    from monitor.config import WebSettings

    settings = dataclasses.replace(replayed(redis_url, client), web=WebSettings(token=TOKEN))
    web = desk(settings, client)
    base = str(web.base_url).rstrip("/")
    shots = tmp_path / "shots"
    shots.mkdir()

    stories = browse(base + "/", tmp_path, screenshot=shots / "desk-stories.png")
    assert stories.count('class="story"') == 1 and "5 reports" in stories
    for source in ("Fakti.bg", "Al Mayadeen English", "The Korea Herald", "Newser", "RT"):
        assert source in stories
    (link,) = set(re.findall(r'href="(/story/[0-9a-f]+)"', stories))

    story = browse(base + link, tmp_path, screenshot=shots / "desk-story.png")
    assert story.count('class="report"') == 5 and "<mark>" in story
    assert "DPRK\u2013Russia treaty \u2014 new" in story

    for page, name in (
        ("/alerts", "desk-alerts"),
        ("/feeds", "desk-feeds"),
        ("/rules?rule=dprk-russia-treaty&days=9999", "desk-rules"),
        ("/search?q=%22full+support%22&days=9999", "desk-search"),
    ):
        dom = browse(base + page, tmp_path, screenshot=shots / f"{name}.png")
        assert "news-monitor" in dom
    phone = browse(base + "/", tmp_path, screenshot=shots / "desk-phone.png", size="390,844")
    assert "5 reports" in phone

    if os.environ.get("DESK_SCREENSHOTS"):
        target = ROOT / "docs" / "screenshots"
        target.mkdir(exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, target / shot.name)
