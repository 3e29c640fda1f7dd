"""The Grafana dashboard in deploy/: every panel's query returns data from a real Prometheus scraping a real localnet.

Prometheus comes with Debian's ``prometheus`` package (``.ci/run`` installs it
when missing). Grafana itself is not needed: its only part in a query is to
substitute the ``$instance`` variable and ``$__rate_interval``, done here.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from netutil import REPO, Network, free_port_range, wait_for

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "scpd.json"
# Scrapes time out after the interval: 2 s leaves a loaded machine room to answer.
SCRAPE_SECONDS = 2


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        out += [(panel["title"], target["expr"]) for target in panel["targets"]]
    return out


def grafana_substitute(expr: str) -> str:
    """What Grafana sends for "All validators" (its rate interval is several scrape intervals)."""
    return expr.replace("$instance", ".*").replace("$__rate_interval", f"{10 * SCRAPE_SECONDS}s")


def api(port: int, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]


def has_finite_value(port: int, expr: str) -> bool:
    result = api(port, "query", query=expr)["result"]
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def test_every_dashboard_panel_shows_data_from_a_real_localnet(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus is not None, "prometheus is missing: apt-get install prometheus (.ci/run does)"
    queries = panel_queries()
    assert len(queries) >= 15
    with Network(tmp_path, 4) as net:
        targets = [f"127.0.0.1:{tomllib.loads(n.config.read_text())['http']['port']}" for n in net.nodes]
        shutil.copy(REPO / "deploy" / "alerts.yml", tmp_path / "alerts.yml")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
                    "rule_files": [str(tmp_path / "alerts.yml")],
                    "scrape_configs": [{"job_name": "scpd", "static_configs": [{"targets": targets}]}],
                }
            )
        )
        port = free_port_range(1)
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: _answers(port), 60, "Prometheus to answer")
            seen: list[list[Any]] = []

            def all_up() -> bool:
                seen.append(
                    [(t["scrapeUrl"], t["health"], t["lastError"]) for t in api(port, "targets")["activeTargets"]]
                )
                return sum(health == "up" for _, health, _ in seen[-1]) == 4

            try:
                wait_for(all_up, 60, "4/4 targets up")
            except AssertionError:
                raise AssertionError(f"targets not all up: {seen[-1]}") from None
            rules = [r for g in api(port, "rules")["groups"] for r in g["rules"]]
            assert len(rules) == (REPO / "deploy" / "alerts.yml").read_text().count("- alert:")
            assert all(r["health"] != "err" for r in rules)
            # The dashboard's validator variable lists the four nodes.
            assert sorted(api(port, "label/instance/values", **{"match[]": "scpd_ledger_latest_slot"})) == sorted(
                targets
            )
            for title, expr in queries:
                query = grafana_substitute(expr)
                wait_for(lambda q=query: has_finite_value(port, q), 60, f"data for panel {title!r}: {query}")
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def test_compose_provisions_prometheus_storage_and_grafana_with_the_dashboard() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services, volumes = compose["services"], compose["volumes"]
    for name in ("node1", "node2", "node3", "node4"):
        assert services[name]["build"] == "." and services[name]["image"] == "scpd:latest", name
    prometheus = services["prometheus"]
    assert "prometheus-data:/prometheus" in prometheus["volumes"] and "prometheus-data" in volumes
    assert "--storage.tsdb.path=/prometheus" in prometheus["command"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}  # source -> target
    dashboards_dir = mounts["./deploy/grafana/dashboards"]
    provisioning = REPO / "deploy" / "grafana" / "provisioning"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((provisioning / "dashboards" / "scpd.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == dashboards_dir
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["uid"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert "grafana-data" in volumes
