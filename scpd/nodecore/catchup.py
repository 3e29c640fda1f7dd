"""Ledger catch-up: how a node that is behind fetches the ledgers it missed.

Theory of operation
-------------------
A node falls behind when it starts late, restarts, or is cut off for a
while. It notices from its quorum's SCP envelopes: a signed statement for
slot ``s`` means its sender closed every slot below ``s`` (the cadence
nominates a slot only after writing its predecessor). One node's word is not
enough, though: a faulty or stolen key could claim slot 2^63 and keep us
"catching up" forever. :meth:`Catchup.note_claim` records each validator of
our quorum set's highest claim, and the network's slot
(:attr:`Catchup.highest_seen`) is the highest slot claimed by a v-blocking
set of our quorum set (so at least one honest node, unless our slices are
all faulty) or proven by a checked catch-up entry. While it is above ours,
:meth:`Catchup.next_request` asks one peer at a time for a bounded batch of
ledgers (``GET_LEDGERS(from, count)``), and the peer answers ``LEDGERS``
with each entry's value, tx set and the EXTERNALIZE envelopes it stored as
proofs.

Trust rule (docs/catchup.md): the peer is not trusted. An entry is accepted
only when :func:`check_entry` finds that it links to our chain (next slot,
tx set hashing to the value's hash and building on our tip, close time not
going back) and that its proofs hold signature-checked EXTERNALIZE
statements of exactly this value for this slot from a set of nodes that is
v-blocking for our OWN quorum set. A v-blocking set intersects every one of
our slices, so as long as our slices are not all faulty at least one honest
node externalized the value, and SCP's safety says every honest node
externalizes the same. An entry failing the check scores the peer like any
other invalid message, and the request is retried with another peer.

Bounds: one request outstanding at a time, at most ``batch_size`` entries
per request, at least ``min_interval`` seconds between requests, a timeout
after which another peer is asked; the serving side answers each peer at
most ``serve_rate`` times per second, within the frame limit and with at
most ``MAX_PROOFS`` proofs per entry (the wire cap: more would make the
receiver refuse the whole answer as malformed).

The messages (``GET_LEDGERS`` = 40, ``LEDGERS`` = 41, in the overlay's
``CATCHUP_RANGE``) are registered into the overlay union here. This module
does no I/O of its own: the herder reads the store (in a worker thread) and
sends through the overlay; the clock is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import ClassVar, Self

from scpd.base.keys import verify_envelope
from scpd.base.quorum import all_validators, is_v_blocking
from scpd.base.types import NodeID, SCPEnvelope, SCPExternalize, SCPQuorumSet, XdrType
from scpd.base.xdr import Packer, Reader
from scpd.errors import XdrError
from scpd.nodecore.messages import CATCHUP_RANGE, DEFAULT_MAX_MESSAGE_SIZE, OverlayMessage, register_message
from scpd.nodecore.values import ChainTip, ConsensusValue, TxSet

__all__ = [
    "MAX_BATCH",
    "MAX_PROOFS",
    "Catchup",
    "CatchupEntry",
    "CatchupSettings",
    "GetLedgers",
    "Ledgers",
    "check_entry",
]

MAX_BATCH = 64
MAX_PROOFS = 128
GET_LEDGERS_TYPE = CATCHUP_RANGE.start
LEDGERS_TYPE = CATCHUP_RANGE.start + 1
# Room in a LEDGERS frame beyond the entries' own XDR (discriminant, counts).
_FRAME_OVERHEAD = 64


@register_message
@dataclass(frozen=True, slots=True)
class GetLedgers(OverlayMessage):
    """Ask for up to ``count`` ledgers from slot ``from_slot`` on."""

    TYPE: ClassVar[int] = GET_LEDGERS_TYPE

    from_slot: int
    count: int

    def pack(self, p: Packer) -> None:
        p.pack_uhyper(self.from_slot)
        p.pack_uint(self.count)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        return cls(r.uint64("GetLedgers.fromSlot"), r.uint32("GetLedgers.count"))


@dataclass(frozen=True, slots=True)
class CatchupEntry(XdrType):
    """One ledger as served for catch-up: enough to check it and write it."""

    slot: int
    value: ConsensusValue
    tx_set: TxSet
    proofs: tuple[SCPEnvelope, ...]

    def pack(self, p: Packer) -> None:
        p.pack_uhyper(self.slot)
        self.value.pack(p)
        self.tx_set.pack(p)
        if len(self.proofs) > MAX_PROOFS:
            raise XdrError(f"CatchupEntry.proofs: more than {MAX_PROOFS}")
        p.pack_uint(len(self.proofs))
        for env in self.proofs:
            env.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        slot = r.uint64("CatchupEntry.slot")
        value = ConsensusValue.unpack(r)
        tx_set = TxSet.unpack(r)
        # An envelope is far larger than 64 bytes; the bound only stops absurd counts early.
        n = r.array_length("CatchupEntry.proofs", 64, MAX_PROOFS)
        return cls(slot, value, tx_set, tuple(SCPEnvelope.unpack(r) for _ in range(n)))


@register_message
@dataclass(frozen=True, slots=True)
class Ledgers(OverlayMessage):
    """The answer to GET_LEDGERS: consecutive entries (maybe none) and the server's tip slot."""

    TYPE: ClassVar[int] = LEDGERS_TYPE

    tip_slot: int
    entries: tuple[CatchupEntry, ...]

    def pack(self, p: Packer) -> None:
        p.pack_uhyper(self.tip_slot)
        p.pack_uint(len(self.entries))
        for entry in self.entries:
            entry.pack(p)

    @classmethod
    def unpack(cls, r: Reader) -> Self:
        tip = r.uint64("Ledgers.tipSlot")
        n = r.array_length("Ledgers.entries", 64, MAX_BATCH)
        return cls(tip, tuple(CatchupEntry.unpack(r) for _ in range(n)))


