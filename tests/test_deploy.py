"""deploy/: every file is checked here, as far as this machine allows (no container engine):
the Dockerfile lints and its entrypoint runs as the daemon outside a container, the compose
file and manifests are consistent with the code, the systemd unit verifies."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from monitor.config import load
from monitor.rules import load_rules

from .conftest import ROOT

DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def dockerfile() -> tuple[list[str], dict[str, str], list[str]]:
    """(ENTRYPOINT + CMD, ENV, HEALTHCHECK CMD) of the final stage."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", final, re.M).group(1))
    env = dict(re.findall(r"(MONITOR_\w+|PYTHONUNBUFFERED)=(\S+)", final))
    health = json.loads(re.search(r"HEALTHCHECK .*?CMD (\[.*\])", final).group(1))
    return entry + cmd, env, health


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint", path=f"{BIN}:{os.environ.get('PATH', '')}")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install -e '.[test]')")
    run = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerfile_copies_what_exists_and_runs_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), source
    assert re.search(r"^USER 10001", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) == 2 and "AS build" in text  # two stages


@pytest.mark.slow
def test_the_image_entrypoint_runs_the_daemon_outside_a_container(
    tmp_path: Path, redis_url: str
) -> None:
    """ENTRYPOINT + CMD with the image's ENV, paths mapped onto the checkout."""
    command, env_image, health = dockerfile()
    assert command[:3] == ["monitor", "--config", "/etc/monitor/monitor.toml"]
    config = tmp_path / "monitor.toml"
    config.write_text((DEPLOY / "compose" / "monitor.toml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(env_image)
    env.update(  # what the container has at these paths
        MONITOR_RULES_DIR=str(ROOT / "rules"),
        MONITOR_STATE_DIR=str(tmp_path / "state"),
        MONITOR_DAEMON_LISTEN="127.0.0.1:0",
        MONITOR_REDIS_URL=redis_url,
    )
    argv = [sys.executable, "-m", "monitor", "--config", str(config), *command[3:]]
    log = tmp_path / "daemon.log"
    with log.open("w") as stderr:
        daemon = subprocess.Popen(argv, env=env, stderr=stderr, stdout=subprocess.DEVNULL)
    try:
        address = None
        deadline = time.monotonic() + 30
        while address is None and time.monotonic() < deadline:
            for line in log.read_text().splitlines():
                if '"http_listening"' in line:
                    address = json.loads(line)["address"]
            time.sleep(0.1)
        assert address, log.read_text()
        assert httpx.get(f"http://{address}/healthz").status_code == 200
        probe = [sys.executable if health[0] == "python" else health[0], *health[1:]]
        probe[-1] = probe[-1].replace("127.0.0.1:9108", address)
        assert subprocess.run(probe, timeout=10).returncode == 0  # the HEALTHCHECK itself
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "monitor", "consumer", "feeds"} <= services.keys()
    assert (
        DEPLOY
        / services["monitor"]["build"]["context"]
        / services["monitor"]["build"]["dockerfile"]
    ).is_file()
    assert "--appendonly" in services["redis"]["command"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    env = services["monitor"]["environment"]
    settings = load(DEPLOY / "compose" / "monitor.toml", env=env)
    assert settings.redis_url.startswith("redis://redis:")
    assert settings.feeds[0].url.startswith("http://feeds:8000/")


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not available")
    unit = (DEPLOY / "systemd" / "monitor.service").read_text()
    assert "ExecStart=/opt/monitor/bin/monitor --config /etc/monitor/monitor.toml run" in unit
    copy = tmp_path / "monitor.service"  # verify needs the binary to exist: point at ours
    copy.write_text(unit.replace("/opt/monitor/bin/monitor", str(BIN / "monitor")))
    run = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
    forward = (DEPLOY / "systemd" / "monitor-forward.service").read_text()
    assert "monitor --config /etc/monitor/monitor.toml forward --follow" in forward
    copy = tmp_path / "monitor-forward.service"
    copy.write_text(forward.replace("/opt/monitor/bin/monitor", str(BIN / "monitor")))
    run = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
    for option in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=monitor",
        "EnvironmentFile=",
    ):
        assert option in unit
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "systemd" / "monitor.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert load(DEPLOY / "monitor.toml", env=env).redis_url.startswith("redis://")


def manifests() -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    tool = BIN / "kubernetes-validate"
    if not tool.exists():
        pytest.skip("kubernetes-validate not installed (pip install -e '.[test]')")
    files = [
        str(p) for p in sorted((DEPLOY / "k8s").glob("*.yaml")) if p.name != "kustomization.yaml"
    ]
    run = subprocess.run([str(tool), "--strict", *files], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_kubernetes_manifests_fit_together_and_fit_the_code(tmp_path: Path) -> None:
    docs = manifests()
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    deployment = docs[("Deployment", "news-monitor")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] >= 2  # scaling out is the point
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    assert container["resources"]["limits"]["memory"]
    secret = docs[("Secret", "news-monitor")]
    for var in container["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == "news-monitor" and ref["key"] in secret["stringData"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        assert mount["name"] in volumes
    config = docs[("ConfigMap", volumes["config"]["configMap"]["name"])]["data"]["monitor.toml"]
    (tmp_path / "monitor.toml").write_text(config)
    env = {"MONITOR_REDIS_URL": secret["stringData"]["redis-url"]}
    settings = load(tmp_path / "monitor.toml", env=env)
    assert settings.daemon.listen.endswith(f":{ports['metrics']}")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    rules = docs[("ConfigMap", volumes["rules"]["configMap"]["name"])]["data"]
    for name, body in rules.items():
        (rules_dir / name).write_text(body)
    assert load_rules(rules_dir).rules
    service = docs[("Service", "news-monitor-metrics")]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_sysusers_file_is_valid() -> None:
    if shutil.which("systemd-sysusers") is None:
        pytest.skip("systemd-sysusers not available")
    path = DEPLOY / "systemd" / "monitor.sysusers"
    run = subprocess.run(
        ["systemd-sysusers", "--dry-run", str(path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "user 'monitor'" in run.stdout + run.stderr
