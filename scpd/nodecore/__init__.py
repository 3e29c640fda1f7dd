"""The node core: the pure layer between the consensus core and the daemon's shells.

Everything here is sans-I/O (DESIGN rule 1): intake checks and who to trust,
pending envelopes, signature verdicts, values and tx sets, the transaction
queue, catch-up's rules and the overlay's wire messages. The asyncio daemon
(``scpd.node``) and the simulator (``scpd.sim``) both run it.
"""
