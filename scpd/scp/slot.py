"""One consensus slot (placeholder: the implementation lands in the next commits)."""

from __future__ import annotations

from typing import Any

from scpd.base.types import NodeID, SCPEnvelope
from scpd.scp.driver import Driver, EnvelopeState
from scpd.scp.local_node import LocalNode


class Slot:
    def __init__(self, slot_index: int, driver: Driver, local_node: LocalNode) -> None:
        self.slot_index = slot_index
        self.driver = driver
        self.local_node = local_node
        self.externalized_value: bytes | None = None
        self.fully_validated = local_node.is_validator

    def process_envelope(self, envelope: SCPEnvelope, self_envelope: bool) -> EnvelopeState:
        raise NotImplementedError

    def nominate(self, value: bytes, prev_value: bytes, timed_out: bool) -> bool:
        raise NotImplementedError

    def stop_nomination(self) -> None:
        raise NotImplementedError

    def set_state_from_envelope(self, envelope: SCPEnvelope) -> None:
        raise NotImplementedError

    def get_latest_messages_send(self) -> list[SCPEnvelope]:
        raise NotImplementedError

    def get_externalizing_state(self) -> list[SCPEnvelope]:
        raise NotImplementedError

    def get_latest_message(self, node_id: NodeID) -> SCPEnvelope | None:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def stop_all_timers(self) -> None:
        raise NotImplementedError
