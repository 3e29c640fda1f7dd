"""The analyser's bitset engine answers as the quorum predicates of ``scpd.base.quorum``.

The engine keeps its own compiled form of each quorum set, for speed (see
``scpd.analysis.engine``); these properties pin it to the one reference
implementation on random nested networks, including the inputs only the
analyser accepts: validators listed twice, thresholds of zero or above the
entries, validators that are not nodes, and nodes without a quorum set.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scpd.analysis.engine import Engine, satisfied
from scpd.analysis.fbas import Fbas, Node
from scpd.analysis.local import qset_from_scp
from scpd.base.quorum import is_quorum_slice, max_quorum
from scpd.base.types import NodeID, SCPQuorumSet

NODES = [NodeID(bytes([i + 1]) * 32) for i in range(6)]
STRANGER = NodeID(bytes([99]) * 32)  # named in quorum sets, never a node of the network


@st.composite
def raw_qsets(draw: st.DrawFn, depth: int = 1) -> SCPQuorumSet:
    """Nested quorum sets as an analyser may read them: not necessarily sane."""
    validators = tuple(draw(st.lists(st.sampled_from([*NODES, STRANGER]), max_size=4)))
    inner = tuple(draw(st.lists(raw_qsets(depth + 1), max_size=2))) if depth < 3 else ()
    entries = len(validators) + len(inner)
    return SCPQuorumSet(draw(st.integers(0, entries + 1)), validators, inner)


@st.composite
def networks(draw: st.DrawFn) -> dict[NodeID, SCPQuorumSet | None]:
    size = draw(st.integers(1, len(NODES)))
    return {n: draw(st.none() | raw_qsets()) for n in NODES[:size]}


def compile_network(network: dict[NodeID, SCPQuorumSet | None]) -> Engine:
    nodes = tuple(Node(str(n), None if q is None else qset_from_scp(q)) for n, q in network.items())
    return Engine.build(Fbas(nodes))


def mask_of(engine: Engine, network: dict[NodeID, SCPQuorumSet | None], nodes: set[NodeID]) -> int:
    keys = list(network)
    return engine.from_original({keys.index(n) for n in nodes})


@settings(max_examples=200, deadline=None)
@given(networks(), st.data())
def test_bitset_slice_test_answers_as_is_quorum_slice(
    network: dict[NodeID, SCPQuorumSet | None], data: st.DataObject
) -> None:
    engine = compile_network(network)
    present = data.draw(st.sets(st.sampled_from(list(network))))
    mask = mask_of(engine, network, present)
    keys = list(network)
    for internal, original in enumerate(engine.order):
        qset = network[keys[original]]
        compiled = engine.qsets[internal]
        assert (compiled is None) == (qset is None)
        if qset is not None and compiled is not None:
            assert satisfied(compiled, mask) == is_quorum_slice(qset, present)


@settings(max_examples=200, deadline=None)
@given(networks(), st.data())
def test_bitset_quorum_closure_answers_as_max_quorum(
    network: dict[NodeID, SCPQuorumSet | None], data: st.DataObject
) -> None:
    engine = compile_network(network)
    universe = data.draw(st.sets(st.sampled_from(list(network))))
    keys = list(network)
    got = {keys[i] for i in engine.to_original(engine.max_quorum(mask_of(engine, network, universe)))}
    expected = max_quorum(universe, network.get)
    assert got == expected
    assert engine.is_quorum(mask_of(engine, network, universe)) == (bool(universe) and expected == universe)
