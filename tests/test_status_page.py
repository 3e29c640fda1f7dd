"""The live status page at GET /, end to end in headless Chromium (Debian's chromium + chromium-driver).

The page reads the JSON endpoints once and then follows GET /events, so a
new slot showing up proves the event stream, and a killed member turning
``missing`` proves the member-state events and the quorum picture.
Set SCPD_UPDATE_SCREENSHOT=1 to refresh docs/status-page.png from this run.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from netutil import REPO, Network, wait_for
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

SLOT_INTERVAL = 2.0
SCREENSHOT = REPO / "docs" / "status-page.png"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "apt-get install chromium chromium-driver (.ci/run does)"
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1400",
    ):
        options.add_argument(arg)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def shown_slots(browser: webdriver.Chrome) -> list[int]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#slots tbody tr")
    try:
        return [int(r.get_attribute("data-slot") or 0) for r in rows]
    except StaleElementReferenceException:  # the table was redrawn while we read it
        return []


def member_state(browser: webdriver.Chrome, name: str) -> tuple[str, str]:
    """The member's state in the table and the class of its dot in the quorum set picture."""
    try:
        row = browser.find_element(By.CSS_SELECTOR, f'#members tr[data-name="{name}"]')
        key = row.get_attribute("data-node")
        dot = browser.find_element(By.CSS_SELECTOR, f'#qset-svg g[data-node="{key}"] circle')
        return row.find_element(By.CSS_SELECTOR, "td.state").text, dot.get_attribute("class") or ""
    except Exception:  # not drawn yet, or redrawn while we read it
        return "", ""


def test_status_page_follows_slots_and_member_states_live(tmp_path: Path, browser: webdriver.Chrome) -> None:
    with Network(tmp_path, 4, slot_interval=SLOT_INTERVAL) as net:
        n1 = net.nodes[0]
        port = tomllib.loads(n1.config.read_text())["http"]["port"]
        net.wait_slot(2, [n1])
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: browser.find_element(By.ID, "stream-state").text == "live", 30, "the event stream open")
        wait_for(lambda: bool(shown_slots(browser)), 30, "slots on the page")
        assert browser.find_element(By.ID, "node-name").text == "node1"
        for _ in range(3):
            newest = max(shown_slots(browser))
            wait_for(
                lambda newest=newest: max(shown_slots(browser), default=0) > newest,  # type: ignore[misc]
                2 * SLOT_INTERVAL,
                f"a slot after {newest} within two slot intervals",
                interval=0.05,
            )
        assert int(browser.find_element(By.ID, "tip-slot").text) >= max(shown_slots(browser)) - 1
        wait_for(lambda: member_state(browser, "node4")[0] == "agree", 30, "node4 agreeing")
        names = [r.get_attribute("data-name") for r in browser.find_elements(By.CSS_SELECTOR, "#members tbody tr")]
        assert names == ["node1", "node2", "node3", "node4"]
        wait_for(
            lambda: len(browser.find_elements(By.CSS_SELECTOR, "#tier-svg g[data-node]")) == 4,
            30,
            "the four validators in the top tier picture",
        )
        assert len(browser.find_elements(By.CSS_SELECTOR, "#peers tbody tr")) == 3

        net.nodes[3].kill()

        def node4_missing() -> bool:
            state, dot = member_state(browser, "node4")
            return state == "missing" and "missing" in dot.split()

        # The table and the quorum set picture both show it (read together: the page redraws them at once).
        wait_for(node4_missing, 60, "node4 shown missing in the table and the picture", interval=0.25)
        summary = browser.find_element(By.ID, "quorum-summary")
        wait_for(lambda: "missing 1" in summary.text, 30, "the summary re-read after the member event")
        assert "1 more failure(s) block this node" in summary.text
        assert browser.find_element(By.ID, "sync-state").text == "synced"  # 3 of 4 still close ledgers
        shot = tmp_path / "status-page.png"
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
        if os.environ.get("SCPD_UPDATE_SCREENSHOT") == "1":
            shutil.copy(shot, SCREENSHOT)
