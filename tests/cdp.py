"""A small Chrome DevTools Protocol client over a raw websocket, to drive a page in a real
headless Chromium in tests (no websocket library is installed; the protocol needs only text
frames: masked from us, unmasked from the browser)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from typing import Any


class CDP:
    """One page's DevTools connection."""

    def __init__(self, ws_url: str) -> None:
        host, rest = ws_url[len("ws://") :].split("/", 1)
        h, p = host.split(":")
        self.sock = socket.create_connection((h, int(p)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(1)
        self.n = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method``; its reply (events in between are dropped)."""
        self.n += 1
        data = json.dumps({"id": self.n, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        size = len(data)
        if size < 126:
            head = bytes([0x81, 0x80 | size])
        elif size < 65536:
            head = bytes([0x81, 0x80 | 126]) + struct.pack(">H", size)
        else:
            head = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", size)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        while True:
            msg = json.loads(self._message())
            if msg.get("id") == self.n:
                return dict(msg)

    def js(self, expr: str) -> Any:
        """Evaluate ``expr`` in the page; its value (None on an exception)."""
        reply = self.send(
            "Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True
        )
        result = reply.get("result", {})
        if "exceptionDetails" in result:
            return None
        return result.get("result", {}).get("value")

    def wait(self, expr: str, timeout: float = 10.0) -> Any:
        """Evaluate ``expr`` until it is truthy (the page updates by itself); its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expr)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)

    def _exact(self, n: int) -> bytes:
        b = b""
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise ConnectionError("the browser went away")
            b += chunk
        return b

    def _message(self) -> bytes:
        out = b""
        while True:
            b1, b2 = self._exact(2)
            size = b2 & 0x7F
            if size == 126:
                size = struct.unpack(">H", self._exact(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self._exact(8))[0]
            out += self._exact(size)
            if b1 & 0x80:
                return out


def chromium() -> str | None:
    """The Chromium on this machine, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def start(port: int) -> tuple[subprocess.Popen[bytes], CDP]:
    """A headless Chromium with its DevTools on ``port``, and its first page."""
    exe = chromium()
    assert exe is not None
    proc = subprocess.Popen(
        [
            exe,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--remote-debugging-port={port}",
            "--window-size=1400,1000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                pages = json.load(r)
            page = next(p for p in pages if p["type"] == "page")
            return proc, CDP(page["webSocketDebuggerUrl"])
        except (OSError, StopIteration, ValueError):
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chromium did not open its DevTools port")
