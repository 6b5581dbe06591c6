"""Moved to kiosk/gate/inputs.py; this name stays only until drivers/camera.py and its tests
import from there (another change owns them). New code imports kiosk.gate.inputs."""

from kiosk.gate.inputs import (
    CodeRead,
    Command,
    CommandRefused,
    DeviceStatus,
    Emit,
    Event,
    ExitSensed,
    FireAlarmInput,
    LookupDone,
    PassageSensed,
    Stop,
)

__all__ = [
    "CodeRead",
    "Command",
    "CommandRefused",
    "DeviceStatus",
    "Emit",
    "Event",
    "ExitSensed",
    "FireAlarmInput",
    "LookupDone",
    "PassageSensed",
    "Stop",
]
