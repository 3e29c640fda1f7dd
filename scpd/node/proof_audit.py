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
"""

from __future__ import annotations

from collections.abc import Mapping

from scpd.base.quorum import is_quorum
from scpd.base.types import NodeID, SCPExternalize, SCPQuorumSet
from scpd.node.ledger import LedgerStore
from scpd.node.ledger_chain import ChainBreak
from scpd.nodecore.catchup import CatchupEntry, check_entry
from scpd.nodecore.values import GENESIS_CLOSE_TIME, GENESIS_HASH, ChainTip

__all__ = ["first_unproven_ledger"]


def first_unproven_ledger(
    store: LedgerStore, net_id: bytes, quorum_set: SCPQuorumSet, local: NodeID
) -> ChainBreak | None:
    """The first stored ledger whose proofs do not hold (see the module docstring), or None."""
    qsets = store.load_quorum_sets()
    previous = ChainTip(0, GENESIS_HASH, GENESIS_CLOSE_TIME)
    slot = 1
    while (record := store.get(slot)) is not None:
        entry = CatchupEntry(slot, record.value, record.tx_set, tuple(store.proofs(slot)))
        problem = _entry_problem(entry, previous, net_id, quorum_set, local, qsets)
        if problem is not None:
            return ChainBreak(slot, problem)
        previous = ChainTip(slot, record.hash, record.close_time)
        slot += 1
    return None


def _entry_problem(
    entry: CatchupEntry,
    previous: ChainTip,
    net_id: bytes,
    quorum_set: SCPQuorumSet,
    local: NodeID,
    qsets: Mapping[bytes, SCPQuorumSet],
) -> str | None:
    problem = check_entry(entry, previous, quorum_set, net_id)
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
        return check_entry(entry, previous, SCPQuorumSet(1, tuple(sorted(signers, key=str))), net_id)
    return problem
