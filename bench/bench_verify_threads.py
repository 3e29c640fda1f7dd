"""Can signature checks use more cores? Ed25519 verification in worker threads (issue 13).

PyNaCl calls libsodium through cffi, which releases the GIL for the length
of the C call, so verifications in two threads can overlap. Whether that pays
depends on what it costs to hand an envelope to a thread and get the verdict
back, against the ~55 us a verification takes. This measures, on real signed
SCP envelopes (400-byte statements):

* inline: one verification after another on the calling thread (today);
* pool, one at a time: each envelope submitted alone to a ThreadPoolExecutor
  and its result awaited from the asyncio loop (``run_in_executor``), the way
  the intake would use it without reordering envelopes;
* pool, batched: a batch of envelopes (as one read of the socket delivers
  them) split across the workers, the verdicts gathered in arrival order.

For each it prints wall seconds and CPU seconds (process time, all threads)
per 1,000 verifications and the speed-up over inline; on a shared machine the
wall figures move with the neighbours' load, the CPU figures much less.

Then the one place scpd uses the pool: ``scpd ledger verify``'s proof audit
(scpd.node.proof_audit) over a real SQLite ledger of ``--ledgers`` ledgers
with 4 EXTERNALIZE proofs each, with one worker thread and with one per core.

    .venv/bin/python bench/bench_verify_threads.py [--count 4000] [--ledgers 2000] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from benchdoc import write_section  # noqa: E402

from scpd.base.keys import Keypair, network_id, sign_statement, verify_envelope  # noqa: E402
from scpd.base.quorum import quorum_set_hash  # noqa: E402
from scpd.base.types import (  # noqa: E402
    SCPBallot,
    SCPEnvelope,
    SCPExternalize,
    SCPPrepare,
    SCPQuorumSet,
    SCPStatement,
)
from scpd.node.ledger import LedgerStore  # noqa: E402
from scpd.node.proof_audit import first_unproven_ledger  # noqa: E402
from scpd.nodecore.values import GENESIS_HASH, ConsensusValue, LedgerEntry, TxSet, ledger_hash  # noqa: E402

NET = network_id("bench verify threads")


def envelopes(count: int) -> list[tuple[SCPEnvelope, bytes]]:
    """Distinct signed PREPARE envelopes with their statement XDR, from 16 signers."""
    keys = [Keypair.random() for _ in range(16)]
    out = []
    for i in range(count):
        kp = keys[i % len(keys)]
        ballot = SCPBallot(i + 1, bytes(300) + i.to_bytes(8, "big"))
        statement = SCPStatement(kp.public_key, 7, SCPPrepare(bytes(32), ballot, ballot, None, 1, 1))
        env = sign_statement(kp, NET, statement)
        out.append((env, statement.to_xdr()))
    return out


DECISION = (
    "Decision: live SCP intake stays inline. Envelopes reach the intake one or a few per loop turn,\n"
    "and handing one to a thread costs more than half a verification, so a pool makes each check\n"
    "slower and the core must see envelopes in arrival order anyway; only long batches gain, and\n"
    "those exist in `scpd ledger verify` (the whole chain's proofs), which verifies a window of\n"
    "256 ledgers' proofs on one thread per core."
)

Run = Callable[[list[tuple[SCPEnvelope, bytes]]], list[bool]]


def inline(items: list[tuple[SCPEnvelope, bytes]]) -> list[bool]:
    return [verify_envelope(NET, env, xdr) for env, xdr in items]


def one_at_a_time(pool: ThreadPoolExecutor) -> Run:
    def run(items: list[tuple[SCPEnvelope, bytes]]) -> list[bool]:
        async def main() -> list[bool]:
            loop = asyncio.get_running_loop()
            return [await loop.run_in_executor(pool, verify_envelope, NET, env, xdr) for env, xdr in items]

        return asyncio.run(main())

    return run


def batched(pool: ThreadPoolExecutor, workers: int, batch: int) -> Run:
    def verify_slice(part: Sequence[tuple[SCPEnvelope, bytes]]) -> list[bool]:
        return [verify_envelope(NET, env, xdr) for env, xdr in part]

    def run(items: list[tuple[SCPEnvelope, bytes]]) -> list[bool]:
        async def main() -> list[bool]:
            loop = asyncio.get_running_loop()
            verdicts: list[bool] = []
            for start in range(0, len(items), batch):
                chunk = items[start : start + batch]
                step = -(-len(chunk) // workers)
                parts = [chunk[i : i + step] for i in range(0, len(chunk), step)]
                for result in await asyncio.gather(*(loop.run_in_executor(pool, verify_slice, p) for p in parts)):
                    verdicts.extend(result)
            return verdicts

        return asyncio.run(main())

    return run


def measure(run: Run, items: list[tuple[SCPEnvelope, bytes]]) -> tuple[float, float]:
    """Best of three: (wall s, CPU s) per 1,000 verifications."""
    best = (float("inf"), float("inf"))
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        verdicts = run(items)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert all(verdicts) and len(verdicts) == len(items)
        best = min(best, (wall, cpu))
    per = 1000 / len(items)
    return best[0] * per, best[1] * per


def audit_rows(ledgers: int) -> list[str]:
    """``ledger verify``'s proof audit over a real ledger, one worker thread against one per core."""
    keys = [Keypair.random() for _ in range(4)]
    qset = SCPQuorumSet(3, tuple(k.public_key for k in keys))
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LedgerStore.open_data_dir(Path(tmp)) as store:
        previous = GENESIS_HASH
        for slot in range(1, ledgers + 1):
            tx_set = TxSet.canonical(previous, [slot.to_bytes(8, "big")])
            value = ConsensusValue(1000 + slot, tx_set.hash())
            pledges = SCPExternalize(SCPBallot(1, value.to_xdr()), 1, quorum_set_hash(qset))
            proofs = [sign_statement(k, NET, SCPStatement(k.public_key, slot, pledges)) for k in keys]
            store.append_ledger(LedgerEntry(slot, value), tx_set, proofs)
            previous = ledger_hash(previous, LedgerEntry(slot, value))
        cores = os.cpu_count() or 1
        for workers in sorted({1, cores}):
            wall, cpu = time.perf_counter(), time.process_time()
            assert first_unproven_ledger(store, NET, qset, keys[0].public_key, workers) is None
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rows.append(f"| {ledgers} ledgers x 4 proofs, {workers} thread(s) | {wall:.2f} | {cpu:.2f} |")
    return ["| ledger verify, proof audit | wall s | CPU s |", "|---|---:|---:|", *rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--ledgers", type=int, default=2000)
    ap.add_argument("--write", action="store_true", help="record the table in docs/benchmarks.md")
    args = ap.parse_args()
    items = envelopes(args.count)
    rows: list[tuple[str, float, float]] = [("inline (today)", *measure(inline, items))]
    for workers in (1, 2):
        with ThreadPoolExecutor(workers) as pool:
            rows.append((f"pool of {workers}, one envelope at a time", *measure(one_at_a_time(pool), items)))
            for batch in (8, 64):
                rows.append((f"pool of {workers}, batches of {batch}", *measure(batched(pool, workers, batch), items)))
    base_wall = rows[0][1]
    lines = [
        "| how | wall ms / 1,000 | CPU ms / 1,000 | speed-up (wall) |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {w * 1000:.0f} | {c * 1000:.0f} | {base_wall / w:.2f}x |" for name, w, c in rows),
    ]
    lines += ["", *audit_rows(args.ledgers)]
    load = os.getloadavg()[0]
    note = f"{args.count} distinct signed envelopes, best of 3; load average {load:.1f} at the end."
    body = "\n".join(lines) + "\n\n" + note + "\n\n" + DECISION
    print(body)
    if args.write:
        write_section(
            "Signature checks on more cores (bench/bench_verify_threads.py)",
            body,
            "python bench/bench_verify_threads.py --write",
        )


if __name__ == "__main__":
    main()