def check_entry(
    entry: CatchupEntry,
    tip: ChainTip,
    qset: SCPQuorumSet,
    net_id: bytes,
    signed: Callable[[SCPEnvelope], bool] | None = None,
) -> str | None:
    """Why ``entry`` may not follow ``tip`` under the trust rule, or None when it may.

    ``signed`` answers whether a proof's signature is good, for a caller that checked
    many at once (on more cores, see scpd.node.proof_audit); by default each is verified here.
    """
    if entry.slot != tip.slot + 1:
        return f"slot {entry.slot} does not follow our tip {tip.slot}"
    if entry.tx_set.hash() != entry.value.tx_set_hash:
        return "the tx set does not hash to the value's tx set hash"
    if entry.tx_set.previous_ledger_hash != tip.hash:
        return "the tx set does not build on our last ledger"
    if entry.value.close_time < tip.close_time:
        return "the close time goes back"
    value_xdr = entry.value.to_xdr()
    signers: set[NodeID] = set()
    for env in entry.proofs:
        st = env.statement
        p = st.pledges
        if not isinstance(p, SCPExternalize) or st.slot_index != entry.slot or p.commit.value != value_xdr:
            return f"a proof from {st.node_id} is not an EXTERNALIZE of this value for this slot"
        if not (signed(env) if signed is not None else verify_envelope(net_id, env)):
            return f"a proof from {st.node_id} has a bad signature"
        signers.add(st.node_id)
    if not is_v_blocking(qset, signers):
        return f"EXTERNALIZE proofs from {len(signers)} node(s), not a v-blocking set of our quorum set"
    return None


@dataclass(frozen=True, slots=True)
class CatchupSettings:
    batch_size: int = 16
    request_timeout: float = 5.0
    min_interval: float = 0.05
    serve_rate: float = 20.0  # GET_LEDGERS answered per peer per second
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE  # overlay.max_message_size: an answer must fit one frame


@dataclass(slots=True)
class _Outstanding:
    peer: NodeID
    from_slot: int
    deadline: float


