"""The kiosk's TLS client contexts: one recipe for every server it talks to.

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
