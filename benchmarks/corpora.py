"""The story development sets in ../shared/data/stories-dev, read at run time (their
licences allow evaluation use only: never copy them into the repository).

    neus        undated leads, three outlets per story (train / val)
    gva-dev     dated local reports of shootings, one incident per story
    giveme5w1h  dated full articles of multi-outlet events
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _support import ROOT

DATA = ROOT.parent / "shared" / "data" / "stories-dev"
CORPORA = ("neus", "gva-dev", "giveme5w1h")
_PART = re.compile(r"\s*TITLE=>\s*(.*?)\s*ARTICLE=>\s*(.*)", re.S)


@dataclass(frozen=True, slots=True)
class Report:
    key: str  # unique within the corpus
    story: str  # the gold story
    title: str
    text: str
    source: str
    time: datetime | None  # None: undated (NeuS)


def path(corpus: str, split: str = "val") -> Path:
    if corpus == "neus":
        return DATA / "neus" / f"{split}.source"
    return DATA / corpus / "docs.jsonl"


def load(corpus: str, split: str = "val", limit: int | None = None) -> list[Report]:
    """The corpus's reports in the order a feed would give them: dated sets by time (ties
    by id), NeuS (undated) in a fixed shuffle. `limit`: the first N stories only."""
    if corpus == "neus":
        return _neus(split, limit)
    reports = []
    stories: dict[str, int] = {}
    for line in path(corpus).read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        stories.setdefault(doc["story"], len(stories))
        if limit is not None and stories[doc["story"]] >= limit:
            continue
        when = datetime.fromisoformat(doc["date"])
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        reports.append(
            Report(doc["id"], doc["story"], doc["title"], doc["text"], doc["source"], when)
        )
    reports.sort(key=lambda r: (r.time, r.key))
    return reports


def _neus(split: str, limit: int | None) -> list[Report]:
    reports = []
    lines = path("neus", split).read_text(encoding="utf-8").splitlines()
    for story, line in enumerate(lines[:limit]):
        for n, part in enumerate(line.split(" [SEP] ")):
            m = _PART.match(part)
            if m:
                key = f"{story}-{n}"
                reports.append(Report(key, str(story), m.group(1), m.group(2), f"outlet{n}", None))
    random.Random(2024).shuffle(reports)
    return reports
