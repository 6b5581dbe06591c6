"""The kiosk's TLS contexts: one recipe for every server it talks to, and one for its own.

The status service (HTTPS), the MQTT brokers (``mqtts://``) and the doctor's probes of both
use it: the server's certificate verified against ``ca_file`` (or the system trust store),
its host name checked, TLS 1.2 at least, an optional client certificate.
"""

from __future__ import annotations

import ssl

#: No server is spoken to over anything older (TLS 1.0 and 1.1 are deprecated, RFC 8996).
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def client_context(
    *, ca_file: str | None = None, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """A client context verifying the server; raises ``OSError`` or ``ssl.SSLError`` when a
    file is missing or the key does not belong to the certificate (the caller names what the
    context was for)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = MINIMUM_VERSION
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The context of the kiosk's own web server (display.md: TLS beyond loopback); raises
    ``OSError`` or ``ssl.SSLError`` when the certificate or key cannot be used."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = MINIMUM_VERSION
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
