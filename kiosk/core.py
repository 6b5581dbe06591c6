"""Builds the core's services from a configuration: keys, parser, status lookup, checker, stores.

Hardware is not here (see kiosk/wiring.py); this is everything `kiosk check` and the gate
controller share.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.checker import Checker
from kiosk.clock import Clock
from kiosk.config import Config
from kiosk.credentials import CredentialParser
from kiosk.errors import ConfigError, KioskError
from kiosk.jwks import KeySet, save_last_good
from kiosk.memory import seed_gate_memory
from kiosk.passback import PassbackMemory
from kiosk.pseudonym import Pseudonymizer
from kiosk.replay import ReplayStore
from kiosk.secret import reveal
from kiosk.status.answer import StatusLookup
from kiosk.status.cache import AnswerCache
from kiosk.status.http import HttpStatusClient

log = logging.getLogger(__name__)

LAST_GOOD_KEYS = "passes.last-good.jwks.json"
EVENTS_DB = "events.sqlite"


class PassKeys:
    """The trusted pass keys in force: the configured set plus the last set fetched."""

    def __init__(self, configured: KeySet, last_good: Path) -> None:
        self._configured = configured
        self._last_good_path = last_good
        self._current = configured
        self._lock = threading.Lock()
        if last_good.exists():
            try:
                self._merge(KeySet.load(last_good))
            except KioskError as exc:
                log.warning("ignoring the saved pass keys: %s", exc)

    def __call__(self) -> KeySet:
        # The parser (controller thread) reads what the housekeeping thread's refresh sets.
        with self._lock:
            return self._current

    def _merge(self, fetched: KeySet) -> None:
        keys = {kid: fetched.get(kid) for kid in fetched.kids()}
        keys.update({kid: self._configured.get(kid) for kid in self._configured.kids()})
        with self._lock:
            self._current = KeySet(keys, source="configured + fetched")  # type: ignore[arg-type]

    def refresh(self, client: HttpStatusClient) -> bool:
        """Fetch ``/v1/keys``, adopt it and keep it on disk; False when it could not be had."""
        doc = client.fetch_keys()
        if doc is None:
            return False
        try:
            fetched = KeySet.from_document(doc, source="status service /v1/keys")
        except KioskError as exc:
            log.warning("%s", exc)
            return False
        self._merge(fetched)
        try:
            save_last_good(doc, self._last_good_path)
        except OSError as exc:  # a full card: the keys are in use, just not kept for later
            log.warning("cannot keep the fetched pass keys: %s", exc.strerror)
        log.info("pass keys refreshed: %s", ", ".join(self().kids()))
        return True


@dataclass
class Core:
    """The services of one kiosk, built from its configuration."""

    config: Config
    clock: Clock
    keys: PassKeys
    parser: CredentialParser
    lookup: StatusLookup | None
    cache: AnswerCache
    checker: Checker
    pseudonymize: Pseudonymizer
    replay: ReplayStore
    passback: PassbackMemory
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close connections and stores."""
        for close in self._closers:
            close()


def build_lookup(cfg: Config, clock: Clock) -> StatusLookup | None:
    """The configured status transport, or None when the venue has no status service."""
    st = cfg.status
    if st.backend == "http":
        assert st.url is not None  # the loader requires [status] url for backend "http"
        return HttpStatusClient(
            st.url,
            token=reveal(cfg.token),
            ca_file=st.ca_file,
            client_cert=st.client_cert,
            client_key=st.client_key,
        )
    if st.backend == "none":
        return None
    raise KioskError(f"status backend {st.backend!r} is not available in this build")


def build_core(
    cfg: Config,
    *,
    clock: Clock,
    persistent: bool,
    lookup: StatusLookup | None = None,
    clock_trusted: Callable[[], bool] = lambda: True,
    observe_lookup: Callable[[StatusLookup], StatusLookup] | None = None,
) -> Core:
    """Build the core. With ``persistent`` False (`kiosk check`) nothing is written to disk.

    The replay and anti-passback memories live in memory and are rebuilt from the event
    store's recent passages (read-only), in both modes.
    """
    state = cfg.state_dir
    if persistent:
        state.mkdir(parents=True, exist_ok=True)
    try:
        configured = KeySet.load(cfg.passes.keys_file)
    except KioskError as exc:
        # A broken key file is a configuration error (exit 78): restarting will not mend it.
        raise ConfigError([f"{cfg.path}: [passes] keys_file: {exc}"]) from exc
    keys = PassKeys(configured, state / LAST_GOOD_KEYS)
    replay = ReplayStore(":memory:", clock=clock)
    passback = PassbackMemory(None, clock=clock)
    seed_gate_memory(
        state / EVENTS_DB,
        replay=replay,
        passback=passback,
        now=clock.time(),
        leeway_s=cfg.kiosk.leeway_s,
        anti_passback_s=cfg.policy.anti_passback_s,
    )
    parser = CredentialParser(
        pass_keys=keys,
        trusted_issuers=cfg.passes.issuers,
        leeway_s=cfg.kiosk.leeway_s,
        is_replayed=replay.is_used,
    )
    if lookup is None:
        lookup = build_lookup(cfg, clock)
    pseudonymize = Pseudonymizer(cfg.venue_secret.reveal_bytes())
    cache = AnswerCache(clock=clock)
    # The checker may ask through a wrapper that times each lookup (the metrics); the core
    # keeps the transport itself (key refreshes, probes, close).
    asked = observe_lookup(lookup) if observe_lookup is not None and lookup is not None else lookup
    checker = Checker(
        parser=parser,
        lookup=asked,
        cache=cache,
        pseudonymize=pseudonymize,
        last_passage=passback.last_passage,
        deadline_s=cfg.status.deadline_ms / 1000.0,
        clock=clock,
        clock_trusted=clock_trusted,
    )
    closers = [passback.close, replay.close]
    if lookup is not None:
        closers.append(lookup.close)
    return Core(
        cfg, clock, keys, parser, lookup, cache, checker, pseudonymize, replay, passback, closers
    )
