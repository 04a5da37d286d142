"""What story activity costs Redis per item: the record of a report with and without its
activity counts, on a fresh redis-server each, measured by Redis itself (INFO commandstats:
the microseconds spent in the script, and in the commands a cluster sends beside it).

One server: record.lua with the activity arguments (activity.lua's count_activity and
count_stream) against record.lua without them, the same reports otherwise. A cluster:
story.lua with and without them, plus the stream's counts it sends in the entry's pipeline
(HINCRBY, ZADD, ZREMRANGEBYSCORE, EXPIRE). Reports: --items over --stories stories, their
report times spread over three days, from 200 outlets; stories get reports in bursts as in
a real stream (a few per story hour).

    python benchmarks/activity_cost.py [--items 20000] [--stories 2000]
"""

from __future__ import annotations

import argparse
import random
from typing import Any

import redis
from _support import redis_server, report

from monitor.dedup.activity import Activity, activity_args
from monitor.dedup.calls import RecordCall, StoryCall
from monitor.store.keys import Keys
from monitor.store.scripts import Lua

WINDOW = 168 * 3600
T0 = 1_780_000_000.0


def reports(items: int, stories: int, seed: int = 1) -> list[tuple[str, str, float, str]]:
    """(item id, story id, report time, source), in report-time order."""
    rng = random.Random(seed)
    out = []
    for n in range(items):
        story = rng.randrange(stories)
        # a story's reports cluster around its own moment of the three days
        when = T0 + (story * 72 * 3600 / stories) + rng.expovariate(1 / 5400)
        out.append((f"i{n}", f"s{story}", when, f"outlet{rng.randrange(200)}.example"))
    return sorted(out, key=lambda r: r[2])


def spent(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """Command -> (calls, microseconds) from INFO commandstats."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for name, v in stats.items()}


def run(items: list[tuple[str, str, float, str]], *, counted: bool, cluster: bool) -> float:
    """Redis microseconds per item spent recording the items."""
    keys = Keys()
    with redis_server() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        activity = Activity(client, keys, window=WINDOW)
        record, story = Lua(client, RecordCall), Lua(client, StoryCall)
        common: dict[str, Any] = {"centroid_size": 80, "names_kept": 100, "figures_kept": 60}
        client.config_resetstat()
        for item, story_id, when, source in items:
            extra = activity_args(source, WINDOW) if counted else {}
            if cluster:
                joined = story(
                    StoryCall(
                        story=keys.story(story_id),
                        summary=keys.story_summary(story_id),
                        activity=keys.story_activity(story_id),
                        id=item,
                        when=when,
                        window=WINDOW,
                        **common,
                        **extra,
                    )
                )
                if joined.counted:
                    pipe = client.pipeline(transaction=False)
                    activity.count_stream(pipe, story_id, when, first_of_hour=joined.first_of_hour)
                    pipe.execute()
            else:
                if counted:
                    extra |= {"story_id": story_id, "day_prefix": keys.activity_day("")}
                record(
                    RecordCall(
                        entry=keys.entry(item),
                        story=keys.story(story_id),
                        summary=keys.story_summary(story_id),
                        activity=keys.story_activity(story_id),
                        active=keys.active_stories,
                        id=item,
                        when=when,
                        window=WINDOW,
                        fields=["story", story_id, "outcome", "same_story"],
                        **common,
                        **extra,
                    )
                )
        usec = sum(u for name, (_, u) in spent(client).items() if name not in ("info", "config"))
        memory = client.info("memory")["used_memory"]
    return usec / len(items), memory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--stories", type=int, default=2_000)
    args = parser.parse_args()
    items = reports(args.items, args.stories)
    figures: dict[str, Any] = {"items": args.items, "stories": args.stories}
    for name, cluster in (("one_server", False), ("cluster_path", True)):
        without, memory_without = run(items, counted=False, cluster=cluster)
        with_, memory_with = run(items, counted=True, cluster=cluster)
        figures[name] = {
            "redis_us_per_item_without": round(without, 1),
            "redis_us_per_item_with": round(with_, 1),
            "activity_ms_per_item": round((with_ - without) / 1000, 4),
            "activity_bytes_per_item": round((memory_with - memory_without) / args.items),
        }
    report("activity_cost", **figures)


if __name__ == "__main__":
    main()
