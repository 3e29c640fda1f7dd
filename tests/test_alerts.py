"""The alert rules in deploy/: valid for Prometheus, and each one proven by promtool unit tests.

promtool comes with Debian's ``prometheus`` package (``.ci/run`` installs it
when missing); without it these tests fail rather than skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from netutil import REPO

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "alerts.yml"
RULE_TESTS = DEPLOY / "alerts-test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool is not None, "promtool is missing: apt-get install prometheus (.ci/run does)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)


def alert_names() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule["alert"] for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def test_alert_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in done.stdout


def test_alert_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    cases: dict[str, dict[str, int]] = {}
    doc: dict[str, Any] = yaml.safe_load(RULE_TESTS.read_text())
    assert doc["rule_files"] == [RULES.name]
    for test in doc["tests"]:
        for case in test["alert_rule_test"]:
            counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})
            counts["firing" if case["exp_alerts"] else "silent"] += 1
    names = alert_names()
    assert len(names) == len(set(names))
    for name in names:
        assert cases.get(name, {}).get("firing", 0) >= 1, f"{name} has no case where it fires"
        assert cases[name]["silent"] >= 1, f"{name} has no case where it stays silent"
    assert set(cases) <= set(names), "tests for alerts that do not exist"


def test_compose_prometheus_config_loads_the_rules(tmp_path: Path) -> None:
    # The compose file mounts the rules at /etc/prometheus/alerts.yml; check the same config against the repo's copy.
    config = (DEPLOY / "prometheus.yml").read_text()
    assert "/etc/prometheus/alerts.yml" in config
    shutil.copy(RULES, tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml")))
    done = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
