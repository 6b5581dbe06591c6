"""Property tests: whatever is presented, parse() answers with a credential or a named reason.

Deterministic (derandomized, no example database) and quick: the whole file stays well under
20 s on a busy 2-core machine.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kiosk.credentials import MAX_CODE_BYTES, BareIin, CredentialParser, Refusal, SignedPass
from kiosk.iin import is_valid_iin
from kiosk.jwks import KeySet
from kiosk.reasons import CREDENTIAL_REASONS, Reason
from simulators.issuer import SIM_ISSUER, SIM_PASS_JWKS, SIM_PASS_KID, PassIssuer, sign_compact

NOW = 1_700_000_000
ISSUER = PassIssuer.load()
KEYS = KeySet.load(SIM_PASS_JWKS)
PARSER = CredentialParser(pass_keys=lambda: KEYS, trusted_issuers={SIM_ISSUER}, leeway_s=30.0)
VALID = ISSUER.mint("iin:921029350851", "green", iat=NOW, jti="fuzzJti-0001")
VALID_SIG = base64.urlsafe_b64decode(VALID.split(".")[2] + "==")

FAST = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(result: object) -> object:
    """The contract every answer meets: one of three types, a reason from credentials.md."""
    assert isinstance(result, BareIin | SignedPass | Refusal), result
    if isinstance(result, Refusal):
        assert result.reason in CREDENTIAL_REASONS, result
        assert result.subject is None or isinstance(result.subject, str)
    return result


def test_the_valid_pass_is_valid() -> None:
    assert isinstance(PARSER.parse(VALID, NOW), SignedPass)


# -- random input ---------------------------------------------------------------------------


@settings(FAST, max_examples=400)
@given(st.text(max_size=300))
@example("")
@example("..")
@example("\ud800")
@example("921029350851")
@example("٩٢١٠٢٩٣٥٠٨٥١")
def test_random_text(text: str) -> None:
    result = check(PARSER.parse(text, NOW))
    assert not isinstance(result, SignedPass)  # nobody forges a signature by chance
    if isinstance(result, BareIin):
        assert is_valid_iin(text.strip(" \t\r\n"))


@settings(FAST, max_examples=400)
@given(st.binary(max_size=600))
@example(b"\xff\xfe")
@example(b"\x00" * 12)
def test_random_bytes(data: bytes) -> None:
    result = check(PARSER.parse(data, NOW))
    assert not isinstance(result, SignedPass)


@settings(FAST, max_examples=200)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="))
def test_random_base64url_like_text(text: str) -> None:
    result = check(PARSER.parse(text, NOW))
    assert not isinstance(result, SignedPass)


@settings(FAST, max_examples=40)
@given(
    size=st.integers(min_value=MAX_CODE_BYTES + 1, max_value=200_000),
    fill=st.sampled_from([b"A", b"9", b".", b" ", b"\xff", "é".encode(), VALID.encode()]),
)
def test_giant_inputs_refused(size: int, fill: bytes) -> None:
    data = (fill * (size // len(fill) + 1))[:size]
    assert check(PARSER.parse(data, NOW)) == Refusal(Reason.INVALID_PAYLOAD)


# -- a real pass, damaged -------------------------------------------------------------------


def test_every_truncation_of_a_valid_pass_is_refused() -> None:
    for cut in range(len(VALID)):
        result = check(PARSER.parse(VALID[:cut], NOW))
        assert isinstance(result, Refusal), cut
        assert result.subject is None, cut  # nothing verified, nobody named


def test_every_suffix_of_a_valid_pass_is_refused() -> None:
    for cut in range(1, len(VALID)):
        result = check(PARSER.parse(VALID[cut:], NOW))
        assert isinstance(result, Refusal), cut


def _decoded_sig(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text.split(".")[2] + "==")
    except Exception:  # noqa: BLE001 - any undecodable segment is simply no signature
        return None


@settings(FAST, max_examples=500)
@given(pos=st.integers(min_value=0, max_value=len(VALID) - 1), byte=st.integers(0, 255))
def test_single_byte_mutations_of_a_valid_pass(pos: int, byte: int) -> None:
    data = bytearray(VALID.encode())
    if data[pos] == byte:
        return
    data[pos] = byte
    result = check(PARSER.parse(bytes(data), NOW))
    if isinstance(result, SignedPass):
        # Only a re-spelling of the signature's last character can keep the pass valid: the
        # same 64 bytes (see the BUG test on non-canonical base64url in test_credentials.py).
        text = bytes(data).decode()
        assert text.split(".")[:2] == VALID.split(".")[:2]
        assert _decoded_sig(text) == VALID_SIG
        assert pos == len(VALID) - 1


@settings(FAST, max_examples=200)
@given(
    pos=st.integers(min_value=0, max_value=len(VALID)),
    insert=st.binary(min_size=1, max_size=4),
)
def test_insertions_into_a_valid_pass(pos: int, insert: bytes) -> None:
    data = VALID.encode()[:pos] + insert + VALID.encode()[pos:]
    result = check(PARSER.parse(data, NOW))
    if isinstance(result, SignedPass):
        # Only whitespace the page strips, added at either end.
        assert data.strip(b" \t\r\n") == VALID.encode()


@settings(FAST, max_examples=200)
@given(pos=st.integers(min_value=0, max_value=len(VALID) - 1), n=st.integers(1, 8))
def test_deletions_from_a_valid_pass(pos: int, n: int) -> None:
    data = VALID[:pos] + VALID[pos + n :]
    assert isinstance(check(PARSER.parse(data, NOW)), Refusal)


# -- random JSON, properly signed by the trusted key -----------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _field(good: Any, choices: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value (to get deep into the checks), sometimes anything at all."""
    return st.one_of(st.just(good), st.sampled_from(choices), JSON)


