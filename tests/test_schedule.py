"""The next-poll computation: a pure function, checked case by case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.config import ScheduleSettings
from monitor.ingest.schedule import PollOutcome, max_age, next_interval, retry_after, with_jitter

S = ScheduleSettings(interval=900, min_interval=60, max_interval=3600, max_backoff=86400)


def test_new_items_shrink_the_interval_and_quiet_feeds_grow_it() -> None:
    assert next_interval(900, PollOutcome(ok=True, new_items=3), S) == 675
    assert next_interval(900, PollOutcome(ok=True, new_items=0), S) == 1125


def test_the_interval_stays_within_bounds() -> None:
    assert next_interval(70, PollOutcome(ok=True, new_items=5), S) == 60
    assert next_interval(3500, PollOutcome(ok=True), S) == 3600


def test_a_configured_interval_is_kept() -> None:
    assert next_interval(900, PollOutcome(ok=True, new_items=9), S, fixed=300) == 300
    assert next_interval(900, PollOutcome(ok=True), S, fixed=300) == 300


@pytest.mark.parametrize(("errors", "expected"), [(1, 1800), (2, 3600), (5, 28800), (12, 86400)])
def test_errors_back_off_exponentially_up_to_the_cap(errors: int, expected: float) -> None:
    assert next_interval(900, PollOutcome(ok=False, errors=errors), S) == expected


def test_retry_after_is_honoured() -> None:
    outcome = PollOutcome(ok=False, errors=1, retry_after=7200)
    assert next_interval(900, outcome, S) == 7200
    assert next_interval(900, PollOutcome(ok=False, errors=1, retry_after=10**9), S) == 86400


def test_cache_hints_are_a_floor_below_the_maximum() -> None:
    assert next_interval(600, PollOutcome(ok=True, new_items=1, max_age=1800), S) == 1800
    assert next_interval(600, PollOutcome(ok=True, ttl=60 * 600), S) == 3600
    assert next_interval(600, PollOutcome(ok=True, max_age=10), S) == 750


def test_jitter_spreads_both_ways() -> None:
    assert with_jitter(1000, 0.1, 0.0) == 900
    assert with_jitter(1000, 0.1, 0.5) == 1000
    assert with_jitter(1000, 0.1, 0.999999) == pytest.approx(1100, abs=0.01)


def test_header_parsing() -> None:
    now = datetime(2024, 6, 19, 12, 0, tzinfo=UTC)
    assert retry_after("120") == 120
    assert retry_after("Wed, 19 Jun 2024 12:10:00 GMT", now) == 600
    assert retry_after("soon") is None and retry_after(None) is None
    assert max_age({"cache-control": "public, max-age=300"}) == 300
    assert max_age({"cache-control": "s-maxage=10, max-age=300"}) == 300
    assert max_age({"cache-control": "no-cache, max-age=300"}) is None
    assert max_age({"expires": "Wed, 19 Jun 2024 13:00:00 GMT"}, now) == 3600
    assert max_age({}) is None


def test_hostile_header_values_and_endless_errors() -> None:
    assert retry_after("²") is None  # a digit to str.isdigit, not to float()
    assert next_interval(900, PollOutcome(ok=False, errors=5000), S) == 86400  # no overflow
