"""A broker and a status responder of the fleet's own, started for one run."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from simulators.broker import Broker
from simulators.fleet.errors import FleetError
from simulators.mqtt_client import DEFAULT_PREFIX


@dataclass
class LocalStack:
    """A mosquitto and a status responder process started for one run."""

    broker: Broker
    responder: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """The broker's URL."""
        return self.broker.url


@contextlib.contextmanager
def local_stack(
    folder: Path | None = None,
    *,
    prefix: str = DEFAULT_PREFIX,
    population_path: Path | None = None,
    timeout: float = 15.0,
) -> Iterator[LocalStack]:
    """Start mosquitto and ``kiosk status-responder`` (a separate process, so its CPU is its
    own), wait until the responder is subscribed, and stop both at the end."""
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-mq-")))
        broker = Broker(Path(folder) / "broker")
        broker.start()
        stack.callback(broker.stop)
        root = Path(__file__).resolve().parents[2]  # the folder holding simulators/
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "kiosk.cli", "status-responder", "--broker", broker.url]
        cmd += ["--prefix", prefix]
        if population_path is not None:
            cmd += ["--population", str(population_path)]
        errors = open(Path(folder) / "responder.log", "wb")  # noqa: SIM115 (closed below)
        stack.callback(errors.close)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, env=env)
        stack.callback(_end_process, proc)
        # The responder prints its request topic once subscribed.
        ready = threading.Event()

        def first_line() -> None:
            assert proc.stdout is not None
            if proc.stdout.readline():
                ready.set()

        threading.Thread(target=first_line, name="fleet-responder-ready", daemon=True).start()
        if not ready.wait(timeout) or proc.poll() is not None:
            raise FleetError(f"status responder did not start; see {Path(folder)}/responder.log")
        yield LocalStack(broker, proc)


def _end_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def have_mosquitto() -> bool:
    """Whether ``--start-broker`` can work here."""
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()
