"""The deterministic network simulator: many SCP nodes in one process.

Theory of operation
-------------------
Every node runs the real consensus core (``scpd.scp.SCP``) behind a
:class:`~scpd.sim.node.SimDriver` that signs with real Ed25519 keys, verifies
every envelope it receives, and arms its timers on one shared
:class:`~scpd.sim.clock.VirtualClock`. Messages travel through a
:class:`~scpd.sim.network.Network` that models per-link latency, loss,
duplication, reordering and partitions. All randomness comes from
``random.Random`` streams derived from one seed (one stream per concern), and
the event queue breaks ties by insertion order, so one seed always replays the
same run. Nothing here reads the wall clock or uses asyncio.

Modules: ``clock`` (virtual time and the event queue), ``randomness`` (seeded
streams), ``network`` (links, faults, partitions), ``topology`` (quorum-set
shapes and the Byzantine nodes each tolerates), ``values`` (the value format
nodes propose and validate), ``node`` (an honest node and its driver),
``byzantine`` (misbehaving nodes), ``scenario`` (what a run does, including
random fault plans), ``simulator`` (wiring and running), ``stats`` (summaries
and the safety, liveness and validity checks).
"""
