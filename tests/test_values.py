"""Consensus values, tx sets and ledger entries: XDR, canonical form, validation, combining."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scpd.base.xdr import Packer
from scpd.errors import XdrError
from scpd.nodecore.values import (
    GENESIS_HASH,
    MAX_TX_SIZE,
    ConsensusValue,
    LedgerEntry,
    TxSet,
    TxSetLimits,
    check_close_time,
    check_tx_set,
    check_value,
    combine_candidates,
    ledger_hash,
    max_tx_set_xdr_size,
    next_close_time,
    tx_id,
)

PREV = hashlib.sha256(b"previous ledger").digest()
LIMITS = TxSetLimits(max_txs=100, max_bytes=10_000)

txs_strategy = st.lists(st.binary(min_size=1, max_size=40), max_size=12)


def value_for(tx_set: TxSet, close_time: int = 1000) -> ConsensusValue:
    return ConsensusValue(close_time, tx_set.hash())


# -- XDR ----------------------------------------------------------------------


def test_consensus_value_xdr_layout_is_close_time_hash_and_ext_zero() -> None:
    h = bytes(range(32))
    data = ConsensusValue(0x0102030405060708, h).to_xdr()
    assert data == bytes.fromhex("0102030405060708") + h + bytes(4)
    assert ConsensusValue.from_xdr(data) == ConsensusValue(0x0102030405060708, h)


def test_consensus_value_refuses_unknown_ext_and_trailing_bytes() -> None:
    data = ConsensusValue(5, PREV).to_xdr()
    with pytest.raises(XdrError, match="ext: unknown discriminant 1"):
        ConsensusValue.from_xdr(data[:-4] + struct.pack(">i", 1))
    with pytest.raises(XdrError, match="trailing"):
        ConsensusValue.from_xdr(data + bytes(4))
    with pytest.raises(XdrError):
        ConsensusValue.from_xdr(data[:-1])


def test_consensus_value_refuses_bad_fields_at_construction() -> None:
    with pytest.raises(XdrError, match="txSetHash"):
        ConsensusValue(1, b"short")
    with pytest.raises(XdrError, match="uint64"):
        ConsensusValue(-1, PREV)


def test_tx_set_xdr_layout() -> None:
    tx_set = TxSet(PREV, (b"abc", b"defgh"))
    expected = PREV + struct.pack(">I", 2) + struct.pack(">I", 3) + b"abc\0" + struct.pack(">I", 5) + b"defgh\0\0\0"
    assert tx_set.to_xdr() == expected
    assert tx_set.hash() == hashlib.sha256(expected).digest()
    assert TxSet.from_xdr(expected) == tx_set


@given(txs_strategy)
@settings(deadline=None)
def test_tx_set_round_trips(txs: list[bytes]) -> None:
    tx_set = TxSet.canonical(PREV, txs)
    decoded = TxSet.from_xdr(tx_set.to_xdr())
    assert decoded == tx_set
    assert decoded.hash() == tx_set.hash()
    assert decoded.tx_ids == tx_set.tx_ids


def test_tx_set_refuses_empty_tx_count_overflow_and_nonzero_padding() -> None:
    with pytest.raises(XdrError, match="outside 1"):
        TxSet.from_xdr(PREV + struct.pack(">II", 1, 0) + bytes(4))
    with pytest.raises(XdrError, match="cannot fit"):
        TxSet.from_xdr(PREV + struct.pack(">I", 1_000_000) + bytes(8))
    with pytest.raises(XdrError, match="padding"):
        TxSet.from_xdr(PREV + struct.pack(">II", 1, 1) + b"a\0\0\1")
    with pytest.raises(XdrError, match="exceeds maximum"):
        TxSet.from_xdr(PREV + struct.pack(">II", 1, MAX_TX_SIZE + 1) + bytes(MAX_TX_SIZE + 4))


@given(st.binary(max_size=200))
@settings(deadline=None)
def test_random_bytes_decode_or_raise_xdr_error(data: bytes) -> None:
    for cls in (ConsensusValue, TxSet, LedgerEntry):
        try:
            decoded = cls.from_xdr(data)
        except XdrError:
            continue
        assert decoded.to_xdr() == data


@given(txs_strategy)
@settings(deadline=None)
def test_canonical_sorts_by_tx_id_and_removes_duplicates(txs: list[bytes]) -> None:
    tx_set = TxSet.canonical(PREV, txs + txs[:3])
    assert tx_set.is_canonical()
    assert list(tx_set.tx_ids) == sorted({tx_id(t) for t in txs})
    assert set(tx_set.txs) == set(txs)


def test_non_canonical_sets_are_detected() -> None:
    a, b = sorted([b"x", b"y"], key=tx_id)
    assert TxSet(PREV, (a, b)).is_canonical()
    assert not TxSet(PREV, (b, a)).is_canonical()
    assert not TxSet(PREV, (a, a)).is_canonical()


def test_ledger_entry_xdr_and_hash_chain() -> None:
    value = ConsensusValue(77, PREV)
    entry = LedgerEntry(3, value)
    data = entry.to_xdr()
    vx = value.to_xdr()
    assert data == struct.pack(">Q", 3) + struct.pack(">I", len(vx)) + vx + struct.pack(">Q", 77) + PREV
    assert LedgerEntry.from_xdr(data) == entry
    assert ledger_hash(GENESIS_HASH, entry) == hashlib.sha256(bytes(32) + data).digest()
    assert ledger_hash(PREV, entry) != ledger_hash(GENESIS_HASH, entry)


def test_ledger_entry_refuses_columns_that_disagree_with_the_value() -> None:
    data = bytearray(LedgerEntry(3, ConsensusValue(77, PREV)).to_xdr())
    data[-33] ^= 1  # last byte of closeTime
    with pytest.raises(XdrError, match="disagrees"):
        LedgerEntry.from_xdr(bytes(data))


# -- validation -----------------------------------------------------------------


def test_close_time_may_equal_but_not_precede_the_last_one() -> None:
    assert check_close_time(100, 100, now=100, max_future=5) is None
    problem = check_close_time(99, 100, now=100, max_future=5)
    assert problem is not None and "before" in problem


def test_close_time_may_run_ahead_of_now_only_by_the_allowance() -> None:
    assert check_close_time(105, 0, now=100, max_future=5) is None
    problem = check_close_time(106, 0, now=100, max_future=5)
    assert problem is not None and "after now" in problem


def test_next_close_time_never_goes_back() -> None:
    assert next_close_time(now=50, last_close_time=60) == 60
    assert next_close_time(now=70, last_close_time=60) == 70
    assert next_close_time(now=70.9, last_close_time=60) == 70


def test_tx_set_must_build_on_the_last_ledger() -> None:
    tx_set = TxSet.canonical(PREV, [b"a"])
    assert check_tx_set(tx_set, PREV, LIMITS) is None
    problem = check_tx_set(tx_set, GENESIS_HASH, LIMITS)
    assert problem is not None and "builds on" in problem


def test_tx_set_limits_on_count_and_bytes() -> None:
    tx_set = TxSet.canonical(PREV, [b"a" * 10, b"b" * 10, b"c" * 10])
    assert check_tx_set(tx_set, PREV, TxSetLimits(3, 30)) is None
    count_problem = check_tx_set(tx_set, PREV, TxSetLimits(2, 30))
    assert count_problem is not None and "3 transactions" in count_problem
    bytes_problem = check_tx_set(tx_set, PREV, TxSetLimits(3, 29))
    assert bytes_problem is not None and "30 bytes" in bytes_problem


def test_tx_set_must_be_canonical() -> None:
    a, b = sorted([b"x", b"y"], key=tx_id)
    problem = check_tx_set(TxSet(PREV, (b, a)), PREV, LIMITS)
    assert problem is not None and "canonical" in problem


def test_tx_set_must_not_repeat_an_included_transaction() -> None:
    tx_set = TxSet.canonical(PREV, [b"old", b"new"])
    problem = check_tx_set(tx_set, PREV, LIMITS, is_included=lambda i: i == tx_id(b"old"))
    assert problem is not None and tx_id(b"old").hex() in problem
    assert check_tx_set(tx_set, PREV, LIMITS, is_included=lambda i: False) is None


def test_tx_set_included_check_can_be_asked_once_for_the_whole_set() -> None:
    tx_set = TxSet.canonical(PREV, [b"old", b"new", b"older"])
    calls: list[tuple[bytes, ...]] = []

    def included_among(ids: object) -> set[bytes]:
        calls.append(tuple(ids))  # type: ignore[arg-type]
        return {tx_id(b"old"), tx_id(b"older")}

    problem = check_tx_set(tx_set, PREV, LIMITS, included_among=included_among)
    first = next(i for i in tx_set.tx_ids if i in {tx_id(b"old"), tx_id(b"older")})
    assert problem is not None and first.hex() in problem
    assert calls == [tx_set.tx_ids]
    assert check_tx_set(tx_set, PREV, LIMITS, included_among=lambda ids: set()) is None


def test_canonical_from_ids_is_the_canonical_set() -> None:
    txs = [b"q", b"w", b"e", b"w"]
    built = TxSet.canonical_from_ids(PREV, [(tx_id(t), t) for t in txs])
    assert built == TxSet.canonical(PREV, txs)
    assert built.tx_ids == TxSet.canonical(PREV, txs).tx_ids and built.is_canonical()


def test_a_set_decoded_with_its_hash_has_the_hash_of_its_encoding() -> None:
    tx_set = TxSet.canonical(PREV, [b"a", b"bcdef", b"gh"])
    decoded = TxSet.from_xdr_hashed(tx_set.to_xdr())
    assert decoded == tx_set
    assert decoded.hash() == tx_set.hash() == hashlib.sha256(tx_set.to_xdr()).digest()


def test_check_value_combines_all_rules() -> None:
    tx_set = TxSet.canonical(PREV, [b"a"])
    rules = {"last_ledger_hash": PREV, "last_close_time": 10, "now": 20, "max_future": 5, "limits": LIMITS}
    assert check_value(value_for(tx_set, 15), tx_set, **rules) is None  # type: ignore[arg-type]
    other = TxSet.canonical(PREV, [b"b"])
    assert "does not match" in (check_value(value_for(other, 15), tx_set, **rules) or "")  # type: ignore[arg-type]
    assert "before" in (check_value(value_for(tx_set, 9), tx_set, **rules) or "")  # type: ignore[arg-type]
    assert "after now" in (check_value(value_for(tx_set, 26), tx_set, **rules) or "")  # type: ignore[arg-type]


# -- combining ------------------------------------------------------------------


def test_combine_takes_the_largest_tx_set_and_the_highest_close_time() -> None:
    small = TxSet.canonical(PREV, [b"a"])
    large = TxSet.canonical(PREV, [b"b", b"c"])
    sets = {s.hash(): s for s in (small, large)}
    combined = combine_candidates([value_for(small, 50), value_for(large, 40)], sets)
    assert combined == ConsensusValue(50, large.hash())


def test_combine_breaks_count_ties_by_bytes_then_by_hash() -> None:
    short = TxSet.canonical(PREV, [b"a"])
    longer = TxSet.canonical(PREV, [b"bb"])
    sets = {s.hash(): s for s in (short, longer)}
    assert combine_candidates([value_for(short), value_for(longer)], sets) == value_for(longer)
    x = TxSet.canonical(PREV, [b"x"])
    y = TxSet.canonical(PREV, [b"y"])
    sets = {s.hash(): s for s in (x, y)}
    winner = max(x.hash(), y.hash())
    assert combine_candidates([value_for(x), value_for(y)], sets) == ConsensusValue(1000, winner)


@given(st.lists(st.tuples(txs_strategy, st.integers(0, 2**64 - 1)), min_size=1, max_size=6), st.randoms())
@settings(max_examples=50, deadline=None)
def test_combine_is_independent_of_candidate_order(cands: list[tuple[list[bytes], int]], rnd: object) -> None:
    values = []
    sets: dict[bytes, TxSet] = {}
    for txs, close_time in cands:
        s = TxSet.canonical(PREV, txs)
        sets[s.hash()] = s
        values.append(ConsensusValue(close_time, s.hash()))
    combined = combine_candidates(values, sets)
    shuffled = list(values)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert combine_candidates(shuffled, sets) == combined
    assert combined is not None
    assert combined.close_time == max(v.close_time for v in values)
    chosen = sets[combined.tx_set_hash]
    assert all(len(chosen.txs) >= len(sets[v.tx_set_hash].txs) for v in values)


def test_combine_gives_no_composite_without_candidates_or_with_a_missing_tx_set() -> None:
    tx_set = TxSet.canonical(PREV, [b"a"])
    assert combine_candidates([], {}) is None
    assert combine_candidates([value_for(tx_set)], {}) is None


@given(txs_strategy)
@settings(deadline=None)
def test_fast_tx_set_encoding_matches_the_packer(txs: list[bytes]) -> None:
    tx_set = TxSet.canonical(PREV, txs)
    p = Packer()
    tx_set.pack(p)
    assert tx_set.to_xdr() == p.get_buffer()


@given(st.lists(st.binary(min_size=1, max_size=13), max_size=20))
@settings(deadline=None)
def test_xdr_size_bound_holds_for_sets_within_the_limits(txs: list[bytes]) -> None:
    tx_set = TxSet.canonical(PREV, txs)
    limits = TxSetLimits(max_txs=len(tx_set.txs), max_bytes=tx_set.total_bytes)
    assert check_tx_set(tx_set, PREV, limits) is None
    assert len(tx_set.to_xdr()) <= max_tx_set_xdr_size(limits)
    worst = TxSet.canonical(PREV, [bytes([i]) for i in range(10)])  # one byte each: 3 bytes of padding
    assert len(worst.to_xdr()) == max_tx_set_xdr_size(TxSetLimits(10, 10))
