"""Base layer: XDR wire types, keys and signatures, quorum-set predicates.

Nothing here touches sockets, asyncio, the clock, randomness (except key
generation, which asks the OS on purpose), the file system or global state.
"""
