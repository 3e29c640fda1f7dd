"""The one exception hierarchy of scpd.

Every error a user or a peer can provoke derives from ``ScpdError``, so the CLI
can turn any of them into one line and an exit code, and the node can count
and log them without catching unrelated bugs.
"""


class ScpdError(Exception):
    """Base of every error scpd raises on purpose."""

    exit_code = 1


class XdrError(ScpdError):
    """Bytes that are not a valid XDR encoding of the expected type."""

    exit_code = 2


class KeyFormatError(ScpdError):
    """A strkey, seed or raw key that is malformed."""

    exit_code = 2


class QuorumSetError(ScpdError):
    """A quorum set that breaks one of the sanity rules."""

    exit_code = 2


class ConfigError(ScpdError):
    """A configuration file that cannot be used."""

    exit_code = 2


class UsageError(ScpdError):
    """Bad input given to a CLI command."""

    exit_code = 2


class OverlayError(ScpdError):
    """A peer connection that breaks the overlay protocol (framing, handshake, authentication)."""


class LedgerError(ScpdError):
    """A ledger database that cannot be used (not scpd's, corrupt, truncated, newer schema) or a refused write."""

    exit_code = 2


class ConsensusError(ScpdError):
    """The consensus core was misused by its caller or reached a state it must never reach."""
