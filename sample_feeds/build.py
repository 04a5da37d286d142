"""Generate the offline fixture feeds from the seed articles.

    python sample_feeds/build.py

Reads tests/fixtures/seeds/*.txt and writes
  sample_feeds/feed.xml, sample_feeds/pages/*.html, sample_feeds/manifest.json  (the five seeds)
  tests/fixtures/feeds/extra.xml + pages/*.html    (a near-duplicate and an unrelated story)
  tests/fixtures/feeds/tracking.xml                (seed 002 again, GUID with tracking parameters)
  tests/fixtures/feeds/not_a_feed.xml, broken.xml  (an HTML page; an RSS file cut off mid-item)
  tests/fixtures/feeds/labels.json                 (what each extra fixture is meant to test)

The article texts are real (the seeds, copied verbatim). Everything around them is a
reconstruction for the fixture: page chrome, canonical URLs, feed entries and the publication
times (taken from the seeds where they state one). The Novinite rewrite and the Ghent Gazette
story are made up. Pure stdlib and deterministic: re-running gives byte-identical files.
"""

import html
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests/fixtures/seeds"
SAMPLE = ROOT / "sample_feeds"
EXTRA = ROOT / "tests/fixtures/feeds"


def esc(text: str) -> str:
    """Escape for a text node (quotes stay readable)."""
    return html.escape(text, quote=False)


def attr(text: str) -> str:
    """Escape for a double-quoted attribute value."""
    return html.escape(text, quote=False).replace('"', "&quot;")


# Phrases that only occur in the page chrome: an extractor that works must not return any of them.
CHROME_MARKERS = (
    "We use cookies",
    "Accept all cookies",
    "Manage cookies",
    "Share on Facebook",
    "Share on X",
    "Share on Telegram",
    "Share by email",
    "Copy link",
    "Related stories",
    "Advertisement",
    "Sign up for our newsletter",
    "About us",
    "Privacy policy",
    "All rights reserved",
)

# Unrelated headlines for the "Related stories" box; each outlet shows five from its offset on.
RELATED = (
    "Heatwave warning issued as temperatures set to pass 35C",
    "Central bank holds interest rates steady for a third month",
    "Underdogs stun champions with late winner in cup semi-final",
    "Smartphone makers race to add on-device AI assistants",
    "New study links daily walks to better sleep in older adults",
    "Airline strike disrupts hundreds of summer flights",
    "Tennis star withdraws from grass-court season with wrist injury",
    "Record crowds expected at this weekend's summer music festival",
    "Housing starts fall to their lowest level in a decade",
    "Scientists map coral reef recovery after bleaching event",
    "Electric car sales climb as charging network expands",
    "Library reopens after two-year renovation with rooftop garden",
)


@dataclass(frozen=True)
class Outlet:
    name: str
    home: str
    related: int  # offset into RELATED
    nav: str  # "|"-separated section names for the header menu


OUTLETS = {
    "almayadeen": Outlet(
        "Al Mayadeen English",
        "https://english.almayadeen.net",
        0,
        "News|Politics|World|Middle East|Business|Sport|"
        "Culture|Opinion|Analysis|Video|Podcasts|Live",
    ),
    "fakti": Outlet(
        "Fakti.bg",
        "https://fakti.bg",
        2,
        "Bulgaria|World|Politics|Business|Sport|Culture|"
        "Health|Technology|Crime|Opinion|Photo|Video",
    ),
    "koreaherald": Outlet(
        "The Korea Herald",
        "https://www.koreaherald.com",
        4,
        "National|Politics|Social Affairs|Business|Finance|Tech|"
        "Life & Style|Entertainment|Sport|World|Opinion|Video",
    ),
    "newser": Outlet(
        "Newser",
        "https://www.newser.com",
        6,
        "US|World|Politics|Business|Entertainment|Sports|"
        "Science|Health|Tech|Crime|Odd News|Newsletters",
    ),
    "rt": Outlet(
        "RT",
        "https://www.rt.com",
        8,
        "World News|Politics|Business|Sport|Science|Culture|"
        "Op-ed|In Depth|Shows|Projects|Podcasts|Video",
    ),
    "novinite": Outlet(
        "Novinite",
        "https://www.novinite.com",
        10,
        "Home|Bulgaria|Politics|Business|Society|World|"
        "Sport|Culture|Tourism|Energy|Weather|Opinion",
    ),
    "ghent": Outlet(
        "Ghent Gazette",
        "https://www.ghent-gazette.example",
        5,
        "City|Region|Belgium|Politics|Business|Mobility|"
        "Sport|Culture|Food & Drink|Events|Weather|Opinion",
    ),
}


