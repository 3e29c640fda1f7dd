"""Auditing the stored EXTERNALIZE proofs of a whole ledger (``scpd ledger verify``).

The chain walk (:meth:`scpd.node.ledger.LedgerStore.verify_chain`) proves the
ledgers link; it cannot tell whether the network decided them, since that
needs the network's signatures and the node's quorum set. This audit re-checks
every stored ledger the way catch-up checks a ledger served by a stranger
(:func:`scpd.nodecore.catchup.check_entry`: each proof an EXTERNALIZE of exactly
this value for this slot, with a good signature, and the signers v-blocking
for our quorum set), so an edited value, a forged or damaged proof, or a
ledger nobody could have externalized is found.

Two more signer sets could have externalized, so they pass as well:

* a set holding our own EXTERNALIZE: this node externalizes only after a
  quorum of its own confirmed the commit (the first node to decide a slot
  often stores little else, since the others' EXTERNALIZE arrive later and
  are added to the proofs as they come);
* a set that contains a quorum for our quorum set, each member judged by the
  quorum set its proof declares (as stored in the ledger database).

The signatures are the cost (a whole ledger holds several per slot), and here
they come in large batches, which is when more cores pay: PyNaCl releases the
GIL while libsodium verifies, and a window of ledgers' proofs split across
one thread per core verified 1.8x faster on two cores, while handing envelopes
to threads one at a time made it slower (bench/bench_verify_threads.py,
docs/benchmarks.md). The ledgers are still judged one by one in slot order,
so the first bad slot reported is the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from scpd.base.keys import verify_envelope
from scpd.base.quorum import is_quorum
from scpd.base.types import NodeID, SCPEnvelope, SCPExternalize, SCPQuorumSet
from scpd.node.ledger import LedgerStore
from scpd.node.ledger_chain import ChainBreak
from scpd.nodecore.catchup import CatchupEntry, check_entry
from scpd.nodecore.values import GENESIS_CLOSE_TIME, GENESIS_HASH, ChainTip, LedgerRecord

__all__ = ["first_unproven_ledger"]

# Ledgers whose proofs are verified together: enough signatures for every thread to have a long run.
WINDOW = 256

Signed = Callable[[SCPEnvelope], bool]


def first_unproven_ledger(
    store: LedgerStore, net_id: bytes, quorum_set: SCPQuorumSet, local: NodeID, workers: int | None = None
) -> ChainBreak | None:
    """The first stored ledger whose proofs do not hold (see the module docstring), or None.

    ``workers`` threads verify signatures (default: one per core).
    """
    qsets = store.load_quorum_sets()
    previous = ChainTip(0, GENESIS_HASH, GENESIS_CLOSE_TIME)
    slot = 1
    threads = max(1, workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(threads) as pool:
        while window := _read_window(store, slot):
            proofs = [env for _, entry in window for env in entry.proofs]
            signed = _good_signatures(pool, threads, net_id, proofs)
            for record, entry in window:
                problem = _entry_problem(entry, previous, net_id, quorum_set, local, qsets, signed)
                if problem is not None:
                    return ChainBreak(entry.slot, problem)
                previous = ChainTip(entry.slot, record.hash, record.close_time)
            slot += len(window)
    return None


def _read_window(store: LedgerStore, first: int) -> list[tuple[LedgerRecord, CatchupEntry]]:
    window = []
    for slot in range(first, first + WINDOW):
        record = store.get(slot)
        if record is None:
            break
        window.append((record, CatchupEntry(slot, record.value, record.tx_set, tuple(store.proofs(slot)))))
    return window


def _good_signatures(pool: ThreadPoolExecutor, workers: int, net_id: bytes, envelopes: Sequence[SCPEnvelope]) -> Signed:
    """Verify ``envelopes`` split across the pool's ``workers`` threads; answer whether each is well signed."""
    step = max(1, -(-len(envelopes) // workers))
    parts = [envelopes[i : i + step] for i in range(0, len(envelopes), step)]

    def verify(part: Sequence[SCPEnvelope]) -> list[SCPEnvelope]:
        return [env for env in part if verify_envelope(net_id, env)]

    good = {env for found in pool.map(verify, parts) for env in found}
    return good.__contains__


def _entry_problem(
    entry: CatchupEntry,
    previous: ChainTip,
    net_id: bytes,
    quorum_set: SCPQuorumSet,
    local: NodeID,
    qsets: Mapping[bytes, SCPQuorumSet],
    signed: Signed,
) -> str | None:
    problem = check_entry(entry, previous, quorum_set, net_id, signed)
    if problem is None:
        return None
    declared: dict[NodeID, SCPQuorumSet] = {local: quorum_set}
    for env in entry.proofs:
        p = env.statement.pledges
        qset = qsets.get(p.commit_quorum_set_hash) if isinstance(p, SCPExternalize) else None
        if qset is not None and env.statement.node_id != local:
            declared[env.statement.node_id] = qset
    signers = {env.statement.node_id for env in entry.proofs}
    if signers and (local in signers or is_quorum(quorum_set, signers, declared.get)):
        # Enough signers by the rules above; every other check of check_entry (values,
        # signatures) still applies, with the signers themselves as the set to block.
        return check_entry(entry, previous, SCPQuorumSet(1, tuple(sorted(signers, key=str))), net_id, signed)
    return problem
