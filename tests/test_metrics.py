"""Prometheus metrics: a node's own registry, scraped from a real running node."""

from __future__ import annotations

import tomllib
import urllib.request
from pathlib import Path

from netutil import Network, free_port_range, wait_for
from prometheus_client.parser import text_string_to_metric_families

from scpd.base.keys import Keypair, network_id
from scpd.base.types import SCPQuorumSet
from scpd.node.herder import Herder
from scpd.node.ledger import LedgerStore
from scpd.node.metrics import ENVELOPE_REJECT_REASONS, Metrics
from scpd.nodecore.settings import CoreSettings
from scpd.scp.slot import SlotEffort

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _peers(samples: Samples) -> float:
    return value(samples, "scpd_peers_connected", direction="inbound") + value(
        samples, "scpd_peers_connected", direction="outbound"
    )


_PER_SLOT_HISTOGRAMS = ("scpd_slot_nomination_to_externalize_seconds_count", "scpd_slot_ballot_counter_count")


def test_values_move_as_slots_externalize_on_a_running_node(tmp_path: Path) -> None:
    with Network(tmp_path, 4) as net:
        node = net.nodes[0]
        url = f"http://127.0.0.1:{tomllib.loads(node.config.read_text())['http']['port']}/metrics"
        net.wait_slot(2, [node])
        first = scrape(url)
        net.wait_slot(int(value(first, "scpd_ledger_latest_slot")) + 3, [node])
        scrapes = [scrape(url)]

        def settled() -> bool:
            # Peers and members move through slots on their own, and a connection may be briefly down
            # while it is replaced (seen on an overloaded machine): wait for a scrape where all agree
            # over the full mesh. The per-slot histograms observe only slots this node nominated and
            # balloted itself; on a loaded machine the other three may decide several slots in a row
            # before our cadence reaches them (seen once in 80 runs), so wait for them to move too.
            scrapes.append(scrape(url))
            last = scrapes[-1]
            moved = all(value(last, h) > value(first, h) for h in _PER_SLOT_HISTOGRAMS)
            return moved and value(last, "scpd_quorum_members", state="agree") == 4 and _peers(last) == 3

        wait_for(settled, 60, "a scrape with every quorum member agreeing over three connections")
        second = scrapes[-1]

        closed_before = value(first, "scpd_ledger_latest_slot")
        assert value(second, "scpd_ledger_latest_slot") >= closed_before + 3
        for counter in (
            "scpd_slots_externalized_total",
            "scpd_slot_nomination_to_externalize_seconds_count",
            "scpd_slot_nomination_rounds_count",
            "scpd_slot_ballot_counter_count",
            "scpd_envelopes_received_total",
            "scpd_envelopes_emitted_total",
            "scpd_envelopes_relayed_total",
            "scpd_signature_verifications_total",
            "scpd_overlay_messages_received_total",
            "scpd_overlay_messages_sent_total",
            "scpd_overlay_received_bytes_total",
            "scpd_overlay_sent_bytes_total",
        ):
            assert value(second, counter) > value(first, counter), counter
        assert value(second, "scpd_ledger_write_seconds_count", kind="ledger") >= 3 + value(
            first, "scpd_ledger_write_seconds_count", kind="ledger"
        )
        # Each per-slot histogram observes a written slot at most once. The nomination time exists only
        # for slots this node nominated: when the other three decide a slot before our cadence reaches
        # it, it is written without one (seen on a loaded machine), so the count may trail the slots.
        slots = value(second, "scpd_slots_externalized_total") - value(first, "scpd_slots_externalized_total")
        for histogram in _PER_SLOT_HISTOGRAMS:
            observed = value(second, histogram) - value(first, histogram)
            assert 0 < observed <= slots, histogram
        # Honest peers: no bad signatures, no misbehaviour.
        assert value(second, "scpd_signature_verification_failures_total") == 0
        assert value(second, "scpd_envelopes_rejected_total", reason="bad_signature") == 0
        assert value(second, "scpd_overlay_bans_total") == 0
        # A full mesh of four: three peers, all of the quorum set heard from.
        assert _peers(second) == 3
        assert value(second, "scpd_quorum_members", state="agree") == 4
        assert value(second, "scpd_quorum_members", state="missing") == 0
        assert value(second, "process_resident_memory_bytes") > 0
        assert value(second, "process_cpu_seconds_total") > 0

        # The quorum-health gauge follows a node that goes away.
        net.nodes[3].kill()
        wait_for(
            lambda: value(scrape(url), "scpd_quorum_members", state="missing") == 1,
            60,
            "node4 reported missing",
            interval=0.5,
        )