@dataclass
class Article:
    slug: str
    outlet: Outlet
    url: str  # canonical URL, also the feed GUID
    published: str  # ISO 8601 with UTC offset
    headline: str
    description: str  # short summary for <meta name="description"> and the feed item
    body: list[tuple[str, str]]  # (tag, text) inside <article>: tag is "p" or "h2"
    author: str = ""
    top: list[str] = field(default_factory=list)  # chrome lines above the article
    meta: list[str] = field(default_factory=list)  # byline/date line; default: formatted date
    ad: tuple[int, str] = (3, "Advertisement")  # mid-article ad slot: (after body item n, label)
    tail: list[str] = field(default_factory=list)  # chrome lines after the article

    @property
    def text(self) -> str:
        """The article text as placed in <article>: headline, then one line per element."""
        return "\n".join([self.headline, *(t for _, t in self.body)])


# Per-seed settings. "chrome" lists seed lines that are scraped page chrome, not article text,
# and where they go instead: "top" (strip above the article: "Last news in Fakti", the Korea
# Herald's " date 2024-06-19 Most Popular"), "meta" (the byline/date line under the headline:
# Fakti's "Jun 19, 2024 05:11 214" = time + view count, the Korea Herald's "Published : ..."),
# "ad" (label of the mid-article ad slot, kept at its position: Newser's "story continues
# below") and "tail" (after the article: Al Mayadeen's "Read more: ...", Newser's
# "(More / Vladimir Putin stories.)", RT's "Comments are closed."). All other non-empty lines
# are the article: the headline (the first of them unless given) and one <p> or <h2> each.
SEED_SETTINGS = {
    "000": dict(
        slug="almayadeen-putin-kim-strengthen-dprk-russia-relations",
        outlet="almayadeen",
        url="https://english.almayadeen.net/news/politics/"
        "putin-and-kim-agree-to-strengthen-dprk-russia-relations",
        published="2024-06-19T07:30:00+03:00",
        description="Putin and Kim Jong Un agreed to strengthen DPRK-Russia relations during "
        "Putin's first visit to Pyongyang in 24 years, KCNA reported.",
        # The seed has an older Al Mayadeen report appended; it stays in the article as a
        # second section under its own heading.
        subheads={"South Korean, US officials discuss Putin's possible visit to DPRK"},
        chrome={"Read more: DPRK troops cross into South Korea for 2nd time in two weeks": "tail"},
    ),
    "001": dict(
        slug="fakti-russia-dprk-agreed-develop-bilateral-relations",
        outlet="fakti",
        url="https://fakti.bg/en/world/887402-russia-and-dprk-agreed-to-develop-bilateral-relations",
        published="2024-06-19T05:11:00+03:00",
        description="Putin visited North Korea for the first time in 24 years and agreed with "
        "Kim Jong-un to develop bilateral relations, Reuters reports via BTA.",
        chrome={"Last news in Fakti": "top", "Jun 19, 2024 05:11 214": "meta"},
    ),
    "002": dict(
        slug="koreaherald-kim-promises-putin-full-support",
        outlet="koreaherald",
        url="https://www.koreaherald.com/article/3421317",
        published="2024-06-19T15:57:00+09:00",
        author="Ji Da-gyum",
        description="Putin pledges renewed ties with North Korea in his first Pyongyang visit "
        "in 24 years; Kim offers full support for Russia's war in Ukraine.",
        chrome={
            " date 2024-06-19 Most Popular": "top",
            "Published : June 19, 2024 - 15:57": "meta",
        },
    ),
    "003": dict(
        slug="newser-kim-pledges-full-support-russia-war",
        outlet="newser",
        url="https://www.newser.com/story/352131/kim-pledges-full-support-for-russias-war-in-ukraine.html",
        published="2024-06-19T02:05:00-05:00",
        headline="Kim Pledges Full Support for Russia's War in Ukraine",
        description="Kim Jong Un promises full support for Russia's war in Ukraine as he opens "
        "talks with Vladimir Putin in Pyongyang.",
        chrome={"story continues below": "ad", "(More": "tail", "Vladimir Putin stories.)": "tail"},
    ),
    "004": dict(
        slug="rt-putin-state-visit-north-korea",
        outlet="rt",
        url="https://www.rt.com/russia/599622-putin-north-korea-state-visit/",
        published="2024-06-19T19:45:00+03:00",
        description="Moscow and Pyongyang have agreed to enhance cooperation in all spheres and "
        "to defend each other from potential foreign aggression.",
        subheads={
            "Grand reception in Pyongyang",
            "Negotiations",
            "Comprehensive Strategic Partnership Treaty",
        },
        chrome={"Comments are closed.": "tail"},
    ),
}


