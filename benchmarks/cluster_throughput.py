"""Redis Cluster: items placed per second, and what each master spends on them, on one
server, on a cluster of one master and on a cluster of three (all the shipped
redis-server, on loopback TCP; the clusters run the monitor's cluster code).

Each item goes the way a daemon takes it: appended to the items stream, read by the
consumer group, processed by the real pipeline (analysis, dedup index, rules, retained
stream, desk, alert claims and publishing; the text comes with the item, so no page is
fetched) and acked. --clients processes share the items, in order.

Per target: items/s (with --clients, and with one), and per master the Redis CPU (INFO
cpu, user + sys) and commands per item, memory and keys after. The limit of one master is
where its CPU would reach one core: 1000 / (its CPU ms per item) items/s. On this 2-core
machine the clients and the Redis servers share the cores, so items/s is what the box
gives; CPU per item is what a master needs wherever it runs.

Then "same results": the same reports, one client, on one server and on three masters:
how many items got the same story and outcome, and the same alert ids.

Reports: gva-dev (../shared/data, read at run time, never copied here), in time order,
each dated a few minutes apart ending now; a rule matching most of them ("police OR
shooting") makes alerts. Without the data, generated reports.

    python benchmarks/cluster_throughput.py [--items 1500] [--clients 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _support import report
from corpora import load, path

from monitor import log
from monitor.config import Settings
from monitor.ingest.fetch import LocalFetcher
from monitor.ingest.items import ItemsQueue
from monitor.model import Item
from monitor.pipeline import runtime
from monitor.rules import load_rules
from monitor.rules.model import RuleSet
from monitor.store.connection import connect, is_cluster, primaries
from monitor.store.keys import Keys
from monitor.store.localcluster import LocalCluster

RULES = Path(__file__).resolve().parent.parent / "rules"


def items(count: int) -> tuple[list[Item], str]:
    if path("gva-dev").exists():
        found = [(r.key, r.title, r.text, r.source) for r in load("gva-dev")][:count]
        where = "gva-dev"
    else:
        rng = random.Random(7)
        words = [f"{a}{b}" for a in "bdfgklmnprstvz" for b in ("ano", "elo", "iru", "osa")]
        found = [
            (
                f"g{n}",
                " ".join(rng.sample(words, 6)),
                " ".join(rng.choices(words, k=300)) + " police",
                "gen.example",
            )
            for n in range(count)
        ]
        where = "generated (gva-dev not found)"
    end = datetime.now(UTC) - timedelta(minutes=1)
    made = [
        Item(
            guid=key,
            url=f"https://{source}/{key}",
            title=title,
            source=source,
            feed="bench",
            content=text,
            published=end - timedelta(minutes=2 * (len(found) - n)),
        )
        for n, (key, title, text, source) in enumerate(found)
    ]
    return made, where


def rules() -> RuleSet:
    """The repository's rules and one that most reports match."""
    folder = Path(tempfile.mkdtemp(prefix="monitor-bench-rules-"))
    for rule in RULES.iterdir():
        (folder / rule.name).write_bytes(rule.read_bytes())
    (folder / "police.yaml").write_text("id: police\nname: Police\nquery: police OR shooting\n")
    return load_rules(folder)


def work(url: str, batch: list[Item], results: Any) -> None:
    """One client: its items appended, read, processed and acked, as a daemon does."""
    try:
        results.put(_work(url, batch))
    except Exception as exc:
        results.put(f"client failed: {exc!r}")
        raise


def _work(url: str, batch: list[Item]) -> tuple[float, list]:
    log.configure("error")
    client = connect(url)
    settings = Settings()
    pipeline = runtime.pipeline(client, settings, rules(), LocalFetcher())
    queue = ItemsQueue(client, Keys(), maxlen=1_000_000)
    name = multiprocessing.current_process().name
    queue.ensure_group()
    done = []
    started = time.perf_counter()
    for start in range(0, len(batch), 20):
        queue.append(batch[start : start + 20])
        for entry in queue.read(name, count=20):
            result = pipeline.process(entry.value)
            queue.ack(entry.entry_id)
            done.append(
                (
                    entry.value.guid,
                    result.placement.story_id,
                    str(result.placement.outcome),
                    list(result.alerts),
                )
            )
    return time.perf_counter() - started, done


