"""Kill -9 at random moments: no lost ledger, no fork, no self-contradiction, no lost transaction.

Contradiction, precisely (per SCP; checked from what the OTHER nodes received,
using only envelopes that came straight from their sender, so one TCP
connection orders them as the sender emitted them):

* nomination: a later NOMINATE of a node for a slot must keep every vote and
  every accepted value of its earlier ones (the sets only grow);
* ballot: each later PREPARE/CONFIRM/EXTERNALIZE of a node for a slot must be
  strictly newer than the one before (stellar-core's statement order: type,
  then ballot, then prepared, prepared', h counter); a repeat of the identical
  statement (a rebroadcast) says nothing new and is skipped;
* decision: two CONFIRM/EXTERNALIZE statements of a node for one slot with
  different values, in any order.
"""

from __future__ import annotations

import base64
import json
import random
import time
import urllib.request
from pathlib import Path

from netutil import Network, Node, wait_for
from test_catchup_network import assert_same_chains

from scpd.base.types import SCPBallot, SCPConfirm, SCPExternalize, SCPNomination, SCPPrepare, SCPStatement
from scpd.node.envelope_log import EnvelopeLog
from scpd.node.ledger import LedgerStore
from scpd.nodecore.values import tx_id
from scpd.operator.daemon import RECEIVED_ENVELOPES_FILE

SEED = 20240508
KILLS = 20


def _b(b: SCPBallot | None) -> tuple[int, bytes]:
    return (-1, b"") if b is None else (b.counter, b.value)


def _rank(st: SCPStatement) -> tuple[object, ...]:
    p = st.pledges
    if isinstance(p, SCPPrepare):
        return (0, _b(p.ballot), _b(p.prepared), _b(p.prepared_prime), p.n_h)
    if isinstance(p, SCPConfirm):
        return (1, _b(p.ballot), p.n_prepared, p.n_h)
    assert isinstance(p, SCPExternalize)
    return (2,)


def contradictions(records: list[tuple[bytes, SCPStatement]]) -> list[str]:
    problems: list[str] = []
    last_nom: dict[tuple[bytes, int], SCPNomination] = {}
    last_ballot: dict[tuple[bytes, int], SCPStatement] = {}
    seen: set[tuple[bytes, int, bytes]] = set()
    decided: dict[tuple[bytes, int], bytes] = {}
    for sender, st in records:
        key = (sender, st.slot_index)
        ident = (sender, st.slot_index, st.to_xdr())
        if ident in seen:
            continue
        seen.add(ident)
        p = st.pledges
        if isinstance(p, SCPNomination):
            prev = last_nom.get(key)
            if prev is not None and not (set(prev.votes) <= set(p.votes) and set(prev.accepted) <= set(p.accepted)):
                problems.append(f"slot {st.slot_index}: a nomination dropped votes or accepted values")
            last_nom[key] = p
            continue
        if isinstance(p, (SCPConfirm, SCPExternalize)):
            value = p.ballot.value if isinstance(p, SCPConfirm) else p.commit.value
            if decided.setdefault(key, value) != value:
                problems.append(f"slot {st.slot_index}: committed two different values")
        prev_st = last_ballot.get(key)
        if prev_st is not None and not _rank(st) > _rank(prev_st):
            problems.append(f"slot {st.slot_index}: {st.type.name} is not newer than the {prev_st.type.name} before")
        last_ballot[key] = st
    return problems