_MISSING = object()

HEADERS = st.fixed_dictionaries(
    {
        "alg": _field("EdDSA", ["none", "HS256", "eddsa", _MISSING]),
        "kid": _field(SIM_PASS_KID, ["other", "", _MISSING]),
        "typ": _field(_MISSING, ["ashyq-pass+jwt", "JWT"]),
    },
).flatmap(
    lambda h: st.dictionaries(st.text(max_size=4), JSON, max_size=2).map(lambda x: {**x, **h})
)

CLAIMS = st.fixed_dictionaries(
    {
        "iss": _field(SIM_ISSUER, ["other", _MISSING]),
        "sub": _field(
            "iin:921029350851",
            ["iin:921029350852", "passport:DEU:C01X00T47", "passport:deu:X", _MISSING],
        ),
        "st": _field("green", ["blue", "yellow", "red", "purple", _MISSING]),
        "iat": _field(NOW, [NOW - 100, NOW + 100, NOW - 10_000, NOW + 10_000, float(NOW)]),
        "exp": _field(NOW + 300, [NOW, NOW + 600, NOW + 601, NOW - 1, _MISSING]),
        "nbf": _field(_MISSING, [NOW, NOW + 1000, None]),
        "jti": _field("fuzzJti-0002", ["short", "x" * 65, "bad.jti!", _MISSING]),
    }
).flatmap(
    lambda c: st.dictionaries(st.text(max_size=4), JSON, max_size=2).map(lambda x: {**x, **c})
)


def _drop_missing(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not _MISSING}


@settings(FAST, max_examples=400)
@given(header=HEADERS, claims=CLAIMS, now=st.sampled_from([NOW, NOW - 5000, NOW + 5000]))
# BUG: the two examples below raise out of parse() (TypeError on an unhashable `st`,
# OverflowError on an integer time beyond float range); see test_credentials.py.
@example(header={"alg": "EdDSA", "kid": SIM_PASS_KID}, claims={"st": []}, now=NOW)
@example(
    header={"alg": "EdDSA", "kid": SIM_PASS_KID},
    claims={"iat": 10**400, "exp": 10**400 + 1},
    now=NOW,
)
def test_random_json_signed_with_the_trusted_key(
    header: dict[str, Any], claims: dict[str, Any], now: int
) -> None:
    if claims.keys() <= {"st", "iat", "exp"}:  # the explicit examples: fill in the rest
        claims = {
            "iss": SIM_ISSUER,
            "sub": "iin:921029350851",
            "st": "green",
            "iat": NOW,
            "exp": NOW + 300,
            "jti": "fuzzJti-0003",
            **claims,
        }
    header, claims = _drop_missing(header), _drop_missing(claims)
    token = sign_compact(header, claims, ISSUER.private_key)
    result = check(PARSER.parse(token, now))
    if len(token.encode()) > MAX_CODE_BYTES:
        assert result == Refusal(Reason.INVALID_PAYLOAD)
    if isinstance(result, SignedPass):
        # Accepted only what the page allows.
        assert header.get("alg") == "EdDSA" and header.get("kid") == SIM_PASS_KID
        assert header.get("typ", "ashyq-pass+jwt") == "ashyq-pass+jwt"
        assert claims["iss"] == SIM_ISSUER
        assert result.subject == claims["sub"] and result.st == claims["st"]
        assert type(claims["iat"]) is int and type(claims["exp"]) is int
        assert 0 < claims["exp"] - claims["iat"] <= 600
        assert claims["iat"] - 30 <= now < claims["exp"] + 30
    if isinstance(result, Refusal) and result.subject is not None:
        assert result.subject == claims["sub"]


@settings(FAST, max_examples=150)
@given(header=JSON, claims=JSON)
def test_arbitrary_json_values_as_header_and_claims(header: Any, claims: Any) -> None:
    signing_input = ".".join(
        base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()
        for v in (header, claims)
    )
    sig = ISSUER.private_key.sign(signing_input.encode())
    token = signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    result = check(PARSER.parse(token, NOW))
    assert not isinstance(result, SignedPass)
