"""Scale-out: 1, 2 and 4 daemons on one Redis over the same items — items/s, and Redis's own
CPU per item and share of one core. Redis runs commands on one thread, so the daemons
together cannot place more than 1000 / (its CPU ms per item) items/s however many there are:
`redis_limit_items_per_s` is that ceiling, `redis_core_share` how near a run came to it.

Each daemon goes the way `monitor run` takes an item (the items stream, the consumer group,
the whole pipeline: analysis, dedup index, rules, retained items and search index, alerts;
the text comes with the item, so no page is fetched): benchmarks/cluster_throughput.py's
clients, here on one redis-server on loopback TCP, flushed before each run.

Items: the three story sets (../shared/data, read at run time, never copied here) — gva-dev,
giveme5w1h and NeuS train+val — as one stream, dated a few seconds apart ending now.

    python benchmarks/scale_out.py [--items 10000] [--daemons 1,2,4]

On this 2-core machine the daemons and Redis share the cores: items/s stops growing where
the cores are used up, whatever Redis could take; the CPU per item says what Redis needs
wherever it runs.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from _support import report
from cluster_throughput import measure, target
from corpora import CORPORA, load

from monitor.model import Item


def items(count: int) -> list[Item]:
    reports = [r for corpus in CORPORA for r in load(corpus)]
    reports += load("neus", split="train")
    end = datetime.now(UTC) - timedelta(minutes=1)
    out = []
    for n, r in enumerate(reports[:count]):
        out.append(
            Item(
                guid=f"{n}:{r.key}",
                url=f"https://{r.source}/{n}",
                title=r.title,
                source=r.source,
                feed="bench",
                content=r.text,
                published=end - timedelta(seconds=5 * (count - n)),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--daemons", default="1,2,4")
    args = parser.parse_args()
    given = items(args.items)
    with target("one server") as url:
        for daemons in (int(n) for n in args.daemons.split(",")):
            result = measure(url, given, daemons)
            placed = result.pop("placed")
            (server,) = result["masters"].values()
            cpu = server["cpu_ms_per_item"]
            report(
                "scale_out",
                items=len(given),
                daemons=daemons,
                items_per_s=result["items_per_s"],
                redis_ms_per_item=cpu,
                redis_commands_per_item=server["commands_per_item"],
                redis_core_share=round(result["items_per_s"] * cpu / 1000, 2),
                redis_limit_items_per_s=round(1000 / cpu) if cpu else None,
                stories=len({story for _, story, _, _ in placed}),
                alerts=sum(len(alerts) for *_, alerts in placed),
            )


if __name__ == "__main__":
    main()
