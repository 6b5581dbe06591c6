"""One TLS recipe for every server the kiosk and its tools talk to: TLS 1.2 at least."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest

from kiosk.tls import MINIMUM_VERSION, client_context
from support import REPO

# The calls that make a TLS context (the standard library's and paho's). Wrapping a socket
# with a context made elsewhere (the web server's) is not one of them.
_MAKERS = {"create_default_context", "SSLContext", "_create_unverified_context", "tls_set"}


def test_client_context_verifies_the_server_with_tls_1_2_at_least() -> None:
    ctx = client_context()
    assert MINIMUM_VERSION is ssl.TLSVersion.TLSv1_2
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_missing_file_is_the_callers_to_name(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        client_context(ca_file=str(tmp_path / "missing.pem"))


def test_only_kiosk_tls_makes_tls_contexts() -> None:
    # Every TLS context comes from kiosk.tls.client_context, so every one has its minimum:
    # the status client, the link, the doctor and the simulators' MQTT clients.
    makers: dict[str, list[str]] = {}
    for root in ("kiosk", "drivers", "simulators", "benchmarks"):
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in _MAKERS:
                        makers.setdefault(rel, []).append(f"{name}:{node.lineno}")
    assert set(makers) <= {"kiosk/tls.py"}, makers
