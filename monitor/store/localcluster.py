"""A Redis Cluster on loopback from the shipped `redis-server` (`monitor redis-cluster`, the
tests and the benchmarks): N masters with R replicas each, one directory per node.

Each node listens on its port and, for the cluster bus, on port + 10000. The cluster is
formed with the shipped `redis-cli --cluster create`, then waited for until every node
agrees that all 16,384 slots are served and every replica has its master's data.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from monitor.errors import RedisUnavailable
from monitor.store.embedded import find_redis_cli, find_redis_server

BUS_OFFSET = 10_000  # Redis Cluster's bus port is the node's port + 10000
SLOTS = 16_384


def free_ports(count: int, *, low: int = 20_000, high: int = 45_000) -> list[int]:
    """`count` consecutive loopback ports that are free, their bus ports (+10000) too."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - count)
        wanted = [p for n in range(count) for p in (base + n, base + n + BUS_OFFSET)]
        if all(_free(p) for p in wanted):
            return list(range(base, base + count))
    raise RedisUnavailable(f"no {count} free consecutive ports with free bus ports on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalCluster:
    """`masters` masters (3 or more; or 1, alone) with `replicas` replicas each, on ports
    from `port` (0: free ones),
    data under `directory/<port>/`. `persist`: AOF on (a cluster to keep), else no files.
    `node_timeout_ms`: how long a master may be unreachable before a replica takes over."""

    directory: Path
    masters: int = 3
    replicas: int = 0
    port: int = 0
    persist: bool = False
    node_timeout_ms: int = 5000
    ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """A URL of the first node (any node's URL works)."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, *, daemonize: bool = False, timeout: float = 30.0) -> LocalCluster:
        """Start the nodes and form the cluster. `daemonize`: the nodes outlive this process
        (stop them with `stop`, which finds them by their pid files). A cluster that does
        not come up is stopped again."""
        try:
            return self._start(daemonize, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, daemonize: bool, timeout: float) -> LocalCluster:
        count = self.masters * (1 + self.replicas)
        if self.masters < 3 and (self.masters, self.replicas) != (1, 0):
            raise RedisUnavailable("a Redis Cluster needs at least 3 masters (or 1, alone)")
        self.ports = list(range(self.port, self.port + count)) if self.port else free_ports(count)
        formed = all((self.directory / str(p) / "nodes.conf").exists() for p in self.ports)
        if not formed:
            taken = [p for p in self.ports if not (_free(p) and _free(p + BUS_OFFSET))]
            if taken:
                raise RedisUnavailable(
                    f"port {taken[0]} or its bus port {taken[0] + BUS_OFFSET} is in use"
                )
        for port in self.ports:
            self._launch(port, daemonize=daemonize)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            _wait(lambda p=port: _client(p).ping(), deadline, f"node {port} did not start")
        if formed:  # a cluster stopped earlier: its nodes know each other (nodes.conf)
            _wait(self.ready, deadline, "the cluster did not become ready")
            return self
        if self.masters == 1:  # a cluster of one node (to measure one master): all its slots
            _client(self.ports[0]).execute_command("CLUSTER ADDSLOTS", *range(SLOTS))
            _wait(self.ready, deadline, "the cluster did not become ready")
            return self
        created = subprocess.run(
            [
                str(find_redis_cli()),
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if created.returncode != 0:
            raise RedisUnavailable(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
        _wait(self.ready, deadline, "the cluster did not become ready")
        return self

    def _launch(self, port: int, *, daemonize: bool) -> None:
        node = self.directory / str(port)
        node.mkdir(parents=True, exist_ok=True)
        args = [
            str(find_redis_server()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            "--dir",
            str(node),
            "--appendonly",
            "yes" if self.persist else "no",
            "--save",
            "",
            "--logfile",
            "redis.log",
            "--pidfile",
            "redis.pid",
        ]
        if daemonize:
            subprocess.run([*args, "--daemonize", "yes"], check=True, cwd=node)
        else:
            self.processes[port] = subprocess.Popen(
                args, cwd=node, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

    def ready(self) -> bool:
        """Every running node sees all slots served and the other running nodes healthy, as
        many replicas as were asked for, and every replica in sync with its master."""
        alive = set(self.running())
        for port in alive:
            client = _client(port)
            info = client.execute_command("CLUSTER INFO")  # parsed by redis-py
            if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
                return False
            nodes = {n.port: n for n in _nodes(client)}
            if any(p not in nodes or nodes[p].failing for p in alive):
                return False
            replicas = sum(1 for p in alive if not nodes[p].master)
            if replicas < min(self.masters * self.replicas, len(alive) - self.masters):
                return False
            replication = client.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    def running(self) -> list[int]:
        """The ports of the nodes whose process runs (started by this object)."""
        return [
            p for p in self.ports if p not in self.processes or self.processes[p].poll() is None
        ]

    def primaries(self) -> list[int]:
        """The ports of the masters that serve slots now, as the running nodes see it."""
        for port in self.running():
            with contextlib.suppress(redis.RedisError, OSError):
                return sorted(n.port for n in _nodes(_client(port)) if n.master and n.slots)
        return []

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash, not a shutdown)."""
        process = self.processes.get(port)
        if process is not None:
            process.kill()
            process.wait()
        else:
            _signal(self.directory / str(port) / "redis.pid", signal.SIGKILL)

    def flush(self) -> None:
        """Empty every master (the replicas follow)."""
        for port in self.primaries():
            _client(port).flushall()

    def stop(self) -> None:
        """Stop every node this object or an earlier `start(daemonize=True)` started."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        pids = [_signal(f, signal.SIGTERM) for f in sorted(self.directory.glob("*/redis.pid"))]
        deadline = time.monotonic() + 30
        for pid in pids:  # a node writes its AOF and removes its pid file as it exits
            while pid and _exists(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


def _signal(pidfile: Path, sig: signal.Signals) -> int:
    """Signal the process of a pid file, if it is a redis-server (a stale file's pid may
    belong to another process now); its pid (0: none)."""
    try:
        pid = int(pidfile.read_text().strip())
        proc = Path(f"/proc/{pid}/cmdline")
        if Path("/proc/self").exists() and b"redis-server" not in proc.read_bytes():
            return 0
        os.kill(pid, sig)
    except (OSError, ValueError):
        return 0
    return pid


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class _Node:
    port: int
    master: bool
    failing: bool
    slots: bool


def _nodes(client: redis.Redis) -> list[_Node]:
    """CLUSTER NODES, as redis-py parses it: address -> flags, link, slots."""
    found = []
    for address, node in client.execute_command("CLUSTER NODES").items():
        flags = set(node["flags"].split(","))
        found.append(
            _Node(
                port=int(address.rsplit(":", 1)[1].split("@")[0]),
                master="master" in flags,
                failing=bool(flags & {"fail", "fail?", "noaddr"}) or not node["connected"],
                slots=bool(node["slots"]),
            )
        )
    return found


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, decode_responses=True, socket_timeout=5)


def _wait(check, deadline: float, message: str) -> None:
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        if time.monotonic() > deadline:
            raise RedisUnavailable(message)
        time.sleep(0.05)
