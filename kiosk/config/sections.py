"""The validated configuration as typed, frozen records: one dataclass per section.

The schema (kiosk/config/schema.py) stays the one source of keys, defaults and limits; the
dataclasses here only give the validated values their Python types, so that ``cfg.gate.unlock_s``
is a float to mypy as well as at run time. `tests/test_config_sections.py` checks every schema
key against its field (name, type, choices as ``Literal``) and every field against the schema,
so the two cannot drift; `build_section` refuses a section whose keys differ from its fields.

Lists of the TOML file become tuples (the records are immutable) and secrets become
:class:`~kiosk.secret.Secret`, which prints as ``***``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from kiosk.config.schema import SECTIONS
from kiosk.policy import VenuePolicy
from kiosk.secret import MASK, Secret

Status = Literal["green", "blue", "yellow", "red"]

FILLED_BY_LOADER = frozenset({("kiosk", "state_dir"), ("web", "accounts_file")})
"""Keys whose schema default is None but which the loader always fills in (from the
environment's STATE_DIRECTORY or the packaged default), so their field is never None."""


@dataclass(frozen=True, kw_only=True)
class Section:
    """The validated keys of one section (base of the section records)."""

    def as_dict(self) -> dict[str, Any]:
        """The section as a dict in TOML's types (tuples as lists); secrets stay
        :class:`Secret`. For walking the keys by name (commissioning checks, tests)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, kw_only=True)
class KioskSection(Section):
    """[kiosk]: who this kiosk is, where its state lives, its venue secret."""

    id: str
    venue_id: str
    state_dir: str
    venue_secret: Secret | None
    venue_secret_file: str | None
    leeway_s: float
    log_level: Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, kw_only=True)
class PassesSection(Section):
    """[passes]: the issuers trusted and their keys."""

    issuers: tuple[str, ...]
    keys_file: str
    refresh_keys: bool


@dataclass(frozen=True, kw_only=True)
class OperatorsSection(Section):
    """[operators]: the keys that sign operator commands."""

    keys_file: str | None


@dataclass(frozen=True, kw_only=True)
class StatusSection(Section):
    """[status]: the status service and how to reach it."""

    backend: Literal["http", "mqtt", "none"]
    url: str | None
    token: Secret | None
    token_file: str | None
    ca_file: str | None
    client_cert: str | None
    client_key: str | None
    deadline_ms: int


@dataclass(frozen=True, kw_only=True)
class PolicySection(Section):
    """[policy] as written (the [[policy.hours]] and [[policy.rule]] tables are in
    ``Config.policy``, the :class:`~kiosk.policy.VenuePolicy` built from all of it)."""

    name: str
    timezone: str
    allowed: tuple[Status, ...]
    capacity: int
    anti_passback: Literal["off", "soft", "hard"]
    anti_passback_s: float
    offline_rule: Literal["deny", "refer", "pass"]
    max_pass_age_s: float
    lock_s: float


@dataclass(frozen=True, kw_only=True)
class GateSection(Section):
    """[gate]: unlock and light timings, fail-safe or fail-secure."""

    unlock_s: float
    cooldown_s: float
    left_view_s: float
    fail_safe: bool
    idle_light: Literal["dim", "off"]
    deny_light_s: float
    refer_light_s: float


@dataclass(frozen=True, kw_only=True)
class CameraSection(Section):
    """[camera]: the QR camera."""

    enabled: bool
    url: str
    width: int
    height: int
    fps: int
    decoder: Literal["zxing", "pyzbar"]
    reconnect_max_s: float


@dataclass(frozen=True, kw_only=True)
class ScannerSection(Section):
    """[scanner]: the serial barcode scanner."""

    enabled: bool
    url: str
    baud: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
    reconnect_max_s: float


@dataclass(frozen=True, kw_only=True)
class GpioSection(Section):
    """[gpio]: BCM pins of the relay, lights, buzzer and contacts (-1: not wired)."""

    pin_factory: Literal["default", "lgpio", "rpigpio", "mock"]
    relay: int
    relay_active_high: bool
    led_kind: Literal["rgb", "three"]
    led_red: int
    led_green: int
    led_blue: int
    led_amber: int
    buzzer: int
    passage_sensor: int
    exit_sensor: int
    fire_alarm: int


@dataclass(frozen=True, kw_only=True)
class MqttSection(Section):
    """[mqtt]: the fleet brokers."""

    enabled: bool
    brokers: tuple[str, ...]
    prefix: str
    client_id: str | None
    username: str | None
    password: Secret | None
    password_file: str | None
    ca_file: str | None
    client_cert: str | None
    client_key: str | None
    keepalive_s: int
    retention_s: float
    max_events: int


@dataclass(frozen=True, kw_only=True)
class WebSection(Section):
    """[web]: the kiosk's own web server (display, console, metrics; display.md)."""

    enabled: bool
    listen: str
    tls_cert: str | None
    tls_key: str | None
    allow_plain_remote: bool
    accounts_file: str
    languages: tuple[Literal["kk", "ru", "en"], ...]
    show_holder: bool
    metrics_token: Secret | None
    metrics_token_file: str | None
    session_s: float

    @property
    def host_port(self) -> tuple[str, int]:
        """The listen address as (host, port); the loader has checked its form."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True, kw_only=True)
class MetricsSection(Section):
    """[metrics]: the node_exporter textfile, besides the /metrics page."""

    textfile: str | None
    textfile_period_s: float


SECTION_TYPES: dict[str, type[Section]] = {
    "kiosk": KioskSection,
    "passes": PassesSection,
    "operators": OperatorsSection,
    "status": StatusSection,
    "policy": PolicySection,
    "gate": GateSection,
    "camera": CameraSection,
    "scanner": ScannerSection,
    "gpio": GpioSection,
    "mqtt": MqttSection,
    "web": WebSection,
    "metrics": MetricsSection,
}
ATTRIBUTES = {name: name for name in SECTION_TYPES} | {"policy": "policy_section"}
"""The Config attribute of each section: ``cfg.policy`` is the venue policy built from
[policy] and its tables, so the section as written is ``cfg.policy_section``."""

S = TypeVar("S", bound=Section)


def build_section(cls: type[S], name: str, values: dict[str, Any]) -> S:
    """The record of section ``name`` from its validated values."""
    keys = SECTIONS[name]
    names = {f.name for f in fields(cls)}
    if names != set(keys) or set(values) != names:
        # A bug, not a configuration problem: the schema and the records disagree.
        raise RuntimeError(f"[{name}]: the schema's keys and {cls.__name__}'s fields differ")
    args: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, list):
            value = tuple(value)
        elif keys[key].secret and value is not None:
            value = Secret(value)
        args[key] = value
    return cls(**args)


@dataclass(frozen=True, kw_only=True)
class Config:
    """A validated configuration: one typed record per section, the venue policy, and the
    resolved secrets (inline or read from their ``*_file``)."""

    path: Path
    kiosk: KioskSection
    passes: PassesSection
    operators: OperatorsSection
    status: StatusSection
    policy_section: PolicySection
    gate: GateSection
    camera: CameraSection
    scanner: ScannerSection
    gpio: GpioSection
    mqtt: MqttSection
    web: WebSection
    metrics: MetricsSection
    policy: VenuePolicy
    venue_secret: Secret
    token: Secret | None = None
    mqtt_password: Secret | None = None
    metrics_token: Secret | None = None
    #: The venue's own display lines, ``[web.messages.LANG]``, as (language, key, line)
    #: triples (a Config is hashable); ``message_overrides`` gives them as a mapping.
    messages: tuple[tuple[str, str, str], ...] = ()

    def message_overrides(self) -> dict[str, dict[str, str]]:
        """The venue's display lines: language -> message key -> line."""
        out: dict[str, dict[str, str]] = {}
        for lang, key, line in self.messages:
            out.setdefault(lang, {})[key] = line
        return out

    @property
    def state_dir(self) -> Path:
        """Where the event store and other state live."""
        return Path(self.kiosk.state_dir)

    def section(self, name: str) -> Section:
        """The record of the section called ``name`` in the file ("policy" included)."""
        if name not in ATTRIBUTES:
            raise KeyError(name)
        section: Section = getattr(self, ATTRIBUTES[name])
        return section

    def masked(self) -> dict[str, dict[str, Any]]:
        """The configuration with every secret replaced by ``***``, for printing."""
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            values = self.section(name).as_dict()
            out[name] = {k: (MASK if isinstance(v, Secret) else v) for k, v in values.items()}
        if self.messages:
            out["web"]["messages"] = self.message_overrides()
        return out


def build_config(
    path: Path,
    values: dict[str, dict[str, Any]],
    policy: VenuePolicy,
    venue_secret: str,
    token: str | None,
    mqtt_password: str | None,
    *,
    metrics_token: str | None = None,
    messages: Mapping[str, Mapping[str, str]] | None = None,
) -> Config:
    """The Config of validated ``values`` (section name to key to value) and secrets."""
    return Config(
        path=path,
        kiosk=build_section(KioskSection, "kiosk", values["kiosk"]),
        passes=build_section(PassesSection, "passes", values["passes"]),
        operators=build_section(OperatorsSection, "operators", values["operators"]),
        status=build_section(StatusSection, "status", values["status"]),
        policy_section=build_section(PolicySection, "policy", values["policy"]),
        gate=build_section(GateSection, "gate", values["gate"]),
        camera=build_section(CameraSection, "camera", values["camera"]),
        scanner=build_section(ScannerSection, "scanner", values["scanner"]),
        gpio=build_section(GpioSection, "gpio", values["gpio"]),
        mqtt=build_section(MqttSection, "mqtt", values["mqtt"]),
        web=build_section(WebSection, "web", values["web"]),
        metrics=build_section(MetricsSection, "metrics", values["metrics"]),
        policy=policy,
        venue_secret=Secret(venue_secret),
        token=None if token is None else Secret(token),
        mqtt_password=None if mqtt_password is None else Secret(mqtt_password),
        metrics_token=None if metrics_token is None else Secret(metrics_token),
        messages=tuple(
            (lang, key, line)
            for lang, lines in (messages or {}).items()
            for key, line in lines.items()
        ),
    )
