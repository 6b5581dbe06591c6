"""`systemctl reload ashyq-kiosk` (SIGHUP): read the configuration again.

The signal becomes the same ``reload_config`` command an operator can send (mqtt.md,
Commands), so a reload by signal goes through the controller's one path: the new venue policy
is proposed and takes effect at the time the policy's ``lock_s`` allows, a broken file is
refused with the file and key in the journal, and the command is recorded as an event with
``origin`` ``sighup``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from kiosk.gate.inputs import Command

log = logging.getLogger(__name__)

ORIGIN = "sighup"


def install_reload_handler(emit: Callable[[Command], Any]) -> None:
    """On SIGHUP, emit ``Command("reload_config", origin="sighup")`` (main thread only).

    The handler runs on the main thread between two bytecodes, possibly while that thread
    holds the controller queue's lock: it hands the emit to a new thread, never emits itself.
    """

    def on_hup(_signum: int, _frame: Any) -> None:
        threading.Thread(target=_emit, args=(emit,), name="sighup-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)


def _emit(emit: Callable[[Command], Any]) -> None:
    log.info("SIGHUP: reading the configuration again")
    emit(Command("reload_config", origin=ORIGIN))