def masters(url: str) -> dict[str, dict[str, float]]:
    out = {}
    for node in primaries(connect(url)):
        cpu, stats, memory = node.info("cpu"), node.info("stats"), node.info("memory")
        out[str(node.get_connection_kwargs().get("port", "single"))] = {
            "cpu": cpu["used_cpu_user"] + cpu["used_cpu_sys"],
            "commands": stats["total_commands_processed"],
            "memory": memory["used_memory"],
            "keys": node.dbsize(),
        }
    return out


def measure(url: str, all_items: list[Item], clients: int) -> dict[str, Any]:
    for node in primaries(connect(url)):
        node.flushall()
    before = masters(url)
    results: Any = multiprocessing.Queue()
    shares = [all_items[n::clients] for n in range(clients)]
    procs = [multiprocessing.Process(target=work, args=(url, share, results)) for share in shares]
    wall = time.perf_counter()
    for proc in procs:
        proc.start()
    done = [results.get(timeout=3600) for _ in procs]  # a client that failed says why
    if failed := [d for d in done if isinstance(d, str)]:
        raise SystemExit(failed[0])
    wall = time.perf_counter() - wall
    for proc in procs:
        proc.join()
    after = masters(url)
    n = len(all_items)
    per = {}
    for port, now in after.items():
        was = before[port]
        per[port] = {
            "cpu_ms_per_item": round((now["cpu"] - was["cpu"]) * 1000 / n, 3),
            "commands_per_item": round((now["commands"] - was["commands"]) / n, 1),
            "memory_mb": round(now["memory"] / 2**20, 1),
            "keys": now["keys"],
        }
    busiest = max(p["cpu_ms_per_item"] for p in per.values())
    client, keys = connect(url), Keys()
    hot = {}
    if is_cluster(client):  # where the keys of one slot each are
        for key in (keys.items, keys.alerts, keys.df(0), keys.retained, keys.desk_stories):
            hot[key] = str(client.get_node_from_key(key).port)
    return {
        "items_per_s": round(n / wall, 1),
        "masters": per,
        "busiest_master_cpu_ms_per_item": busiest,
        "limit_per_master_items_per_s": round(1000 / busiest) if busiest else None,
        "hot_keys_on": hot,
        "placed": [p for _, part in done for p in part],
    }


@contextmanager
def target(kind: str):
    directory = Path(tempfile.mkdtemp(prefix="monitor-bench-cluster-"))
    cluster = LocalCluster(
        directory, masters={"one server": 0, "1 master": 1, "3 masters": 3}[kind]
    )
    if kind == "one server":
        import subprocess

        from monitor.store.embedded import find_redis_server
        from monitor.store.localcluster import free_ports

        port = free_ports(1)[0]
        proc = subprocess.Popen(
            [
                str(find_redis_server()),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            url = f"redis://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    connect(url)
                    break
                except Exception:
                    time.sleep(0.02)
            yield url
        finally:
            proc.terminate()
            proc.wait()
        return
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    reports, where = items(args.items)
    figures: dict[str, Any] = {"reports": where, "items": len(reports), "clients": args.clients}
    placed = {}
    for kind in ("one server", "1 master", "3 masters"):
        with target(kind) as url:
            result = measure(url, reports, args.clients)
            result.pop("placed")
            alone = measure(url, reports, 1)  # one client: what one daemon's Redis work costs it
            result["items_per_s_one_client"] = alone["items_per_s"]
            figures[kind] = result
            placed[kind] = alone["placed"]
    single = {guid: rest for guid, *rest in placed["one server"]}
    spread = {guid: rest for guid, *rest in placed["3 masters"]}
    figures["same results (1 client)"] = {
        "items": len(single),
        "same story and outcome": sum(1 for g in single if single[g][:2] == spread.get(g, [])[:2]),
        "stories": len({s for s, _, _ in single.values()}),
        "alerts": sum(len(a) for _, _, a in single.values()),
        "same alert ids": sorted(a for *_, al in single.values() for a in al)
        == sorted(a for *_, al in spread.values() for a in al),
    }
    report("cluster_throughput", **figures)


if __name__ == "__main__":
    main()