def _submit(url: str, txs: list[bytes]) -> list[dict[str, str]]:
    body = b"\n".join(base64.b64encode(t) for t in txs)
    req = urllib.request.Request(f"{url}/txs", data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        results: list[dict[str, str]] = json.loads(resp.read())["results"]
    return results


def test_random_kill9_restarts_keep_ledgers_identical_and_statements_consistent(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with Network(tmp_path, 4, slot_interval=0.5, extra_config="[ledger]\nrecord_envelopes = true\n") as net:
        gateway, victims = net.nodes[0], net.nodes[1:]
        net.wait_slot(2, timeout=60)
        acknowledged: set[bytes] = set()
        acknowledged_by_victims: set[bytes] = set()
        start_slot = gateway.last_slot
        kills = 0
        previous: tuple[Node, int] | None = None  # the last victim, and its last ledger when it was killed
        # At least KILLS kills, and keep killing until they span at least 20 slots (bounded).
        while (kills < KILLS or gateway.last_slot < start_slot + 20) and kills < 3 * KILLS:
            kills += 1
            txs = [rng.randbytes(250) for _ in range(rng.randrange(5, 40))]
            for tx, result in zip(txs, _submit(gateway.http_url, txs), strict=True):
                if result["status"] == "queued":
                    acknowledged.add(tx_id(tx))
            victim = rng.choice(victims)
            # Never two down at once (3 of 4 must stay up): the last victim first closes a ledger in its new
            # run (its old ledgers say nothing about whether it is back), unless it is the victim again,
            # which may then die mid-startup.
            if previous is not None and previous[0] is not victim:
                net.wait_slot(previous[1] + 1, [previous[0]], timeout=60)
            behind = [n for n in victims if n.last_slot < gateway.last_slot - 1]
            net.wait_slot(gateway.last_slot, behind, timeout=60)
            if victim.started:
                # Acknowledged by the very node about to die: they must survive its crash.
                doomed = [rng.randbytes(250) for _ in range(rng.randrange(1, 10))]
                for tx, result in zip(doomed, _submit(victim.http_url, doomed), strict=True):
                    if result["status"] == "queued":
                        acknowledged.add(tx_id(tx))
                        acknowledged_by_victims.add(tx_id(tx))
            # A random moment: anywhere from mid-startup to well into a slot's ballot phase.
            time.sleep(rng.uniform(0.05, 1.5))
            previous = (victim, victim.last_slot)
            victim.kill()
            victim.start()
        assert kills >= KILLS and gateway.last_slot >= start_slot + 20, "at least 20 kills over at least 20 slots"
        target = max(n.last_slot for n in net.nodes) + 3
        net.wait_slot(target, timeout=120)
        wait_for(
            lambda: all(_included_all(n.data_dir, acknowledged) for n in net.nodes[:1]),
            60,
            "every acknowledged transaction in the ledger",
        )
        net.assert_agreement()
        for node in net.nodes:
            assert node.terminate() == 0

    common = assert_same_chains([n.data_dir for n in net.nodes])
    assert common >= target
    # Exactly once: each acknowledged transaction appears in one ledger's tx set only.
    with LedgerStore.open_data_dir(net.nodes[0].data_dir, create=False) as store:
        counts: dict[bytes, int] = {}
        for slot in range(1, store.tip().slot + 1):
            record = store.get(slot)
            assert record is not None
            for i in record.tx_set.tx_ids:
                counts[i] = counts.get(i, 0) + 1
    assert all(counts.get(i) == 1 for i in acknowledged), "an acknowledged transaction is missing or repeated"
    assert len(acknowledged) > 100 and len(acknowledged_by_victims) > 20

    for node in net.nodes:
        received = EnvelopeLog.read(node.data_dir / RECEIVED_ENVELOPES_FILE)
        direct = [(peer, env.statement) for peer, env in received if env.statement.node_id.ed25519 == peer]
        assert len(direct) > 100
        problems = contradictions(direct)
        assert not problems, f"{node.name} received contradicting statements: {problems[:5]}"


def _included_all(data_dir: Path, ids: set[bytes]) -> bool:
    with LedgerStore.open_data_dir(data_dir, create=False) as store:
        return all(store.is_included(i) for i in ids)


def test_the_contradiction_checker_catches_a_restart_that_forgot_its_state() -> None:
    from scpd.base.keys import Keypair

    node = Keypair.random().public_key
    b2 = SCPBallot(2, b"x")
    b1 = SCPBallot(1, b"y")
    qh = bytes(32)
    newer = SCPStatement(node, 5, SCPPrepare(qh, b2, b2, None, 0, 0))
    forgot = SCPStatement(node, 5, SCPPrepare(qh, b1, None, None, 0, 0))
    raw = node.ed25519
    assert contradictions([(raw, newer), (raw, newer)]) == []
    assert contradictions([(raw, forgot), (raw, newer)]) == []
    assert contradictions([(raw, newer), (raw, forgot)])
    nom1 = SCPStatement(node, 5, SCPNomination(qh, (b"a",), ()))
    nom2 = SCPStatement(node, 5, SCPNomination(qh, (b"b",), ()))
    assert contradictions([(raw, nom1), (raw, nom2)])
    ext_x = SCPStatement(node, 5, SCPExternalize(SCPBallot(1, b"x"), 1, qh))
    conf_y = SCPStatement(node, 5, SCPConfirm(SCPBallot(3, b"y"), 3, 3, 3, qh))
    assert any("two different values" in p for p in contradictions([(raw, conf_y), (raw, ext_x)]))
