"""The node layer: everything that makes the pure core a running validator.

Here live the asyncio parts: the overlay (TCP peers, authenticated handshake,
flooding), the herder (slot cadence, values, transaction queue), the ledger
store and the timers. This layer may use sockets, the clock and randomness;
it may import ``scpd.base`` and ``scpd.scp`` but never the operator layer
(configuration files, CLI, HTTP), which drives it from above.
"""
