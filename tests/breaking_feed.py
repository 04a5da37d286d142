"""Reports of one event for the breaking tests: each a rewrite of its own (different
sentences, in a different order), so that they join one story as same-story reports, not
as copies."""

from __future__ import annotations

import email.utils
import random
from datetime import datetime
from html import escape

from monitor.model import Item

FACTS = [
    "A magnitude 6.1 earthquake struck near Izmir on Tuesday, Turkey's disaster agency AFAD said.",
    "Buildings swayed in the centre of Izmir and residents ran out into the streets.",
    "Governor Suleyman Elban said two apartment blocks collapsed in the Bayrakli district.",
    "Rescue teams from AFAD were searching the rubble of the Bayrakli blocks for survivors.",
    "The quake was also felt on the Greek island of Samos, where a church wall fell.",
    "Health minister Fahrettin Koca said hospitals in Izmir were treating dozens of injured.",
    "The Kandilli observatory put the epicentre 17 kilometres off the coast of Seferihisar.",
    "Aftershocks of up to magnitude 4.2 followed within the hour, AFAD reported.",
    "Schools in Izmir province will stay closed on Wednesday, the governor's office said.",
    "Videos shared online showed seawater flooding streets in Seferihisar after the quake.",
    "Mayor Tunc Soyer asked residents to keep away from damaged buildings overnight.",
    "Greek prime minister Kyriakos Mitsotakis called President Erdogan to offer help.",
]
OTHER = [
    "The city council of Ghent approved a new tram line to the port after two years of hearings.",
    "Construction of the six-kilometre line starts in autumn and should finish in 2029.",
    "Alderman Filip Watteeuw said the budget of 140 million euros is shared with Flanders.",
    "Residents of the Muide district asked for noise barriers along the new tracks.",
    "The port company North Sea Port welcomed the decision as good news for commuters.",
    "Opposition councillors said the line should have reached the station of Gent-Dampoort.",
]


def rewrite(n: int, facts: list[str] = FACTS) -> str:
    """Report n: seven of the facts in an order of its own, with a lead of its own."""
    rng = random.Random(n)
    chosen = rng.sample(facts, min(7, len(facts)))
    return f"Report number {n} of the day. " + " ".join(chosen)


def report(n: int, source: str, when: datetime, facts: list[str] = FACTS) -> Item:
    title = "Earthquake hits Izmir" if facts is FACTS else "Ghent approves tram line"
    return Item(
        guid=f"urn:b:{n}",
        url=f"https://{source}/{n}",
        title=f"{title} ({n})",
        source=source,
        feed="burst",
        content=rewrite(n, facts) * 2,
        published=when,
        first_seen=when,
    )


def rss(items: list[Item]) -> str:
    """An RSS document of the items (their text in content:encoded, their outlet as the
    item's <source>), newest first."""
    entries = []
    for item in sorted(items, key=lambda i: i.time or 0, reverse=True):
        assert item.published is not None
        entries.append(
            f"<item><guid>{escape(item.guid)}</guid><title>{escape(item.title)}</title>"
            f"<link>{escape(item.url)}</link>"
            f'<source url="https://{escape(item.source)}/">{escape(item.source)}</source>'
            f"<pubDate>{email.utils.format_datetime(item.published)}</pubDate>"
            f"<content:encoded>{escape(item.content)}</content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        "<channel><title>burst</title>" + "".join(entries) + "</channel></rss>"
    )
