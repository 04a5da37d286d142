"""Same-story signals: what a report shares with a candidate story besides its words, and
the fitted decision that weighs them (docs/architecture.md, §3 step 7.3). Pure functions over
strings and numbers.

A report is compared with a story as a whole (its centroid, its closest members, the names
and figures all its members carry, the times of its oldest and newest report), and one
logistic model, fitted on the development sets (`benchmarks/fit_story_model.py`) and
shipped as data (`story_model.json`), turns the signals into a probability.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import regex

from monitor.dedup.fingerprint import STOPWORDS, features, stem
from monitor.text import fold

MAX_NAMES = 40  # names kept per report (most frequent first)
MAX_FIGURES = 30  # figures kept per report
HOUR = 3600.0

# A run of capitalised words ("Johnson County", "Kim Jong Un", "Müller"), possibly joined by
# "of"/"de" ("Bank of England"). A sentence's first word is capitalised too: single words
# that are stopwords ("The", "Police") are dropped below, the rest is noise the model weighs.
_NAME = regex.compile(
    r"\b\p{Lu}[\p{L}\p{M}'\u2019\-]+(?:\s+(?:(?:of|de|la|van|von|al|bin)\s+)?\p{Lu}[\p{L}\p{M}'\u2019\-]+)*"
)
# Figures: 21, 10:30, 3.5, 1,200 (thousands separators dropped); not years (too common).
_FIGURE = regex.compile(r"(?<![\p{L}\p{N}])\d+(?:[.,:]\d+)*")
_POSSESSIVE = regex.compile(r"['\u2019]s?$")
# Ages: "a 21-year-old", "21 years old", "aged 21", and a name's age in commas ("Sara
# Davidson, 19,").
_AGE = regex.compile(
    r"\b(\d{1,3})(?:-| )years?(?:-| )old\b|\p{Lu}\p{Ll}+, (\d{1,2}),|\baged (\d{1,3})\b"
)
_AGED = regex.compile(r"year|, \d|aged ")  # what every age above has (a superset)
AGE = "y"  # the mark of an age among figures
_STREETS = frozenset(
    """street avenue road drive boulevard lane place court way highway parkway st ave rd blvd
    dr""".split()
)
# Capitalised words that are news furniture, not names.
_NOT_NAMES = STOPWORDS | frozenset(
    """police authorities sheriff officers officer man woman men women people victim
    suspect home house street road avenue city county state president minister government
    breaking video photo watch share comment comments click continue copyright email
    facebook twitter subscribe advertisement getty images related""".split()
)


def names(text: str) -> list[str]:
    """Capitalised spans of the text, folded, most frequent first (at most MAX_NAMES): the
    people, places and organisations a report is about. A multi-word name also counts its
    last word ("Andy Parish" -> "parish"), as later reports say "Parish"."""
    counts = Counter(chain.from_iterable(map(_SPAN_NAMES.__getitem__, _NAME.findall(text))))
    return [n for n, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_NAMES]]


class _SpanNames(dict[str, tuple[str, ...]]):
    """The names a capitalised span counts as (none, its words, and its last word too),
    remembered: spans repeat, within a text and across texts."""

    LIMIT = 20_000  # spans kept at most (~4 MB); then it starts anew

    def __missing__(self, span: str) -> tuple[str, ...]:
        if len(self) >= self.LIMIT:
            self.clear()
        value = self[span] = _span_names(span)
        return value


def _span_names(span: str) -> tuple[str, ...]:
    parts = [_POSSESSIVE.sub("", fold(w)) for w in span.split()]
    parts = [p for p in parts if p]
    while parts and parts[0] in _NOT_NAMES:
        parts = parts[1:]  # "The Franklin police" -> "franklin police"
    if not parts:
        return ()
    if len(parts) == 1 and (len(parts[0]) < 3 or parts[0] in _NOT_NAMES):
        return ()
    if len(parts) > 1 and parts[-1] not in _NOT_NAMES and len(parts[-1]) > 2:
        return (" ".join(parts), parts[-1])
    return (" ".join(parts),)


_SPAN_NAMES = _SpanNames()


def figures(text: str) -> list[str]:
    """The numbers a report gives (ages, times, counts, amounts), normalised, most frequent
    first (at most MAX_FIGURES); single digits and years left out. A person's age counts
    besides as the age it is, marked "y" ("a 21-year-old", "Davidson, 19," -> "21y", "19y";
    single digits kept): the victim's or suspect's age tells one incident from another."""
    counts = Counter(filter(None, map(_figure, _FIGURE.findall(text))))
    if _AGED.search(text):  # most texts give no age: one quick scan says so
        for m in _AGE.finditer(text):
            counts[next(g for g in m.groups() if g) + AGE] += 1
    return [n for n, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FIGURES]]


def _figure(found: str) -> str:
    """The figure as counted ("" for a single digit or a year)."""
    value = found.replace(",", "")
    if len(value) < 2 or (len(value) == 4 and value[:2] in ("19", "20")):
        return ""
    return value


def ages(figures: frozenset[str]) -> frozenset[str]:
    """The ages among figures."""
    return frozenset(f for f in figures if f.endswith(AGE))


def streets(names: frozenset[str]) -> frozenset[str]:
    """The street names among names ("maple street", "jefferson avenue")."""
    return frozenset(n for n in names if " " in n and n.rsplit(" ", 1)[1] in _STREETS)


def name_terms(ranked: tuple[str, ...], counts: dict[str, float]) -> list[str]:
    """The story-vector terms of the given names (those the article counts), in order,
    without repeats: what a report is looked up and posted under besides its heaviest
    terms, so rewrites that share the people and places but few other words meet."""
    out: dict[str, None] = {}
    for name in ranked:
        for word in name.split():
            term = stem(word)
            if term in counts:
                out.setdefault(term)
    return list(out)


def title_terms(title: str | list[str]) -> list[str]:
    """The title's content terms, as the story vector counts them (the title may come as its
    words already)."""
    return sorted(features(title, ""))


@dataclass(frozen=True, slots=True)
class Report:
    """What the decision knows of the report being placed."""

    time: float  # seconds since the epoch
    title: frozenset[str]
    names: frozenset[str]
    figures: frozenset[str]
    wires: frozenset[str]
    top_names: tuple[str, ...] = ()  # its most frequent names, first first


@dataclass(slots=True)
class Candidate:
    """A story found for the report: its members among the candidates and its summary."""

    story: str
    size: int = 0
    oldest: float = 0.0
    newest: float = 0.0
    centroid: float = 0.0  # cosine of the report with the story's centroid
    best: float = 0.0  # best cosine with a member
    title: float = 0.0  # best title overlap with a member
    names: frozenset[str] = frozenset()  # of all its members
    figures: frozenset[str] = frozenset()
    wires: set[str] = field(default_factory=set)  # of its candidate members
    rival: float = 0.0  # the best centroid cosine of the report's other candidate stories


def _overlap(mine: frozenset[str], theirs: frozenset[str]) -> float:
    """Share of the report's items the story has too."""
    return len(mine & theirs) / len(mine) if mine else 0.0


