"""The node core: the pure layer between the consensus core and the daemon's shells.

Everything here is sans-I/O (rule 1 of docs/architecture.md). ``core.NodeCore`` is one node's
rules around the consensus core, as events in (``events``) and actions out
(``actions``): intake order and checks, fetches, cadence, persist-before-send,
ledger write order, catch-up decisions, transaction flooding, one module per
job. Beside it, the pure pieces those jobs use: who to trust (``trust``),
pending envelopes, signature verdicts, equivocation, values and tx sets, the
transaction queue, catch-up's rules, storage-retry bookkeeping and the
overlay's wire messages. The asyncio daemon (``scpd.node``) and the simulator
(``scpd.sim``) both run it.
"""
