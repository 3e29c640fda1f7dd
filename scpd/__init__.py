"""scpd: a validator daemon for the Stellar Consensus Protocol."""

__version__ = "0.1.0"