def seed_article(
    path: Path,
    slug: str,
    outlet: str,
    headline: str = "",
    author: str = "",
    subheads: Collection[str] = (),
    chrome: dict | None = None,
    **rest,
) -> Article:
    """One seed file as an Article, per its SEED_SETTINGS entry."""
    chrome = chrome or {}
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert set(chrome) <= set(lines), f"{path.name}: chrome lines not in seed"
    article = Article(slug, OUTLETS[outlet], headline=headline, author=author, body=[], **rest)
    body = []
    for line in lines:
        where = chrome.get(line)
        if where == "ad":
            # position in the body; until popped, a seed headline is still body[0]
            article.ad = (len(body) - (not headline), line)
        elif where:
            getattr(article, where).append(line.strip())
        else:
            body.append(line)
    if not headline:
        article.headline = body.pop(0)
    # The Korea Herald seed has the byline glued to the standfirst ("...in 24 yearsBy Ji
    # Da-gyum"): split it back into the standfirst <p> and the byline in the meta line.
    byline = f"By {author}"
    for i, line in enumerate(body):
        if author and line.endswith(byline):
            body[i] = line.removesuffix(byline)
            article.meta.insert(0, byline)
    article.body = [("h2" if line in subheads else "p", line) for line in body]
    return article


def render_page(a: Article) -> str:
    """A news web page: the article wrapped in typical chrome (nothing of which is article text)."""
    o, url = a.outlet, quote(a.url, safe="")
    meta = "".join(f"<span>{esc(m)}</span> " for m in a.meta) or (
        f'<time datetime="{a.published}">'
        f"{datetime.fromisoformat(a.published):%d %B %Y, %H:%M}</time>"
    )
    body = [f"<{tag}>{esc(text)}</{tag}>" for tag, text in a.body]
    position, label = a.ad
    body.insert(
        position, f'<div class="ad-slot" aria-hidden="true"><span>{esc(label)}</span></div>'
    )
    body = "\n".join(body)
    author = f'<meta name="author" content="{attr(a.author)}">\n' if a.author else ""
    tail = f'<aside class="more-on"><p>{esc(" ".join(a.tail))}</p></aside>' if a.tail else ""
    top = "".join(f'<div class="section-strip"><span>{esc(t)}</span></div>' for t in a.top)
    nav = "".join(
        f'<li><a href="/{quote(s.lower().replace(" ", "-"))}/">{esc(s)}</a></li>'
        for s in o.nav.split("|")
    )
    related = "".join(
        f'<li><a href="/news/{1000 * o.related + i}">{esc(headline)}</a></li>'
        for i, headline in enumerate((RELATED * 2)[o.related : o.related + 5])
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(a.headline)} | {esc(o.name)}</title>
<meta name="description" content="{attr(a.description)}">
<meta property="og:type" content="article">
<meta property="og:title" content="{attr(a.headline)}">
<meta property="og:description" content="{attr(a.description)}">
<meta property="og:url" content="{attr(a.url)}">
<meta property="og:site_name" content="{attr(o.name)}">
{author}<meta property="article:published_time" content="{a.published}">
<link rel="canonical" href="{attr(a.url)}">
<link rel="stylesheet" href="/static/css/site.css">
<script>window.dataLayer = window.dataLayer || [];</script>
</head>
<body>
<div id="cookie-consent" class="cookie-banner" role="dialog" aria-label="Cookie consent">
<p>We use cookies to personalise content and ads and to analyse our traffic.
You can change your choice at any time under Manage cookies.</p>
<button type="button">Accept all cookies</button> <button type="button">Manage cookies</button>
</div>
<header class="site-header">
<a class="logo" href="{o.home}/">{esc(o.name)}</a>
<nav class="main-nav" aria-label="Sections"><ul>
{nav}
</ul></nav>
</header>
<main id="main">
{top}
<article class="story">
<header class="story-header">
<h1>{esc(a.headline)}</h1>
<div class="article-meta">{meta}</div>
<div class="share-bar">
<a href="https://www.facebook.com/sharer/sharer.php?u={url}">Share on Facebook</a>
<a href="https://x.com/intent/post?url={url}">Share on X</a>
<a href="https://t.me/share/url?url={url}">Share on Telegram</a>
<a href="mailto:?body={url}">Share by email</a>
<button type="button" class="copy-link">Copy link</button>
</div>
</header>
<div class="article-body">
{body}
</div>
</article>
{tail}
<section class="related-stories">
<h2>Related stories</h2>
<ul>
{related}
</ul>
</section>
<section class="newsletter-signup">
<h2>Sign up for our newsletter</h2>
<p>The day's top headlines from {esc(o.name)}, in your inbox every morning.</p>
<form action="/newsletter/subscribe" method="post">
<input type="email" name="email" placeholder="Your email address">
<button type="submit">Subscribe</button>
</form>
</section>
</main>
<footer class="site-footer">
<ul><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li>
<li><a href="/privacy">Privacy policy</a></li><li><a href="/terms">Terms of use</a></li></ul>
<p>&copy; 2024 {esc(o.name)}. All rights reserved.</p>
</footer>
</body>
</html>
"""


def render_feed(
    title: str, link: str, description: str, items: list[tuple[Article, str, str]]
) -> str:
    """RSS 2.0; items are (article, link relative to the feed file, GUID), sorted by date."""
    entries = []
    for a, href, guid in sorted(items, key=lambda item: datetime.fromisoformat(item[0].published)):
        creator = f"\n  <dc:creator>{esc(a.author)}</dc:creator>" if a.author else ""
        entries.append(f"""<item>
  <title>{esc(a.headline)}</title>
  <link>{esc(href)}</link>
  <guid isPermaLink="false">{esc(guid)}</guid>
  <pubDate>{format_datetime(datetime.fromisoformat(a.published))}</pubDate>
  <source url="{attr(a.outlet.home)}/rss">{esc(a.outlet.name)}</source>{creator}
  <description>{esc(a.description)}</description>