def title_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / math.sqrt(len(a) * len(b)) if a and b else 0.0


SIGNALS = (
    "best_cosine",  # TF-IDF cosine with the closest member
    "centroid_cosine",  # ... with the story's centroid
    "title",  # title-term overlap with the closest-titled member
    "names",  # share of the report's names the story carries
    "shared_names",  # log(1 + how many)
    "figures",  # share of the report's figures the story carries
    "wire",  # a news agency credited by both
    "hours_newest",  # log(1 + hours between the report and the story's newest report)
    "hours_oldest",  # log(1 + hours between the report and the story's oldest report)
    "recent_cosine",  # best cosine, decayed by a day's half-life from the newest report
    "size",  # log(1 + reports in the story)
    "margin",  # centroid cosine minus the best of the other candidate stories' (or 0)
    "street",  # a street name both give
    "age",  # an age both give
    "other_street",  # both give street names, none the same
    "other_age",  # both give ages, none the same
)


def signals(report: Report, story: Candidate) -> list[float]:
    newest = abs(report.time - story.newest) / HOUR
    oldest = abs(report.time - story.oldest) / HOUR
    my_streets, my_ages = streets(report.names), ages(report.figures)
    return [
        story.best,
        story.centroid,
        story.title,
        _overlap(report.names, story.names),
        math.log1p(len(report.names & story.names)),
        _overlap(report.figures, story.figures),
        1.0 if report.wires & story.wires else 0.0,
        math.log1p(newest),
        math.log1p(oldest),
        story.best * 0.5 ** (newest / 24),
        math.log1p(story.size),
        story.centroid - story.rival,
        1.0 if my_streets & story.names else 0.0,
        1.0 if my_ages & story.figures else 0.0,
        1.0 if my_streets and streets(story.names) and not my_streets & story.names else 0.0,
        1.0 if my_ages and ages(story.figures) and not my_ages & story.figures else 0.0,
    ]


@dataclass(frozen=True, slots=True)
class StoryModel:
    """Logistic regression over SIGNALS: P(same story) = 1 / (1 + exp(-(w·x + b)))."""

    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5  # join the best story when its probability reaches this

    def __post_init__(self) -> None:
        if len(self.weights) != len(SIGNALS):
            raise ValueError(f"story model: {len(self.weights)} weights for {len(SIGNALS)} signals")

    def probability(self, x: list[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1 / (1 + math.exp(-max(min(z, 50.0), -50.0)))

    @classmethod
    def load(cls, path: Path | None = None) -> StoryModel:
        data = json.loads((path or MODEL).read_text())
        if data.get("signals") != list(SIGNALS):
            raise ValueError(f"story model {path or MODEL}: fitted for other signals")
        return cls(tuple(data["weights"]), data["bias"], data.get("threshold", 0.5))


MODEL = Path(__file__).with_name("story_model.json")
