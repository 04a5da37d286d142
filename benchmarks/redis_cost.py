"""Redis time per item through the path users take: each dev set written as an RSS feed and
run through `monitor replay --redis URL FEED` (a process of its own) against a separate
redis-server, whose own accounting is read before and after: `used_cpu_user + used_cpu_sys`
of the server process (`redis_ms_per_item`), and `INFO commandstats` (microseconds per item
of each command, the commands scripts call counted under their own names beside EVALSHA,
whose figure includes them). Redis is the one part every daemon shares, so this is the
ceiling of a deployment: 1000 / redis_ms_per_item items/s on one master.

Then (`--scripts`) the same run again with the slow log recording every command: Redis's
microseconds per item in each script (by its SHA, named from the scripts' sources).

    python benchmarks/redis_cost.py [--corpus all] [--limit 1500] [--scripts]
    python benchmarks/redis_cost.py --code OTHER_CHECKOUT   # another version, same data

It also prints what the run decided (outcomes, stories, alerts and a digest of every item's
placement and alerts): two versions that decide alike print the same digest.

Reports: gva-dev and giveme5w1h (dated, ../shared/data, read at run time, never copied here),
in time order; NeuS val (undated leads). The repository's rules/ are the rules.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis
from _support import ROOT, RedisAccount, redis_server, report
from corpora import CORPORA, load
from eval_replay import feed


def script_names(code: Path) -> dict[str, str]:
    """SHA1 -> script file name, for the scripts as the store loads them (includes
    inlined): read from the server's slow log by their first argument."""
    from monitor.store.scripts import script  # the text loaded, includes resolved

    names = {}
    for path in sorted((code / "monitor").rglob("*.lua")):
        package = ".".join(path.relative_to(code).parent.parts)
        text = script(path.stem, package)
        names[hashlib.sha1(text.encode()).hexdigest()] = path.name
    return names


def replay(work: Path, url: str, code: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = str(code)
    return subprocess.run(
        [sys.executable, "-m", "monitor", "replay", "--json", "--redis", url, "--rules",
         str(ROOT / "rules"), "--log-level", "warning", "feed.xml"],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def measure(corpus: str, limit: int, code: Path, scripts: bool) -> None:
    reports = load(corpus, limit=None)[:limit]
    with (
        tempfile.TemporaryDirectory(prefix="monitor-cost-") as tmp,
        redis_server(realtime=True) as url,
    ):
        work = Path(tmp)
        (work / "feed.xml").write_text(feed(reports), encoding="utf-8")
        client = redis.Redis.from_url(url)
        if scripts:
            client.config_set("slowlog-max-len", 10_000_000)
            client.config_set("slowlog-log-slower-than", 0)
        account = RedisAccount(client)
        started = time.perf_counter()
        run = replay(work, url, code)
        wall = time.perf_counter() - started
        if run.returncode != 0:
            raise SystemExit(f"replay failed: {run.stderr[-2000:]}")
        figures: dict[str, object] = {
            "corpus": corpus,
            "items": len(reports),
            **account.figures(len(reports)),
            "replay_s": round(wall, 1),
            **placements(run.stdout),
        }
        if scripts:
            figures["script_us_per_item"] = per_script(client, code, len(reports))
        report("redis_cost", **figures)


def placements(output: str) -> dict[str, object]:
    """What the run decided, to compare versions: outcomes, stories, alerts, and a digest of
    every item's (outcome, story, similarity, alerts) — equal digests, equal decisions."""
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    items = [r for r in rows if "guid" in r]
    decided = sorted(
        (r["guid"], r["dedup"], r["story_id"], r["similarity"], sorted(r["alerts"])) for r in items
    )
    return {
        "outcomes": dict(Counter(r["dedup"] for r in items)),
        "stories": len({r["story_id"] for r in items}),
        "alerts": sum(len(r["alerts"]) for r in items),
        "decisions_digest": hashlib.sha1(json.dumps(decided).encode()).hexdigest()[:12],
    }


def per_script(client: redis.Redis, code: Path, items: int) -> dict[str, float]:
    names = script_names(code)
    spent: Counter[str] = Counter()
    for entry in client.slowlog_get(10_000_000):
        command = entry["command"].split(b" ", 2) if isinstance(entry["command"], bytes) else (
            str(entry["command"]).split(" ", 2))  # fmt: skip
        verb = command[0].decode() if isinstance(command[0], bytes) else command[0]
        if verb.lower() == "evalsha" and len(command) > 1:
            sha = command[1].decode() if isinstance(command[1], bytes) else command[1]
            spent[names.get(sha, sha[:8])] += entry["duration"]
    return {name: round(us / items, 1) for name, us in spent.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", choices=[*CORPORA, "all"], default="all")
    parser.add_argument("--limit", type=int, default=1500, help="reports per set")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run")
    parser.add_argument("--scripts", action="store_true", help="Redis time per script")
    args = parser.parse_args()
    for corpus in CORPORA if args.corpus == "all" else (args.corpus,):
        measure(corpus, args.limit, args.code.resolve(), args.scripts)


if __name__ == "__main__":
    main()
