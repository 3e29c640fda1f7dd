"""The Driver's defaults: DESIGN.md's timeout formula, the draft's leader-selection hashes and weights."""

from __future__ import annotations

import hashlib
import struct
from fractions import Fraction

import pytest
from scp_harness import keypair

from scpd.base.types import SCPQuorumSet
from scpd.scp import Driver, ValidationLevel
from scpd.scp.driver import HASH_K, HASH_N, HASH_P, MAX_TIMEOUT


def opaque(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value + b"\0" * ((4 - len(value) % 4) % 4)


@pytest.mark.parametrize("is_nomination", [True, False])
def test_timeout_is_initial_plus_increments(is_nomination: bool) -> None:
    d = Driver()
    assert [d.compute_timeout(n, is_nomination) for n in (1, 2, 3, 10)] == [1.0, 2.0, 3.0, 10.0]


def test_timeouts_are_configurable_per_timer_and_capped() -> None:
    d = Driver(
        nomination_timeout_initial=0.5,
        nomination_timeout_increment=0.25,
        ballot_timeout_initial=2.0,
        ballot_timeout_increment=3.0,
    )
    assert d.compute_timeout(3, True) == 1.0
    assert d.compute_timeout(3, False) == 8.0
    assert d.compute_timeout(10**6, False) == MAX_TIMEOUT == 1800.0


def test_hash_node_is_the_drafts_g_i_truncated_to_64_bits() -> None:
    d = Driver()
    node = keypair(3).node_id
    for is_priority, tag in ((False, HASH_N), (True, HASH_P)):
        data = struct.pack(">Q", 7) + opaque(b"prev") + struct.pack(">I", tag) + struct.pack(">i", 2) + node.to_xdr()
        expected = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
        assert d.compute_hash_node(7, b"prev", is_priority, 2, node) == expected


def test_value_hash_uses_the_k_tag() -> None:
    d = Driver()
    data = struct.pack(">Q", 7) + opaque(b"prev") + struct.pack(">I", HASH_K) + struct.pack(">i", 1) + opaque(b"val")
    assert d.compute_value_hash(7, b"prev", 1, b"val") == int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def test_node_weight_is_fraction_of_slices() -> None:
    d = Driver()
    a, b, c, e, f = (keypair(i).node_id for i in range(5))
    inner = SCPQuorumSet(2, (e, f, keypair(9).node_id))
    qset = SCPQuorumSet(2, (a, b, c), (inner,))
    assert d.get_node_weight(a, qset, False) == Fraction(2, 4)
    assert d.get_node_weight(e, qset, False) == Fraction(2, 4) * Fraction(2, 3)
    assert d.get_node_weight(keypair(8).node_id, qset, False) == 0
    assert d.get_node_weight(a, qset, True) == 1


def test_value_defaults() -> None:
    d = Driver()
    assert d.validate_value(1, b"v", True) == ValidationLevel.FULLY_VALID
    assert d.extract_valid_value(1, b"v") is None


def test_abstract_methods_say_so() -> None:
    d = Driver()
    with pytest.raises(NotImplementedError):
        d.combine_candidates(1, frozenset({b"v"}))
    with pytest.raises(NotImplementedError):
        d.get_quorum_set(bytes(32))
