"""Every reason of credentials.md, in the page's order of checks (the first failure names it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.credentials import MAX_CODE_BYTES, BareIin, CredentialParser, Refusal, SignedPass
from kiosk.jwks import KeySet
from kiosk.reasons import Reason
from simulators.issuer import OMIT, SIM_ISSUER, SIM_PASS_JWKS, SIM_PASS_KID, PassIssuer

NOW = 1_700_000_000
L = 30
IIN = "921029350851"
SUB = "iin:" + IIN
ISSUER = PassIssuer.load()
KEYS = KeySet.load(SIM_PASS_JWKS)
OTHER_KEY = Ed25519PrivateKey.generate()

P = Reason.INVALID_PAYLOAD
IIN_BAD = Reason.INVALID_IIN
SIG = Reason.BAD_SIGNATURE
KEY = Reason.UNTRUSTED_KEY


# -- local helpers: raw JWS pieces the issuer cannot express --------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_token(header: bytes, claims: bytes, key: Ed25519PrivateKey | None = None) -> str:
    """A compact JWS of arbitrary header and claims bytes, signed (by default) with the sim key."""
    signing_input = f"{b64(header)}.{b64(claims)}"
    sig = (key or ISSUER.private_key).sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64(sig)}"


def good_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": SIM_ISSUER,
        "sub": SUB,
        "st": "green",
        "iat": NOW,
        "exp": NOW + 300,
        "jti": "abcdEFGH1234",
    }
    claims.update(overrides)
    return claims


def good_header(**overrides: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "EdDSA", "kid": SIM_PASS_KID}
    header.update(overrides)
    return header


def enc(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def mint(**kwargs: Any) -> str:
    kwargs.setdefault("iat", NOW)
    kwargs.setdefault("jti", "abcdEFGH1234")
    sub = kwargs.pop("sub", SUB)
    status = kwargs.pop("st", "green")
    return ISSUER.mint(sub, status, **kwargs)


@pytest.fixture
def parser() -> CredentialParser:
    return CredentialParser(pass_keys=lambda: KEYS, trusted_issuers={SIM_ISSUER}, leeway_s=L)


def refused(result: object, reason: Reason) -> bool:
    return isinstance(result, Refusal) and result.reason is reason


# -- a valid pass, as the baseline every negative case departs from -------------------------


def test_valid_pass_accepted(parser: CredentialParser) -> None:
    result = parser.parse(mint(), NOW)
    assert result == SignedPass(subject=SUB, st="green", iat=NOW, exp=NOW + 300, jti="abcdEFGH1234")


def test_valid_pass_as_bytes_accepted(parser: CredentialParser) -> None:
    assert isinstance(parser.parse(mint().encode(), NOW), SignedPass)


def test_pass_keys_are_asked_on_every_parse() -> None:
    # A refreshed key set takes effect at once.
    fresh = PassIssuer(Ed25519PrivateKey.generate(), kid="new1", iss=SIM_ISSUER)
    current = {"keys": KEYS}
    parser = CredentialParser(pass_keys=lambda: current["keys"], trusted_issuers={SIM_ISSUER})
    token = fresh.mint(SUB, "green", iat=NOW, jti="abcdEFGH1234")
    assert refused(parser.parse(token, NOW), KEY)
    current["keys"] = KeySet.from_document(fresh.jwks(), source="refresh")
    assert isinstance(parser.parse(token, NOW), SignedPass)


# -- size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_size_limit_exactly_2048_bytes_ok_2049_refused(
    parser: CredentialParser, as_bytes: bool
) -> None:
    ok = IIN + " " * (MAX_CODE_BYTES - len(IIN))
    over = ok + " "
    assert len(ok.encode()) == 2048
    conv = (lambda s: s.encode()) if as_bytes else (lambda s: s)
    assert parser.parse(conv(ok), NOW) == BareIin(SUB)
    assert refused(parser.parse(conv(over), NOW), P)


def test_trailing_whitespace_that_makes_a_pass_exceed_2048_refused(
    parser: CredentialParser,
) -> None:
    token = mint()
    fits = token + "\r\n" * ((MAX_CODE_BYTES - len(token)) // 2)
    fits += " " * (MAX_CODE_BYTES - len(fits))
    assert len(fits) == MAX_CODE_BYTES
    assert isinstance(parser.parse(fits, NOW), SignedPass)
    assert refused(parser.parse(fits + "\n", NOW), P)
    assert refused(parser.parse("\t" * (MAX_CODE_BYTES + 1 - len(token)) + token, NOW), P)


def test_size_is_counted_in_bytes_not_characters(parser: CredentialParser) -> None:
    # 1025 two-byte characters are 2050 bytes: refused before anything else.
    assert refused(parser.parse("é" * 1025, NOW), P)
    assert refused(parser.parse(("é" * 1025).encode(), NOW), P)


def test_giant_input_refused(parser: CredentialParser) -> None:
    assert refused(parser.parse(b"A" * 1_000_000, NOW), P)
    assert refused(parser.parse(mint() * 20, NOW), P)


def test_oversized_valid_looking_pass_refused_by_size(parser: CredentialParser) -> None:
    # A genuinely signed pass whose (ignored) extra claim pushes it over the limit.
    token = mint(extra_claims={"pad": "x" * 1600})
    assert len(token) > MAX_CODE_BYTES
    assert refused(parser.parse(token, NOW), P)


# -- UTF-8 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"921029350851\xff",
        b"\xfe921029350851",
        b"\xc0\xb1",  # overlong "1"
        b"\xed\xa0\x80",  # an encoded surrogate
        b"\xa0921029350851",  # Latin-1 non-breaking space
        b"\x80",
        b"92102935085\xc2",  # truncated sequence
    ],
)
def test_non_utf8_bytes_refused(parser: CredentialParser, data: bytes) -> None:
    assert refused(parser.parse(data, NOW), P)


def test_non_utf8_byte_appended_to_a_valid_pass_refused(parser: CredentialParser) -> None:
    assert refused(parser.parse(mint().encode() + b"\x80", NOW), P)


def test_lone_surrogate_in_text_refused(parser: CredentialParser) -> None:
    assert refused(parser.parse("\ud800" + IIN, NOW), P)


# -- whitespace -----------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [" ", "\t", "\r", "\n", "\r\n", " \t\r\n \n"])
def test_space_tab_cr_lf_stripped_around_an_iin(parser: CredentialParser, pad: str) -> None:
    assert parser.parse(pad + IIN + pad, NOW) == BareIin(SUB)
    assert parser.parse(IIN + pad, NOW) == BareIin(SUB)


@pytest.mark.parametrize("pad", ["\r", "\n", "\r\n", "  \t"])
def test_space_tab_cr_lf_stripped_around_a_pass(parser: CredentialParser, pad: str) -> None:
    assert isinstance(parser.parse(pad + mint() + pad, NOW), SignedPass)


@pytest.mark.parametrize(
    "pad",
    [
        "\u00a0",  # non-breaking space
        "\u2003",  # em space
        "\u200b",  # zero-width space
        "\ufeff",  # byte order mark
        "\v",
        "\f",
        "\x00",
        "\x85",  # NEL
        "\u2028",  # line separator
    ],
)
def test_other_whitespace_not_stripped(parser: CredentialParser, pad: str) -> None:
    assert refused(parser.parse(pad + IIN, NOW), P)
    assert refused(parser.parse(IIN + pad, NOW), P)
    assert refused(parser.parse(mint() + pad, NOW), P)


def test_inner_whitespace_not_stripped(parser: CredentialParser) -> None:
    assert refused(parser.parse("921029 350851", NOW), P)
    token = mint()
    assert refused(parser.parse(token[:20] + "\n" + token[20:], NOW), P)


# -- bare IIN -------------------------------------------------------------------------------


@pytest.mark.parametrize("iin", ["921029350851", "061211600012"])
def test_valid_bare_iin(parser: CredentialParser, iin: str) -> None:
    assert parser.parse(iin, NOW) == BareIin("iin:" + iin)


@pytest.mark.parametrize(
    "iin",
    [
        "921029350852",  # check digit
        "921329350854",  # month 13
        "920029350859",  # month 00
        "921032350856",  # day 32
        "921000350858",  # day 00
        "921029750855",  # century 7
        "921029950853",  # century 9
        "000000000000",
    ],
)
def test_invalid_bare_iin(parser: CredentialParser, iin: str) -> None:
    assert refused(parser.parse(iin, NOW), IIN_BAD)


def test_bare_iin_refusal_carries_no_subject(parser: CredentialParser) -> None:
    assert parser.parse("921029350852", NOW) == Refusal(IIN_BAD)


@pytest.mark.parametrize(
    "text",
    [
        "٩٢١٠٢٩٣٥٠٨٥١",  # Arabic-Indic digits
        "۹۲۱۰۲۹۳۵۰۸۵۱",  # Extended Arabic-Indic
        "９２１０２９３５０８５１",  # fullwidth
        "92102935085١",
        "92102935085",
        "9210293508510",
        "iin:921029350851",
        "",
        "   ",
    ],
)
def test_not_an_iin_is_invalid_payload(parser: CredentialParser, text: str) -> None:
    assert refused(parser.parse(text, NOW), P)


# -- shape ----------------------------------------------------------------------------------


def _shape_cases() -> list[tuple[str, str]]:
    h, c, s = mint().split(".")
    return [
        ("one dot", f"{h}.{c}"),
        ("three dots", f"{h}.{c}.{s}.{s}"),
        ("trailing dot", f"{h}.{c}.{s}."),
        ("empty header", f".{c}.{s}"),
        ("empty claims", f"{h}..{s}"),
        ("empty signature", f"{h}.{c}."),
        ("only dots", ".."),
        ("padding on signature", f"{h}.{c}.{s}=="),
        ("padding on header", f"{h}=.{c}.{s}"),
        ("plus", f"{h}.{c}.{s[:-1]}+"),
        ("slash", f"{h}.{c[:-1]}/.{s}"),
        ("space inside", f"{h}.{c} .{s}"),
        ("non-ascii letter", f"{h}.{c}.{s[:-1]}é"),
        ("no dots", h + c + s),
        ("plain text", "hello world"),
        ("url", "https://example.org/pass?x=1"),
    ]


@pytest.mark.parametrize(("name", "text"), _shape_cases(), ids=[n for n, _ in _shape_cases()])
def test_bad_shape_is_invalid_payload(parser: CredentialParser, name: str, text: str) -> None:
    assert refused(parser.parse(text, NOW), P)


def test_header_segment_of_impossible_length_is_invalid_payload(parser: CredentialParser) -> None:
    h, c, s = mint().split(".")
    bad = h + "A" * ((1 - len(h)) % 4)  # length 1 mod 4: no encoder produces it
    assert len(bad) % 4 == 1
    assert refused(parser.parse(f"{bad}.{c}.{s}", NOW), P)


# -- header ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"not json",
        b"",
        b"[]",
        b'["EdDSA","sim1"]',
        b'"EdDSA"',
        b"42",
        b"null",
        b'{"alg":"EdDSA","kid":"sim1"',  # truncated
        b'{"alg":"EdDSA","kid":"sim1"}x',  # trailing garbage
        b'{"alg":"EdDSA","alg":"EdDSA","kid":"sim1"}',  # repeated key, same value
        b'{"alg":"none","kid":"sim1","alg":"EdDSA"}',  # repeated key: last-wins would pass
        b'{"kid":"sim1","alg":"EdDSA","kid":"sim1"}',
        b'{"alg":"EdDSA","kid":"sim1","x":NaN}',
        b'{"alg":"EdDSA","kid":"sim1","x":Infinity}',
        b'{"alg":"EdDSA","kid":"sim1","x":"\xff"}',  # not UTF-8
        b"\xef\xbb\xbf" + b'{"alg":"EdDSA","kid":"sim1"}',  # BOM
        b"{'alg':'EdDSA','kid':'sim1'}",
    ],
)
def test_header_not_a_json_object_is_invalid_payload(
    parser: CredentialParser, header: bytes
) -> None:
    if not header:
        # An empty header has an empty segment: the shape already refuses it.
        token = "." + raw_token(b"{}", enc(good_claims())).split(".", 1)[1]
    else:
        token = raw_token(header, enc(good_claims()))
    result = parser.parse(token, NOW)
    assert result == Refusal(P)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "ASHYQ-PASS+JWT", "ashyq-pass", "", 1, None, []])
def test_wrong_typ_is_invalid_payload(parser: CredentialParser, typ: Any) -> None:
    assert parser.parse(mint(extra_header={"typ": typ}), NOW) == Refusal(P)


def test_correct_typ_accepted(parser: CredentialParser) -> None:
    assert isinstance(parser.parse(mint(extra_header={"typ": "ashyq-pass+jwt"}), NOW), SignedPass)


def test_unknown_header_fields_ignored(parser: CredentialParser) -> None:
    extra = {"cty": "whatever", "x5u": "https://example.org", "crit": ["b64"], "zz": {"a": [1]}}
    assert isinstance(parser.parse(mint(extra_header=extra), NOW), SignedPass)


# -- alg ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alg",
    ["none", "None", "HS256", "RS256", "ES256", "eddsa", "EDDSA", "Ed25519", "EdDSA ", "", None, 1],
)
def test_alg_other_than_eddsa_is_bad_signature(parser: CredentialParser, alg: Any) -> None:
    assert parser.parse(mint(extra_header={"alg": alg}), NOW) == Refusal(SIG)


def test_alg_as_list_is_bad_signature(parser: CredentialParser) -> None:
    assert parser.parse(mint(extra_header={"alg": ["EdDSA"]}), NOW) == Refusal(SIG)


def test_missing_alg_is_bad_signature(parser: CredentialParser) -> None:
    assert parser.parse(mint(extra_header={"alg": OMIT}), NOW) == Refusal(SIG)


def test_alg_none_with_empty_signature_fails_the_shape_first(parser: CredentialParser) -> None:
    token = f"{b64(enc({'alg': 'none', 'kid': 'sim1'}))}.{b64(enc(good_claims()))}."
    assert parser.parse(token, NOW) == Refusal(P)


def test_hs256_keyed_with_the_public_key_is_bad_signature(parser: CredentialParser) -> None:
    # The classic algorithm-confusion forgery: HMAC with the verifier's public key.
    public = ISSUER.private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signing_input = f"{b64(enc(good_header(alg='HS256')))}.{b64(enc(good_claims()))}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    assert parser.parse(f"{signing_input}.{b64(mac)}", NOW) == Refusal(SIG)


# -- kid ------------------------------------------------------------------------------------


def test_missing_kid_is_untrusted_key(parser: CredentialParser) -> None:
    assert parser.parse(mint(extra_header={"kid": OMIT}), NOW) == Refusal(KEY)


@pytest.mark.parametrize("kid", ["unknown", "SIM1", "sim1 ", "", 1, None, ["sim1"]])
def test_unknown_kid_is_untrusted_key(parser: CredentialParser, kid: Any) -> None:
    assert parser.parse(mint(extra_header={"kid": kid}), NOW) == Refusal(KEY)


# -- signature ------------------------------------------------------------------------------


def test_signature_of_another_pass_is_bad_signature(parser: CredentialParser) -> None:
    h, c, _ = mint().split(".")
    other_sig = mint(st="red").split(".")[2]
    assert parser.parse(f"{h}.{c}.{other_sig}", NOW) == Refusal(SIG)


def test_claims_swapped_under_a_valid_signature_is_bad_signature(
    parser: CredentialParser,
) -> None:
    h, _, s = mint(st="red").split(".")
    green_claims = mint(st="green").split(".")[1]
    assert parser.parse(f"{h}.{green_claims}.{s}", NOW) == Refusal(SIG)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 40, 85])
def test_truncated_signature_is_bad_signature(parser: CredentialParser, cut: int) -> None:
    token = mint()
    assert parser.parse(token[:-cut], NOW) == Refusal(SIG)


def test_extended_signature_is_bad_signature(parser: CredentialParser) -> None:
    assert parser.parse(mint() + "AAAA", NOW) == Refusal(SIG)


def test_flipped_signature_bit_is_bad_signature(parser: CredentialParser) -> None:
    h, c, s = mint().split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=="))
    sig[10] ^= 0x01
    assert parser.parse(f"{h}.{c}.{b64(bytes(sig))}", NOW) == Refusal(SIG)


def test_signed_by_another_key_with_the_same_kid_is_bad_signature(
    parser: CredentialParser,
) -> None:
    token = mint(sign_with=OTHER_KEY)
    assert parser.parse(token, NOW) == Refusal(SIG)


def test_header_reencoded_with_same_json_breaks_the_signature(parser: CredentialParser) -> None:
    _, c, s = mint().split(".")
    spaced = b64(json.dumps(good_header()).encode())  # ", " separators: same object
    assert parser.parse(f"{spaced}.{c}.{s}", NOW) == Refusal(SIG)


def test_non_canonical_signature_encoding_refused(parser: CredentialParser) -> None:
    # BUG: kiosk/jws.py b64url_decode accepts base64url whose unused trailing bits are not
    # zero, so the last character of the 86-character signature has 16 spellings that all
    # verify: one pass, 16 different texts (the gate's "same text" de-duplication and any
    # log of refused codes see different codes). credentials.md: "a segment that is not
    # valid base64url is invalid_payload" (RFC 4648 section 3.5, canonical encoding).
    token = mint()
    h, c, s = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    i = alphabet.index(s[-1])
    twin = alphabet[i ^ 1]  # same top two bits: decodes to the same 64 bytes
    assert base64.urlsafe_b64decode(s[:-1] + twin + "==") == base64.urlsafe_b64decode(s + "==")
    result = parser.parse(f"{h}.{c}.{s[:-1]}{twin}", NOW)
    assert isinstance(result, Refusal)
    assert result.reason in (P, SIG)


# -- claims: iss ----------------------------------------------------------------------------


@pytest.mark.parametrize("iss", [OMIT, None, 1, ["ashyq-sim"], {"x": 1}, "other", "ASHYQ-SIM", ""])
def test_bad_iss_is_untrusted_key(parser: CredentialParser, iss: Any) -> None:
    assert parser.parse(mint(extra_claims={"iss": iss}), NOW) == Refusal(KEY)


def test_trusted_issuers_are_configurable() -> None:
    parser = CredentialParser(pass_keys=lambda: KEYS, trusted_issuers=["x", "y"])
    assert parser.parse(mint(), NOW) == Refusal(KEY)
    assert isinstance(parser.parse(mint(extra_claims={"iss": "y"}), NOW), SignedPass)


# -- claims: sub ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub",
    [
        "iin:921029350851",
        "iin:061211600012",
        "passport:DEU:C01X00T47",
        "passport:KAZ:N12345678",
        "passport:USA:1",
        "passport:GBR:" + "A" * 20,
        "passport:UTO:0000",
    ],
)
def test_valid_subjects_accepted(parser: CredentialParser, sub: str) -> None:
    result = parser.parse(mint(sub=sub), NOW)
    assert isinstance(result, SignedPass)
    assert result.subject == sub


@pytest.mark.parametrize(
    "sub", ["iin:921029350852", "iin:921329350854", "iin:921029950853", "iin:000000000000"]
)
def test_iin_subject_failing_section_1_is_invalid_iin(parser: CredentialParser, sub: str) -> None:
    assert parser.parse(mint(sub=sub), NOW) == Refusal(IIN_BAD)


@pytest.mark.parametrize(
    "sub",
    [
        OMIT,
        None,
        921029350851,
        ["iin:921029350851"],
        "",
        "921029350851",  # no prefix
        "IIN:921029350851",
        "iin:92102935085",
        "iin:9210293508510",
        "iin: 921029350851",
        "iin:921029350851\n",
        "iin:٩٢١٠٢٩٣٥٠٨٥١",
        "iin:",
        "passport:deu:C01X00T47",  # lowercase country
        "passport:DEU:c01x00t47",  # lowercase number
        "passport:DE:C01X00T47",
        "passport:DEUT:C01X00T47",
        "passport:DEU:",
        "passport:DEU:" + "A" * 21,  # too long
        "passport:DEU:C01-X00",
        "passport:DEU:C01 X00",
        "passport:DEU:C01X00T47\n",
        "passport:DÉU:C01X00T47",
        "passport:DEU:C01X00T4７",
        "PASSPORT:DEU:C01X00T47",
        "passport:DEU",
        "pass:DEU:C01X00T47",
        "id:921029350851",
        "email:someone@example.org",
    ],
)
def test_malformed_subject_is_invalid_payload(parser: CredentialParser, sub: Any) -> None:
    token = mint(extra_claims={"sub": OMIT}) if sub is OMIT else mint(sub=sub)
    assert parser.parse(token, NOW) == Refusal(P)


# -- claims: st -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["green", "blue", "yellow", "red"])
def test_every_status_accepted(parser: CredentialParser, status: str) -> None:
    result = parser.parse(mint(st=status), NOW)
    assert isinstance(result, SignedPass)
    assert result.st == status


@pytest.mark.parametrize("status", ["GREEN", "Green", "white", "", " green", "green\n", None, 1])
def test_unknown_status_is_invalid_payload(parser: CredentialParser, status: Any) -> None:
    assert parser.parse(mint(st=status), NOW) == Refusal(P, SUB)


def test_missing_status_is_invalid_payload(parser: CredentialParser) -> None:
    assert parser.parse(mint(extra_claims={"st": OMIT}), NOW) == Refusal(P, SUB)


@pytest.mark.parametrize("status", [[], ["green"], {}, {"green": 1}])
def test_status_of_unhashable_type_is_invalid_payload(
    parser: CredentialParser, status: Any
) -> None:
    # BUG: kiosk/credentials.py _check_claims evaluates `st not in _STATUSES` on any JSON
    # value; a list or object is unhashable and raises TypeError out of parse() ("nothing
    # here raises on input"). Fix: `not isinstance(st, str) or st not in _STATUSES`.
    assert parser.parse(mint(st=status), NOW) == Refusal(P, SUB)


# -- claims: iat, exp, nbf ------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["iat", "exp"])
@pytest.mark.parametrize(
    "value",
    [float(NOW), NOW + 0.5, True, False, str(NOW), None, [NOW], {"t": NOW}],
    ids=["float", "float-frac", "true", "false", "string", "null", "list", "object"],
)
def test_iat_exp_of_wrong_type_is_invalid_payload(
    parser: CredentialParser, claim: str, value: Any
) -> None:
    assert parser.parse(mint(extra_claims={claim: value}), NOW) == Refusal(P, SUB)


@pytest.mark.parametrize("claim", ["iat", "exp"])
def test_missing_iat_or_exp_is_invalid_payload(parser: CredentialParser, claim: str) -> None:
    assert parser.parse(mint(extra_claims={claim: OMIT}), NOW) == Refusal(P, SUB)


def test_float_written_as_integer_literal_with_exponent_is_invalid_payload(
    parser: CredentialParser,
) -> None:
    claims = enc(good_claims()).replace(str(NOW).encode(), b"1.7e9", 1)
    assert b"1.7e9" in claims
    assert parser.parse(raw_token(enc(good_header()), claims), NOW) == Refusal(P, SUB)


@pytest.mark.parametrize("lifetime", [0, -1, -600])
def test_exp_not_after_iat_is_invalid_payload(parser: CredentialParser, lifetime: int) -> None:
    assert parser.parse(mint(exp=NOW + lifetime), NOW) == Refusal(P, SUB)


def test_lifetime_600_accepted_601_refused(parser: CredentialParser) -> None:
    assert isinstance(parser.parse(mint(exp=NOW + 600), NOW), SignedPass)
    assert parser.parse(mint(exp=NOW + 601), NOW) == Refusal(P, SUB)


def test_lifetime_1_accepted(parser: CredentialParser) -> None:
    assert isinstance(parser.parse(mint(exp=NOW + 1), NOW), SignedPass)


@pytest.mark.parametrize(
    "nbf", [float(NOW), True, str(NOW), [NOW]], ids=["float", "bool", "string", "list"]
)
def test_nbf_of_wrong_type_is_invalid_payload(parser: CredentialParser, nbf: Any) -> None:
    assert parser.parse(mint(extra_claims={"nbf": nbf}), NOW) == Refusal(P, SUB)


def test_nbf_null_is_invalid_payload(parser: CredentialParser) -> None:
    # BUG: kiosk/credentials.py _check_claims tests `nbf is not None`, so `"nbf": null` is
    # taken as "no nbf" and the pass is accepted. credentials.md: nbf is an optional
    # *integer*, and the kiosk must "refuse everything else". Fix: test presence, i.e.
    # `("nbf" in claims and not is_int(nbf))`.
    assert parser.parse(mint(extra_claims={"nbf": None}), NOW) == Refusal(P, SUB)


def test_integer_nbf_accepted(parser: CredentialParser) -> None:
    assert isinstance(parser.parse(mint(nbf=NOW), NOW), SignedPass)


@pytest.mark.parametrize("iat", [10**400, -(10**400), 2**1024], ids=["1e400", "-1e400", "2^1024"])
def test_huge_integer_times_do_not_raise(iat: int) -> None:
    # BUG: kiosk/credentials.py _check_claims computes `iat - leeway` and `exp + leeway` with
    # a float leeway; an integer beyond float range (valid JSON, Python parses it exactly)
    # raises OverflowError out of parse(). Fix: keep the int on its own side of the
    # comparison, e.g. `now + leeway < iat`, `now + leeway < nbf`, `now - leeway >= exp`
    # (Python compares float and int exactly without converting). The default and
    # configured leeway is a float (30.0), which is what triggers it.
    parser = CredentialParser(pass_keys=lambda: KEYS, trusted_issuers={SIM_ISSUER})
    result = parser.parse(mint(iat=iat, exp=iat + 300), NOW)
    assert result == Refusal(Reason.NOT_YET_VALID if iat > 0 else Reason.EXPIRED, SUB)


# -- claims: jti ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "jti", ["a" * 8, "Z" * 64, "abcdEFGH", "0123456789", "a-b_c-d_", "________", "--------"]
)
def test_valid_jti_accepted(parser: CredentialParser, jti: str) -> None:
    result = parser.parse(mint(jti=jti), NOW)
    assert isinstance(result, SignedPass)
    assert result.jti == jti


@pytest.mark.parametrize(
    "jti",
    [
        "a" * 7,
        "a" * 65,
        "",
        "abcd.efgh",
        "abcd+efgh",
        "abcd/efgh",
        "abcdefg=",
        "abcd efgh",
        "abcdéfgh",
        "abcdefgh\n",
        "abcd١efgh",
        12345678,
        None,
        ["abcdefgh"],
    ],
)
def test_bad_jti_is_invalid_payload(parser: CredentialParser, jti: Any) -> None:
    assert parser.parse(mint(extra_claims={"jti": jti}), NOW) == Refusal(P, SUB)


def test_missing_jti_is_invalid_payload(parser: CredentialParser) -> None:
    assert parser.parse(mint(extra_claims={"jti": OMIT}), NOW) == Refusal(P, SUB)


# -- claims: the JSON itself ----------------------------------------------------------------


def test_unknown_claims_ignored(parser: CredentialParser) -> None:
    extra = {"aud": "venue", "name": "x", "nested": {"a": [1, 2, None]}, "n": 1.5}
    assert isinstance(parser.parse(mint(extra_claims=extra), NOW), SignedPass)


@pytest.mark.parametrize("key", ["iss", "sub", "st", "iat", "exp", "jti", "unknown"])
def test_repeated_claim_key_is_invalid_payload(parser: CredentialParser, key: str) -> None:
    body = enc(good_claims(unknown=1))
    first = json.dumps(good_claims(unknown=1)[key]).encode()
    repeated = body[:-1] + b',"' + key.encode() + b'":' + first + b"}"
    assert parser.parse(raw_token(enc(good_header()), repeated), NOW) == Refusal(P)


def test_repeated_key_in_a_nested_claim_is_invalid_payload(parser: CredentialParser) -> None:
    body = enc(good_claims())[:-1] + b',"x":{"a":1,"a":2}}'
    assert parser.parse(raw_token(enc(good_header()), body), NOW) == Refusal(P)


@pytest.mark.parametrize(
    "claims",
    [b"not json", b"[]", b'"x"', b"null", b'{"iss":"ashyq-sim"', b'{"a":"\xff"}', b'{"n":NaN}'],
)
def test_signed_claims_not_a_json_object_is_invalid_payload(
    parser: CredentialParser, claims: bytes
) -> None:
    assert parser.parse(raw_token(enc(good_header()), claims), NOW) == Refusal(P)


def test_signed_claims_segment_not_base64url_is_invalid_payload(
    parser: CredentialParser,
) -> None:
    # The issuer signed a claims segment no base64url encoder produces (length 1 mod 4).
    head = b64(enc(good_header()))
    body = b64(enc(good_claims()))
    body += "A" * ((1 - len(body)) % 4)
    signing_input = f"{head}.{body}"
    sig = ISSUER.private_key.sign(signing_input.encode())
    assert parser.parse(f"{signing_input}.{b64(sig)}", NOW) == Refusal(P)


# -- time -----------------------------------------------------------------------------------

IAT = NOW
EXP = NOW + 300
NBF = NOW + 100


def test_iat_boundary(parser: CredentialParser) -> None:
    token = mint(iat=IAT, exp=EXP)
    assert isinstance(parser.parse(token, IAT - L), SignedPass)
    assert parser.parse(token, IAT - L - 1) == Refusal(Reason.NOT_YET_VALID, SUB)
    assert parser.parse(token, IAT - L - 0.001) == Refusal(Reason.NOT_YET_VALID, SUB)


def test_exp_boundary(parser: CredentialParser) -> None:
    token = mint(iat=IAT, exp=EXP)
    assert isinstance(parser.parse(token, EXP + L - 1), SignedPass)
    assert isinstance(parser.parse(token, EXP + L - 0.001), SignedPass)
    assert parser.parse(token, EXP + L) == Refusal(Reason.EXPIRED, SUB)
    assert parser.parse(token, EXP + L + 1000) == Refusal(Reason.EXPIRED, SUB)


def test_nbf_boundary(parser: CredentialParser) -> None:
    token = mint(iat=IAT, exp=EXP, nbf=NBF)
    assert isinstance(parser.parse(token, NBF - L), SignedPass)
    assert parser.parse(token, NBF - L - 1) == Refusal(Reason.NOT_YET_VALID, SUB)
    # Fine for iat, too early for nbf.
    assert IAT - L <= NBF - L - 1


def test_nbf_before_iat_leaves_iat_in_charge(parser: CredentialParser) -> None:
    token = mint(iat=IAT, exp=EXP, nbf=IAT - 1000)
    assert parser.parse(token, IAT - L - 1) == Refusal(Reason.NOT_YET_VALID, SUB)
    assert isinstance(parser.parse(token, IAT - L), SignedPass)


@pytest.mark.parametrize("leeway", [0, 5, 120])
def test_leeway_is_configurable(leeway: int) -> None:
    parser = CredentialParser(pass_keys=lambda: KEYS, trusted_issuers={SIM_ISSUER}, leeway_s=leeway)
    assert parser.leeway_s == leeway
    token = mint(iat=IAT, exp=EXP)
    assert isinstance(parser.parse(token, IAT - leeway), SignedPass)
    assert parser.parse(token, IAT - leeway - 1) == Refusal(Reason.NOT_YET_VALID, SUB)
    assert isinstance(parser.parse(token, EXP + leeway - 1), SignedPass)
    assert parser.parse(token, EXP + leeway) == Refusal(Reason.EXPIRED, SUB)


def test_default_leeway_is_30_s() -> None:
    parser = CredentialParser(pass_keys=lambda: KEYS, trusted_issuers={SIM_ISSUER})
    token = mint(iat=IAT, exp=EXP)
    assert isinstance(parser.parse(token, EXP + 29), SignedPass)
    assert parser.parse(token, EXP + 30) == Refusal(Reason.EXPIRED, SUB)


# -- replay ---------------------------------------------------------------------------------


def _replay_parser(used: set[str], calls: list[str]) -> CredentialParser:
    def is_replayed(jti: str) -> bool:
        calls.append(jti)
        return jti in used

    return CredentialParser(
        pass_keys=lambda: KEYS, trusted_issuers={SIM_ISSUER}, leeway_s=L, is_replayed=is_replayed
    )


def test_replayed_jti_refused() -> None:
    calls: list[str] = []
    parser = _replay_parser({"usedJti0001"}, calls)
    assert parser.parse(mint(jti="usedJti0001"), NOW) == Refusal(Reason.REPLAYED, SUB)
    assert isinstance(parser.parse(mint(jti="freshJti001"), NOW), SignedPass)
    assert calls == ["usedJti0001", "freshJti001"]


def test_replay_is_the_last_check() -> None:
    calls: list[str] = []
    parser = _replay_parser({"usedJti0001"}, calls)
    token = mint(jti="usedJti0001", iat=IAT, exp=EXP)
    assert parser.parse(token, EXP + L) == Refusal(Reason.EXPIRED, SUB)
    assert parser.parse(token, IAT - L - 1) == Refusal(Reason.NOT_YET_VALID, SUB)
    assert parser.parse(mint(jti="usedJti0001", st="purple"), NOW) == Refusal(P, SUB)
    assert parser.parse(mint(jti="usedJti0001", sign_with=OTHER_KEY), NOW) == Refusal(SIG)
    assert calls == []  # not even asked: every earlier failure named the reason
    assert parser.parse(token, EXP + L - 1) == Refusal(Reason.REPLAYED, SUB)


def test_replay_not_consulted_for_a_bare_iin() -> None:
    calls: list[str] = []
    parser = _replay_parser(set(), calls)
    assert parser.parse(IIN, NOW) == BareIin(SUB)
    assert calls == []


# -- order of checks: a pass failing two checks names the first -----------------------------


def _order_cases() -> list[tuple[str, str, Reason]]:
    big_pad = " " * MAX_CODE_BYTES
    return [
        ("size before bare iin", IIN + big_pad, P),
        ("shape before signature", mint()[:-1] + "=", P),
        ("header before alg", mint(extra_header={"typ": "JWT", "alg": "none"}), P),
        ("header before kid", mint(extra_header={"typ": "JWT", "kid": "nope"}), P),
        ("alg before kid", mint(extra_header={"alg": "HS256", "kid": "nope"}), SIG),
        ("alg before signature", mint(extra_header={"alg": "none"}, sign_with=OTHER_KEY), SIG),
        ("kid before signature", mint(extra_header={"kid": "nope"}, sign_with=OTHER_KEY), KEY),
        ("signature before claims", mint(st="purple", sign_with=OTHER_KEY), SIG),
        ("signature before iss", mint(extra_claims={"iss": "x"}, sign_with=OTHER_KEY), SIG),
        ("iss before sub", mint(sub="iin:921029350852", extra_claims={"iss": "x"}), KEY),
        ("sub before st", mint(sub="iin:921029350852", st="purple"), IIN_BAD),
        ("claims before time", mint(st="purple", iat=NOW + 10_000), P),
        ("claims before time (exp)", mint(jti="short", iat=NOW - 10_000), P),
        ("not_yet_valid", mint(iat=NOW + 10_000), Reason.NOT_YET_VALID),
    ]


@pytest.mark.parametrize(
    ("name", "token", "reason"), _order_cases(), ids=[n for n, _, _ in _order_cases()]
)
def test_first_failure_names_the_reason(
    parser: CredentialParser, name: str, token: str, reason: Reason
) -> None:
    result = parser.parse(token, NOW)
    assert isinstance(result, Refusal)
    assert result.reason is reason


# -- which refusals carry the subject -------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        mint(extra_header={"typ": "JWT"}),
        mint(extra_header={"alg": "none"}),
        mint(extra_header={"kid": "nope"}),
        mint(sign_with=OTHER_KEY),
        mint()[:-2],
    ],
    ids=["header", "alg", "kid", "signature", "truncated"],
)
def test_refusals_before_a_verified_signature_carry_no_subject(
    parser: CredentialParser, token: str
) -> None:
    result = parser.parse(token, NOW)
    assert isinstance(result, Refusal)
    assert result.subject is None


@pytest.mark.parametrize(
    ("token", "now", "reason"),
    [
        (mint(st="purple"), NOW, P),
        (mint(exp=NOW + 601), NOW, P),
        (mint(jti="short"), NOW, P),
        (mint(), NOW - 1000, Reason.NOT_YET_VALID),
        (mint(), NOW + 1000, Reason.EXPIRED),
        (mint(sub="passport:DEU:C01X00T47"), NOW + 1000, Reason.EXPIRED),
    ],
    ids=["st", "lifetime", "jti", "not_yet_valid", "expired", "passport"],
)
def test_refusals_after_a_verified_signature_carry_the_subject(
    parser: CredentialParser, token: str, now: float, reason: Reason
) -> None:
    result = parser.parse(token, now)
    assert isinstance(result, Refusal)
    assert result.reason is reason
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert result.subject == claims["sub"]


def test_refusals_naming_no_usable_subject_carry_none(parser: CredentialParser) -> None:
    # Signed, but the issuer is not trusted or the subject itself is what is wrong: there is
    # no trustworthy, well-formed subject to name.
    assert parser.parse(mint(extra_claims={"iss": "x"}), NOW) == Refusal(KEY, None)
    assert parser.parse(mint(sub="iin:921029350852"), NOW) == Refusal(IIN_BAD, None)
    assert parser.parse(mint(sub="passport:deu:X1"), NOW) == Refusal(P, None)
