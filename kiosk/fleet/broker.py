"""One way to reach an MQTT broker: its URL, its TLS context, a cheap reachability probe.

The kiosk's link, the doctor, the simulated status responder and the technician's command
signer all parse broker URLs here, so each refuses exactly what the others refuse
(mqtt.md: ``mqtt://host[:port]``, default port 1883, or ``mqtts://host[:port]``, 8883).
The kiosk takes its user name and password from [mqtt]; only the simulators and
technician tools, whose single option is the URL, may carry them in it (``credentials``).
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from kiosk.errors import KioskError

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

PORT = 1883
TLS_PORT = 8883
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/]*@")  # greedy: the netloc ends at its last @


class BrokerUrlError(KioskError):
    """A broker URL that cannot be used; ``url`` is shown with any password masked."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"broker URL {url!r}: {problem}")
        self.url = url
        self.problem = problem


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """One parsed broker URL. ``str()`` of it never shows the user name or password."""

    url: str = field(repr=False)  # as given: it may hold a password (credentials=True)
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """``host:port``, as the journal names a broker."""
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def masked(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", url)


def parse_broker_url(url: str, *, credentials: bool = False) -> BrokerUrl:
    """Parse ``mqtt://host[:port]`` or ``mqtts://host[:port]``; BrokerUrlError naming the problem.

    With ``credentials`` a ``user[:password]@`` part is allowed (percent-decoded); without,
    it is refused: the kiosk's credentials belong in [mqtt] username and password.
    """
    shown = masked(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port out of range or not a number, a broken [IPv6] host
        raise BrokerUrlError(shown, str(exc)) from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(shown, "scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise BrokerUrlError(shown, "no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(shown, "must be mqtt://host:port, without a path or query")
    if port == 0:
        raise BrokerUrlError(shown, "port 0 is no broker's port")
    has_user = parts.username is not None or parts.password is not None
    if has_user and not credentials:
        raise BrokerUrlError(
            shown, "no user name or password in the URL: set [mqtt] username and password"
        )
    tls = parts.scheme == "mqtts"
    return BrokerUrl(
        url,
        parts.hostname,
        port if port is not None else (TLS_PORT if tls else PORT),
        tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def build_ssl_context(
    *, ca_file: str | None = None, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """The TLS context for ``mqtts`` brokers (kiosk.tls: server verified, TLS 1.2 at least,
    optional client certificate); KioskError naming the problem."""
    # Imported here: the configuration checks URLs with this module, and `kiosk release`
    # loads the configuration without needing TLS.
    import ssl

    from kiosk.tls import client_context

    try:
        return client_context(ca_file=ca_file, client_cert=client_cert, client_key=client_key)
    except (OSError, ssl.SSLError) as exc:
        raise KioskError(f"MQTT TLS set-up failed: {exc}") from exc


def reachable(broker: BrokerUrl, *, timeout: float) -> bool:
    """Whether the broker accepts TCP connections (a cheap probe, before failing back)."""
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout):
            return True
    except OSError:
        return False


def no_delay(sock: Any) -> None:
    """Send small packets at once. With Nagle's algorithm a status request or response waits
    for the previous packet's delayed ACK (about 40 ms per hop; benchmarks/bench_mqtt.py)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError) as exc:  # a non-TCP transport has no such option
        log.debug("TCP_NODELAY not set: %s", exc)
