"""The deterministic network simulator: many validators in one process.

Theory of operation
-------------------
Every node runs the daemon's node core (``scpd.nodecore.core.NodeCore``, and
through it the consensus core) behind a thin shell, :class:`~scpd.sim.node.
SimNode`, that does what the daemon's shells do: feeds the core events and
carries out its actions, with real Ed25519 keys, real values and tx sets,
real encoded overlay messages, timers on one shared
:class:`~scpd.sim.clock.VirtualClock` and a store that survives crashes.
Messages travel through a :class:`~scpd.sim.network.Network` that models
per-link latency, loss, duplication, reordering, partitions and hard
fetching. All randomness comes from ``random.Random`` streams derived from one
seed (one stream per concern), and the event queue breaks ties by insertion
order, so one seed always replays the same run. Nothing here reads the wall
clock or uses asyncio; nothing here imports the daemon's shells.

Modules: ``clock`` (virtual time and the event queue), ``randomness`` (seeded
streams), ``network`` (links, faults, partitions), ``topology`` (quorum-set
shapes and the Byzantine nodes each tolerates), ``values`` (the transactions
nodes submit, the values Byzantine nodes forge), ``store`` (a node's disk),
``overlay`` (the overlay's part: flooded copies, fetches), ``node`` (the
shell around the node core), ``byzantine`` (misbehaving nodes), ``scenario``
(what a run does, including random fault plans), ``simulator`` (wiring and
running), ``stats`` (summaries and the safety, validity, liveness and
conduct checks).
"""
