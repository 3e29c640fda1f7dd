"""The consensus core: slots, nomination, ballot protocol (sans-I/O).

Import the public API from here: ``SCP``, ``Driver`` and its enums.
"""

from scpd.scp.driver import Driver, EnvelopeState, TimerId, ValidationLevel
from scpd.scp.scp import SCP

__all__ = ["SCP", "Driver", "EnvelopeState", "TimerId", "ValidationLevel"]