</item>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
<title>{esc(title)}</title>
<link>{esc(link)}</link>
<description>{esc(description)}</description>
<language>en</language>
{chr(10).join(entries)}
</channel>
</rss>
"""


# The seed 001 story (Reuters via BTA) as Novinite might republish it: each (old, new) edit must
# match exactly once. Plus a new headline, a dateline, no standfirst and a boilerplate last line.
NOVINITE_EDITS = (
    ("two countries in during the first", "two countries during the first"),
    ("in the last 24 years, reported Reuters, cited by BTA,", "in 24 years, Reuters reported,"),
    ("defense ties", "defence ties"),
    ("Reuters notes.", "Reuters said."),
    ("state media KCTA said", "state media KCNA said"),
    (", adds the Central Committee of the Central Committee.", ", the agency added."),
    ("US accuses North Korea", "The United States accuses North Korea"),
    ("about her war in Ukraine", "for its war in Ukraine"),
    ("Anthony Blinken", "Antony Blinken"),
    ('programs,", the NATO', 'programs," the NATO'),
    ("that would affect of the security", "that would affect the security"),
    ("Karin Jean-Pierre", "Karine Jean-Pierre"),
    (
        "great concern to anyone interested in maintaining peace and stability on the Korean "
        'Peninsula" .',
        'great concern".',
    ),
)

# A made-up local story with nothing in common with the seeds.
GHENT_TRAM = (
    "Ghent city council has approved plans for a new tram line linking Gent-Sint-Pieters "
    "station with the redeveloped Oude Dokken district, ending more than two years of "
    "consultation with residents and businesses along the route.",
    "The 6.2-kilometre line will run through the city centre via Korenmarkt and Dampoort, with "
    "14 stops and a tram every eight minutes at peak hours. Councillors voted 34 to 11 in "
    "favour on Tuesday evening, with several opposition members saying they backed the idea but"
    " wanted more detail on the construction timetable.",
    "The alderman for mobility said the line would give the fast-growing docklands "
    "neighbourhood a direct connection to the railway station and take pressure off the city's "
    'busiest bus routes. "Thousands of people have moved to the Oude Dokken in the last few '
    'years, and many of them still depend on the car," she said.',
    "The project is expected to cost around 120 million euros, shared between the city, the "
    "Flemish government and the public transport operator De Lijn. Preparatory work on "
    "underground cables and pipes is due to begin next spring, and the first trams are expected"
    " to run in 2028.",
    "Shopkeepers on Dampoortstraat have raised concerns about losing parking spaces and "
    "delivery access during construction. The council said it would set up a compensation "
    "scheme and keep at least one lane open to traffic throughout the works.",
    "Cycling groups welcomed the decision but called for protected bike lanes along the entire "
    "route. A public information evening is planned for early July at the Oude Dokken community"
    " centre, where residents can see the final designs.",
)


def near_duplicate(src: Article) -> Article:
    text = "\n".join(t for _, t in src.body[1:])  # without Fakti's standfirst
    for old, new in NOVINITE_EDITS:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    paras = text.split("\n")
    paras[0] = "SOFIA, June 19 (BTA) - " + paras[0]
    paras.append("Novinite.com - Sofia News Agency")
    return Article(
        "novinite-putin-kim-pledge-closer-ties",
        OUTLETS["novinite"],
        "https://www.novinite.com/articles/226051/putin-and-kim-pledge-closer-ties-in-pyongyang",
        "2024-06-19T06:11:00+03:00",
        "Putin and Kim Pledge Closer Ties on First Pyongyang Visit in 24 Years",
        "The Russian and North Korean leaders agreed to develop relations between their countries, "
        "Reuters reported.",
        [("p", p) for p in paras],
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_json(path: Path, data: object) -> None:
    write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    seeds = [
        seed_article(path, **SEED_SETTINGS[path.name[:3]]) for path in sorted(SEEDS.glob("*.txt"))
    ]
    for a in seeds:
        write(SAMPLE / f"pages/{a.slug}.html", render_page(a))
    feed = render_feed(
        "News monitor sample feed \u2014 Putin in Pyongyang, June 2024",
        "https://example.org/news-monitor/sample_feeds/",
        "Five real reports of Vladimir Putin's visit to Pyongyang on 18-19 June 2024, "
        "for offline replay.",
        [(a, f"pages/{a.slug}.html", a.url) for a in seeds],
    )
    write(SAMPLE / "feed.xml", feed)
    articles = [
        {
            "seed": f"tests/fixtures/seeds/{path.name}",
            "page": f"pages/{a.slug}.html",
            "guid": a.url,
            "source": a.outlet.name,
            "published": a.published,
            "title": a.headline,
            "author": a.author or None,
            "text": a.text,
        }
        for path, a in zip(sorted(SEEDS.glob("*.txt")), seeds, strict=True)
    ]
    write_json(SAMPLE / "manifest.json", {"chrome_markers": CHROME_MARKERS, "articles": articles})

    fakti, herald = seeds[1], seeds[2]
    novinite = near_duplicate(fakti)
    ghent = Article(
        "ghent-council-approves-tram-line",
        OUTLETS["ghent"],
        "https://www.ghent-gazette.example/city/2024/06/19/council-approves-oude-dokken-tram-line",
        "2024-06-19T11:20:00+02:00",
        "Ghent council approves tram line to the Oude Dokken",
        "Councillors approved a 6.2-kilometre tram line linking Gent-Sint-Pieters station with "
        "the docklands, with the first trams due in 2028.",
        [("p", p) for p in GHENT_TRAM],
    )
    for a in (novinite, ghent):
        write(EXTRA / f"pages/{a.slug}.html", render_page(a))
    write(
        EXTRA / "extra.xml",
        render_feed(
            "News monitor extra fixtures \u2014 near-duplicate and unrelated story",
            "https://example.org/news-monitor/tests/fixtures/feeds/",
            "A near-duplicate of sample_feeds seed 001 and an unrelated local story.",
            [(a, f"pages/{a.slug}.html", a.url) for a in (novinite, ghent)],
        ),
    )
    tracked = herald.url + "?utm_source=rss&utm_medium=feed&fbclid=abc"
    write(
        EXTRA / "tracking.xml",
        render_feed(
            "News monitor fixture \u2014 tracking parameters on a known item",
            "https://example.org/news-monitor/tests/fixtures/feeds/",
            "Seed 002 again, its GUID carrying tracking parameters.",
            [(herald, f"../../../sample_feeds/pages/{herald.slug}.html", tracked)],
        ),
    )
    labels = {
        "extra.xml": {
            novinite.url: {"label": "near-duplicate", "duplicate_of": fakti.url},
            ghent.url: {"label": "unrelated"},
        },
        "tracking.xml": {tracked: {"label": "same-item", "canonical": herald.url}},
        "not_a_feed.xml": {"label": "not-a-feed"},
        "broken.xml": {"label": "truncated-feed"},
    }
    write_json(EXTRA / "labels.json", labels)

    moved = Article(
        "feed-moved",
        OUTLETS["ghent"],
        "https://www.ghent-gazette.example/rss",
        "2024-06-19T09:00:00+02:00",
        "This page has moved",
        "The feed you requested is no longer available at this address.",
        [
            ("p", "The feed you requested is no longer available at this address."),
            ("p", "Visit our homepage for the latest news from Ghent and the region."),
        ],
    )
    write(EXTRA / "not_a_feed.xml", render_page(moved))
    third_item = feed.index("<item>", feed.index("<item>", feed.index("<item>") + 1) + 1)
    write(EXTRA / "broken.xml", feed[: feed.index("<description>", third_item) + 40])


if __name__ == "__main__":
    main()
