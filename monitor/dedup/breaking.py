"""When a story breaks: its count of reports in the last window (of report time) is far above
what its own earlier rate and the stream's background predict, from enough distinct sources.

    n       reports of the story in (t - W, t], t the report's time, W `window_minutes`
    s       their distinct sources
    own     the story's reports in (t - L, t - W] per hour of its life in that span (at
            least W long), L `lookback_hours`
    bg      the stream's reports per active story-hour in the whole hours of [t - L, t - W)
    lambda  max(own * W, bg * W / 1 h, `min_expected`)
    breaks  n >= `min_reports` and s >= `min_sources` and P(N >= n | Poisson(lambda)) <= `p_value`

Pure: `check` takes the activity read (monitor.dedup.activity) and the settings; the same
reports give the same answer whatever the wall clock (docs/design.md, "Breaking stories").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.config.settings import BreakingSettings as BreakingRule
from monitor.dedup.activity import HOUR, Activity, Background, StoryActivity


@dataclass(frozen=True, slots=True, kw_only=True)
class Break:
    """A story breaking at `until`: what its alert says."""

    since: float  # the window's start (Unix seconds of report time)
    until: float  # the report that made it break
    reports: int
    sources: tuple[str, ...]  # distinct, sorted
    own_per_hour: float  # the story's earlier rate
    background_per_hour: float  # the stream's reports per active story-hour
    expected: float  # lambda: reports expected in the window
    p_value: float

    def as_dict(self) -> dict[str, object]:
        """The alert's `breaking` object (docs/alert.schema.json)."""
        return {
            "window_minutes": round((self.until - self.since) / 60),
            "reports": self.reports,
            "sources": list(self.sources),
            "baseline": {
                "story_per_hour": round(self.own_per_hour, 3),
                "stream_per_story_hour": round(self.background_per_hour, 3),
                "expected": round(self.expected, 3),
            },
            "p_value": float(f"{self.p_value:.3g}"),
        }


def poisson_tail(n: int, expected: float) -> float:
    """P(N >= n) for N ~ Poisson(expected)."""
    if n <= 0:
        return 1.0
    term = math.exp(-expected)
    below = term
    for k in range(1, n):
        term *= expected / k
        below += term
    return max(0.0, 1.0 - below)


def check(
    story: StoryActivity, background: Background, at: float, rule: BreakingRule
) -> Break | None:
    """Whether the story breaks at report time `at`, and why."""
    window = rule.window_minutes * 60
    since = at - window
    reports, sources = story.between(since, at)
    if reports < rule.min_reports or len(sources) < rule.min_sources:
        return None
    earlier, _ = story.between(at - rule.lookback_hours * HOUR, since)
    first = story.first
    span = since - first if first is not None and earlier else window
    span = min(max(span, window), rule.lookback_hours * HOUR - window)
    own = earlier / (span / HOUR) if earlier else 0.0
    bg = background.per_story_hour
    expected = max(own * window / HOUR, bg * window / HOUR, rule.min_expected)
    p = poisson_tail(reports, expected)
    if p > rule.p_value:
        return None
    return Break(
        since=since,
        until=at,
        reports=reports,
        sources=tuple(sorted(sources)),
        own_per_hour=own,
        background_per_hour=bg,
        expected=expected,
        p_value=p,
    )


def breaking(activity: Activity, story_id: str, at: float, rule: BreakingRule) -> Break | None:
    """`check` on what Redis holds (two reads: the story's activity, the stream's)."""
    story = activity.story(story_id)
    reports, sources = story.between(at - rule.window_minutes * 60, at)
    if reports < rule.min_reports or len(sources) < rule.min_sources:
        return None  # the usual case: no need to read the background
    window = rule.window_minutes * 60
    background = activity.background(at - rule.lookback_hours * HOUR, at - window)
    return check(story, background, at, rule)
