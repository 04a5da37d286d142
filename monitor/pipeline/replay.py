"""`monitor replay`: the poll+process path over local feed files, once, with no network
and no scheduler. Links resolve relative to each feed file.

Each file is replayed as a feed's first poll at the time the file was written (its own
build date, else its newest entry's date, never later than now), or at `as_of`: so an
archived feed alerts on what was news when it was fetched, and its back catalogue does not."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from monitor.errors import FeedError, MonitorError
from monitor.ingest.feeds import FeedDocument, parse_document
from monitor.model import Item, Outcome, oldest_first

if TYPE_CHECKING:
    from monitor.pipeline.process import Processed

log = structlog.get_logger(__name__)

FEED_SUFFIXES = (".xml", ".rss", ".atom", ".rdf", ".json")
MAX_FEED_BYTES = 50 * 1024 * 1024


def feed_files(paths: Iterable[Path], failed: list[FeedError] | None = None) -> list[Path]:
    """The feed files named, directories expanded to the feed files in them and in their
    subdirectories (hidden ones skipped). A path that gives none is a FeedError: raised, or
    appended to `failed` when a list is given (and the others still returned)."""
    found: list[Path] = []
    for path in paths:
        try:
            found.extend(_files_of(path))
        except FeedError as exc:
            if failed is None:
                raise
            failed.append(exc)
    return found


def _files_of(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FeedError(str(path), "no such file or directory")
    inside = []
    for folder, subfolders, names in os.walk(path):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            file = Path(folder, name)
            if (
                file.suffix.lower() in FEED_SUFFIXES
                and not name.startswith(".")
                and _feedlike(file)
            ):
                inside.append(file)
    if not inside:
        raise FeedError(
            str(path), f"no feed files ({', '.join(FEED_SUFFIXES)}) in it or its subdirectories"
        )
    return inside


def _feedlike(path: Path) -> bool:
    """Whether a file found in a directory is a feed: any XML file; a .json file only when
    it looks like a JSON Feed (a version or items near its start). Other JSON beside feeds,
    such as sample_feeds/manifest.json, is skipped (logged at info level)."""
    if path.suffix.lower() != ".json":
        return True
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return True  # reading it fails later, with the reason
    if b"jsonfeed.org/version" in head or b'"items"' in head:
        return True  # a JSON Feed, or a broken one (reading it says what is wrong)
    log.info("file_skipped", path=str(path), reason="not a JSON feed")
    return False


def read_feeds(
    paths: Iterable[Path],
    *,
    as_of: datetime | None = None,
    failed: list[FeedError] | None = None,
) -> list[Item]:
    """Every entry of every feed, as a first poll of each feed would give them at `as_of`
    (default: when each file was written, see `written`), oldest first by report time
    across the files, as live polling would have met them (`oldest_first`). An unreadable
    feed fails the whole call, before anything is processed; unless `failed` is a list:
    then its FeedError is appended there and the other feeds are read."""
    items: list[Item] = []
    for path in feed_files(paths, failed):
        try:
            document = _document(path)
        except FeedError as exc:
            if failed is None:
                raise
            failed.append(exc)
            continue
        seen = as_of or written(document)
        items.extend(
            dataclasses.replace(item, first_seen=seen, baseline=True) for item in document.items
        )
    return oldest_first(items)


def _document(path: Path) -> FeedDocument:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise FeedError(str(path), exc.strerror or str(exc)) from exc
    if len(body) > MAX_FEED_BYTES:
        raise FeedError(str(path), f"larger than {MAX_FEED_BYTES} bytes")
    try:
        return parse_document(body, url=path.resolve().as_uri())
    except FeedError as exc:
        raise FeedError(str(path), exc.reason) from None


def written(document: FeedDocument, now: datetime | None = None) -> datetime:
    """When a feed document was fetched, as far as it tells: its build date when that is
    in the past and not older than its newest entry (many feeds never update it), else its
    newest entry's date — dates in the future ignored — else now."""
    now = now or datetime.now(UTC)
    entries = [i.published for i in document.items if i.published and i.published <= now]
    newest = max(entries) if entries else None
    built = document.updated if document.updated and document.updated <= now else None
    if built and (newest is None or built >= newest):
        return built
    return newest or now


@dataclass(slots=True)
class Summary:
    items: int = 0
    errors: int = 0
    stories: set[str] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)  # reason -> matching items
    # items matched on the feed's text because their page could not be read: reason -> count
    unread_pages: Counter[str] = field(default_factory=Counter)
    files: int = 0  # feed files read
    unreadable: list[FeedError] = field(default_factory=list)  # files skipped, with why

    def add(self, result: Processed) -> None:
        self.items += 1
        if result.article.summary_only:
            self.unread_pages[_why_unread(result)] += 1
        self.stories.add(result.placement.story_id)
        self.outcomes[str(result.placement.outcome)] += 1
        self.rules.update(m.rule_id for m in result.matches)
        self.alerts["published"] += len(result.alerts)
        self.alerts.update(f"rule:{rule}" for rule in result.alert_rules)
        if result.alert_suppressed and result.matches:
            self.suppressed[result.alert_suppressed] += 1

    def as_dict(self) -> dict:
        return {
            "items": self.items,
            "stories": len(self.stories),
            "new_stories": self.outcomes[Outcome.NEW_STORY],
            "same_story": self.outcomes[Outcome.SAME_STORY],
            "near_duplicates": self.outcomes[Outcome.NEAR_DUPLICATE],
            "same_items": self.outcomes[Outcome.SAME_ITEM],
            "seen_before": self.outcomes[Outcome.SEEN],
            "rules_matched": dict(sorted(self.rules.items())),
            "alerts_published": self.alerts["published"],
            "alerts_per_rule": {
                k.removeprefix("rule:"): v
                for k, v in sorted(self.alerts.items())
                if k != "published"
            },
            "alerts_suppressed": dict(sorted(self.suppressed.items())),
            "text_from_summary": self.unread_pages.total(),
            "pages_unread": dict(self.unread_pages.most_common()),
            "errors": self.errors,
            "files": self.files,
            "unreadable_files": [{"file": e.source, "error": e.reason} for e in self.unreadable],
        }


def _why_unread(result: Processed) -> str:
    """Why an item's page was not read, without its URL (so that reasons can be counted)."""
    why = result.warnings[0] if result.warnings else "unknown"
    for url in (result.item.url, result.item.guid):
        if url and why.startswith(url + ": "):
            return why.removeprefix(url + ": ")
    return why


def replay(
    items: Iterable[Item], process: Callable[[Item], Processed], summary: Summary
) -> Iterator[tuple[Item, Processed | None, str]]:
    """Process each item in turn: (item, result, "") or, for an item that failed,
    (item, None, reason). A failing item is counted and logged; the replay goes on."""
    for item in items:
        try:
            result = process(item)
        except MonitorError as exc:
            summary.errors += 1
            log.error("item_failed", item=item.id, url=item.url, error=str(exc))
            yield item, None, str(exc)
            continue
        summary.add(result)
        yield item, result, ""