class Catchup:
    """The catch-up state of one node: what it has seen, what it asked, whom it served."""

    def __init__(self, settings: CatchupSettings, quorum_set: SCPQuorumSet) -> None:
        self.settings = settings
        self._qset = quorum_set
        self._members = frozenset(all_validators(quorum_set))
        self._claims: dict[NodeID, int] = {}
        self._claimed = 0
        self._proven = 0
        self._outstanding: _Outstanding | None = None
        self._last_request = float("-inf")
        self._rotation = 0
        self._served: OrderedDict[NodeID, float] = OrderedDict()
        self.entries_accepted = 0
        self.entries_refused = 0

    # -- client side --------------------------------------------------------

    @property
    def highest_seen(self) -> int:
        """The slot the network is at, as far as we can trust it (0 when unknown)."""
        return max(self._claimed, self._proven)

    def note_claim(self, node: NodeID, slot: int) -> None:
        """``node`` signed a statement for ``slot``: it says it closed everything below it.

        Only validators of our quorum set count (nobody else can be part of a
        v-blocking set of ours), so the table is bounded by our quorum set.
        """
        if node not in self._members or slot <= self._claims.get(node, 0):
            return
        self._claims[node] = slot
        # The highest slot s such that the nodes claiming s or more are v-blocking for us.
        for s in sorted(set(self._claims.values()), reverse=True):
            if s <= self._claimed:
                break
            if is_v_blocking(self._qset, [n for n, c in self._claims.items() if c >= s]):
                self._claimed = s
                break

    def note_proven(self, slot: int) -> None:
        """A checked catch-up entry (v-blocking proofs) shows the network closed ``slot``."""
        self._proven = max(self._proven, slot)

    def behind(self, current_slot: int) -> bool:
        """True when some peer has closed our current slot already."""
        return self.highest_seen > current_slot

    def next_request(self, peers: Iterable[NodeID], current_slot: int, now: float) -> tuple[NodeID, GetLedgers] | None:
        """The request to send now, if one is due: to whom, and what."""
        out = self._outstanding
        if out is not None:
            if now < out.deadline:
                return None
            self._outstanding = None  # timed out: ask someone else
        if not self.behind(current_slot) or now - self._last_request < self.settings.min_interval:
            return None
        candidates = sorted(peers, key=lambda n: n.ed25519)
        if not candidates:
            return None
        if out is not None and len(candidates) > 1:
            candidates = [n for n in candidates if n != out.peer]
        peer = candidates[self._rotation % len(candidates)]
        self._rotation += 1
        count = min(self.settings.batch_size, self.highest_seen - current_slot)
        self._outstanding = _Outstanding(peer, current_slot, now + self.settings.request_timeout)
        self._last_request = now
        return peer, GetLedgers(current_slot, count)

    def expects(self, peer: NodeID) -> bool:
        """True when ``peer`` owes us an answer (unsolicited LEDGERS are ignored)."""
        return self._outstanding is not None and self._outstanding.peer == peer

    def answered(self, peer: NodeID, message: Ledgers) -> None:
        """The outstanding request is answered; the peer's tip tells us how far the network got."""
        if self.expects(peer):
            self._outstanding = None
            if message.entries:
                self.note_proven(message.entries[-1].slot)

    def failed(self, peer: NodeID) -> None:
        """The peer served something unusable: drop the request so another peer is asked."""
        if self.expects(peer):
            self._outstanding = None

    # -- server side --------------------------------------------------------

    def may_serve(self, peer: NodeID, now: float) -> bool:
        """Rate limit: at most ``serve_rate`` answers per second to one peer."""
        last = self._served.get(peer)
        if last is not None and now - last < 1.0 / self.settings.serve_rate:
            return False
        self._served.pop(peer, None)
        self._served[peer] = now
        while len(self._served) > 1024:
            self._served.popitem(last=False)
        return True

    def build_answer(self, tip_slot: int, entries: Iterable[CatchupEntry]) -> Ledgers:
        """As many consecutive entries as fit the frame limit (at least one if any)."""
        budget = self.settings.max_message_size - _FRAME_OVERHEAD
        chosen: list[CatchupEntry] = []
        for served in entries:
            # Never more proofs than the wire allows (stores written before the cap held more).
            entry = replace(served, proofs=served.proofs[:MAX_PROOFS])
            size = len(entry.to_xdr())
            if chosen and size > budget:
                break
            if not chosen and size > budget:
                entry = _trim_proofs(entry, budget)
                size = len(entry.to_xdr())
            chosen.append(entry)
            budget -= size
            if len(chosen) >= MAX_BATCH:
                break
        return Ledgers(tip_slot, tuple(chosen))


def _trim_proofs(entry: CatchupEntry, budget: int) -> CatchupEntry:
    """Drop proofs from an entry too large for one frame (a full tx set leaves little room)."""
    proofs = list(entry.proofs)
    while proofs and len(CatchupEntry(entry.slot, entry.value, entry.tx_set, tuple(proofs)).to_xdr()) > budget:
        proofs.pop()
    return CatchupEntry(entry.slot, entry.value, entry.tx_set, tuple(proofs))