def test_metrics_on_a_listener_of_their_own(tmp_path: Path) -> None:
    net = Network(tmp_path, 4)
    node = net.nodes[0]
    port = free_port_range(1)
    with node.config.open("a") as f:  # before the node starts
        f.write(f'\n[metrics]\naddress = "127.0.0.1"\nport = {port}\n')
    admin = tomllib.loads(node.config.read_text())["http"]["port"]
    with net:
        net.wait_slot(2, [node])
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert value(samples, "scpd_ledger_latest_slot") >= 2
        # The admin server no longer serves them.
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        else:
            raise AssertionError("/metrics still served on the admin server")


def test_each_node_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.slots_externalized.inc()
    a.envelopes_rejected.labels("bad_signature").inc(2)
    assert a.registry.get_sample_value("scpd_slots_externalized_total") == 1
    assert b.registry.get_sample_value("scpd_slots_externalized_total") == 0
    for reason in ENVELOPE_REJECT_REASONS:  # every label value exists from the start
        assert b.registry.get_sample_value("scpd_envelopes_rejected_total", {"reason": reason}) == 0
    assert a.registry.get_sample_value("scpd_envelopes_rejected_total", {"reason": "bad_signature"}) == 2


def test_slot_histograms_read_rounds_and_counter_from_the_core() -> None:
    m = Metrics(process=False)
    m.slot_externalized(7, 1.5, SlotEffort(nomination_rounds=3, commit_counter=2))
    m.slot_externalized(8, None, None)
    # Decided through others' EXTERNALIZE without nominating: no rounds, the committed counter counts.
    m.slot_externalized(9, None, SlotEffort(nomination_rounds=0, commit_counter=1))
    m.slot_externalized(10, None, SlotEffort(nomination_rounds=1, commit_counter=None))
    r = m.registry
    assert r.get_sample_value("scpd_ledger_latest_slot") == 10
    assert r.get_sample_value("scpd_slots_externalized_total") == 4
    assert r.get_sample_value("scpd_slot_nomination_to_externalize_seconds_count") == 1
    assert r.get_sample_value("scpd_slot_nomination_rounds_sum") == 4
    assert r.get_sample_value("scpd_slot_nomination_rounds_count") == 2
    assert r.get_sample_value("scpd_slot_ballot_counter_sum") == 3
    assert r.get_sample_value("scpd_slot_ballot_counter_count") == 2


def test_transaction_outcomes_are_counted_by_source_and_reason(tmp_path: Path) -> None:
    kp = Keypair.random()
    store = LedgerStore.open_data_dir(tmp_path / "data")
    m = Metrics(process=False)
    try:
        herder = Herder(kp, network_id("test"), SCPQuorumSet(1, (kp.public_key,)), store, CoreSettings(), metrics=m)
        assert herder.submit_transaction(b"tx one").accepted
        assert herder.submit_transaction(b"tx one").accepted  # again: already known
        assert not herder.submit_transaction(b"").accepted
        assert not herder.submit_transaction(b"x" * (CoreSettings().queue_limits.max_tx_bytes + 1)).accepted
    finally:
        store.close()
    r = m.registry
    assert r.get_sample_value("scpd_transactions_received_total", {"source": "api"}) == 4
    assert r.get_sample_value("scpd_transactions_queued_total") == 1
    assert r.get_sample_value("scpd_transactions_already_known_total") == 1
    assert r.get_sample_value("scpd_transactions_refused_total", {"reason": "empty"}) == 1
    assert r.get_sample_value("scpd_transactions_refused_total", {"reason": "too-large"}) == 1


def test_quorum_intersection_and_critical_nodes_of_the_transitive_quorum(tmp_path: Path) -> None:
    with Network(tmp_path, 4) as net:
        node = net.nodes[0]
        url = f"http://127.0.0.1:{tomllib.loads(node.config.read_text())['http']['port']}/metrics"
        net.wait_slot(2, [node])
        scrapes: list[Samples] = []

        def analysed() -> bool:
            # NaN until every validator named has declared its quorum set, then 1/0.
            scrapes.append(scrape(url))
            return value(scrapes[-1], "scpd_quorum_intersection") == 1

        wait_for(analysed, 30, "the transitive quorum analysed")
        # 3 of 4 everywhere: no single node failing halts node1.
        assert value(scrapes[-1], "scpd_quorum_critical_nodes") == 0
        assert value(scrapes[-1], "scpd_events_clients") == 0
        assert value(scrapes[-1], "scpd_events_dropped_total") == 0
