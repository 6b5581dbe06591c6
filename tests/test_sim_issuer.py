"""The simulated pass issuer, the test keys, QR output, the IIN generator and ``mint``."""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from simulators import cli
from simulators.iin import iin_check_digit, is_valid_iin, make_iin
from simulators.issuer import (
    OMIT,
    SIM_OPERATOR_JWKS,
    SIM_OPERATOR_KEY,
    SIM_PASS_JWKS,
    SIM_PASS_KEY,
    IssuerError,
    PassIssuer,
    load_private_key,
    qr_matrix,
    qr_png,
    sign_compact,
)
from simulators.population import load

B64URL = re.compile(r"[A-Za-z0-9_-]+")


def b64decode(segment: str) -> bytes:
    assert B64URL.fullmatch(segment), "base64url without padding"
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signature and signing input of a compact JWS."""
    header, claims, signature = token.split(".")
    return (
        json.loads(b64decode(header)),
        json.loads(b64decode(claims)),
        b64decode(signature),
        f"{header}.{claims}".encode("ascii"),
    )


def jwks_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """kid -> public key, read from a JWK Set file as a verifier would."""
    keys = {}
    for jwk in json.loads(path.read_text())["keys"]:
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
        keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(b64decode(jwk["x"]))
    return keys


def verifies(token: str, jwks: Path = SIM_PASS_JWKS) -> bool:
    header, _, signature, signing_input = split(token)
    try:
        jwks_keys(jwks)[header["kid"]].verify(signature, signing_input)
    except InvalidSignature:
        return False
    return True


@pytest.fixture(scope="module")
def issuer() -> PassIssuer:
    return PassIssuer.load()


# --- IINs ---------------------------------------------------------------------------------


def test_spec_examples() -> None:
    assert is_valid_iin("921029350851")
    assert is_valid_iin("061211600012")
    assert not is_valid_iin("921029350852")
    assert iin_check_digit("92102935085") == 1
    assert iin_check_digit("06121160001") == 2


def test_second_weighting_and_prefixes_without_a_check_digit() -> None:
    # First pass: 1*0 + ... + 10*1 + 11*0 = 10, so the second weighting decides: 3*0.. + 1*1.
    assert iin_check_digit("00000000010") == 1
    # Both passes give 10: no valid IIN starts like this.
    prefixes = (f"{n:011d}" for n in range(0, 10**11, 7_919_111))
    hopeless = [p for p in prefixes if iin_check_digit(p) is None]
    assert hopeless
    for prefix in hopeless:
        digits = [int(c) for c in prefix]
        assert sum((i + 1) * d for i, d in enumerate(digits)) % 11 == 10
        assert not any(is_valid_iin(prefix + str(d)) for d in range(10))


@pytest.mark.parametrize(
    "text",
    ["921329350851", "920029350851", "921000350851", "921032350851", "921029750851",
     "92102935085", "9210293508510", "92102935085a", "９２１０２９３５０８５１"],
)  # fmt: skip
def test_invalid_iins(text: str) -> None:
    assert not is_valid_iin(text)


@given(st.integers(min_value=0, max_value=2**32))
def test_made_iins_are_valid_and_reproducible(seed: int) -> None:
    iin = make_iin(random.Random(seed))
    assert is_valid_iin(iin)
    assert iin[6] in "3456"
    assert make_iin(random.Random(seed)) == iin
    assert make_iin(random.Random(seed), foreign_resident=True)[6] == "0"


def test_iin_check_digit_wants_eleven_ascii_digits() -> None:
    for bad in ("1234567890", "123456789012", "1234567890x", "١٢٣٤٥٦٧٨٩٠١"):
        with pytest.raises(ValueError):
            iin_check_digit(bad)


def test_population_iins_have_valid_check_digits() -> None:
    iins = [p.iin for p in load() if p.iin is not None]
    assert len(iins) > 2000
    assert all(is_valid_iin(iin) for iin in iins)


# --- passes -------------------------------------------------------------------------------


def test_minted_pass_is_exactly_as_the_spec_says(issuer: PassIssuer) -> None:
    token = issuer.mint("iin:921029350851", "green", iat=1_700_000_000, valid_s=120, jti="abcDEF12")
    assert token.count(".") == 2
    header, claims, signature, _ = split(token)
    assert header == {"alg": "EdDSA", "kid": "sim1"}
    assert claims == {
        "iss": "ashyq-sim",
        "sub": "iin:921029350851",
        "st": "green",
        "iat": 1_700_000_000,
        "exp": 1_700_000_120,
        "jti": "abcDEF12",
    }
    assert len(signature) == 64
    assert verifies(token)


def test_defaults_now_random_jti_and_optional_nbf(issuer: PassIssuer) -> None:
    before = int(time.time())
    token = issuer.mint("passport:DEU:C01X00T47", "blue")
    _, claims, _, _ = split(token)
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 300
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", claims["jti"])
    assert "nbf" not in claims
    jtis = {split(issuer.mint("iin:921029350851", "green"))[1]["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_nbf_is_included_when_asked(issuer: PassIssuer) -> None:
    _, claims, _, _ = split(issuer.mint("iin:921029350851", "red", iat=10, exp=99, nbf=5))
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (10, 5, 99)
    assert list(claims) == ["iss", "sub", "st", "iat", "exp", "nbf", "jti"]


def test_overrides_build_bad_passes(issuer: PassIssuer) -> None:
    token = issuer.mint(
        "iin:921029350851",
        "green",
        extra_header={"alg": "none", "kid": OMIT, "typ": "JWT"},
        extra_claims={"iss": OMIT, "st": "purple", "extra": [1, 2]},
    )
    header, claims, _, _ = split(token)
    assert header == {"alg": "none", "typ": "JWT"}
    assert "iss" not in claims
    assert claims["st"] == "purple"
    assert claims["extra"] == [1, 2]


def test_sign_with_another_key_fails_verification(issuer: PassIssuer) -> None:
    token = issuer.mint("iin:921029350851", "green", sign_with=Ed25519PrivateKey.generate())
    assert split(token)[0]["kid"] == "sim1"
    assert not verifies(token)


def test_sign_compact_is_compact_and_verifiable() -> None:
    key = Ed25519PrivateKey.generate()
    token = sign_compact({"alg": "EdDSA", "kid": "k"}, {"a": 1, "b": "x"}, key)
    header_b64, claims_b64, signature_b64 = token.split(".")
    assert b64decode(header_b64) == b'{"alg":"EdDSA","kid":"k"}'
    assert b64decode(claims_b64) == b'{"a":1,"b":"x"}'
    key.public_key().verify(b64decode(signature_b64), f"{header_b64}.{claims_b64}".encode())


def test_issuer_jwks_matches_the_shipped_set(issuer: PassIssuer) -> None:
    assert issuer.jwks() == json.loads(SIM_PASS_JWKS.read_text())
    assert issuer.jwks()["keys"][0]["kid"] == "sim1"


def test_operator_key_pair_matches_its_set() -> None:
    operator = PassIssuer.load(SIM_OPERATOR_KEY, kid="op1", iss="ashyq-sim")
    assert operator.jwks() == json.loads(SIM_OPERATOR_JWKS.read_text())
    token = sign_compact({"alg": "EdDSA", "kid": "op1"}, {"cmd": "open"}, operator.private_key)
    assert verifies(token, SIM_OPERATOR_JWKS)
    assert not verifies(
        sign_compact({"alg": "EdDSA", "kid": "sim1"}, {"cmd": "open"}, operator.private_key)
    )


def test_key_readme_says_test_only() -> None:
    readme = (SIM_PASS_KEY.parent / "README.md").read_text()
    assert "TEST ONLY" in readme


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(IssuerError, match="missing.pem"):
        PassIssuer.load(tmp_path / "missing.pem")
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(IssuerError, match="not an Ed25519"):
        load_private_key(ec)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(IssuerError, match="junk.pem"):
        load_private_key(junk)


# --- QR codes -----------------------------------------------------------------------------


def test_qr_png_writes_a_png(tmp_path: Path, issuer: PassIssuer) -> None:
    path = qr_png(issuer.mint("iin:921029350851", "green"), tmp_path / "pass.png", scale=4)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_qr_matrix_is_a_full_qr_code_with_quiet_zone() -> None:
    matrix = qr_matrix("921029350851")
    # A bare IIN fits a Micro QR; it must still be a full 21x21 QR (version 1) plus border.
    assert len(matrix) == 21 + 8
    assert all(len(row) == len(matrix) for row in matrix)
    assert set().union(*map(set, matrix)) == {0, 1}
    assert not any(matrix[0]) and not any(row[0] for row in matrix)
    assert matrix[4][4:11] == [1] * 7  # the top-left finder pattern


def test_qr_matrix_decodes_back(issuer: PassIssuer) -> None:
    np = pytest.importorskip("numpy")
    zxingcpp = pytest.importorskip("zxingcpp")
    # Fixed claims: the same matrix on every run (a random jti once met a spurious 1D read).
    token = issuer.mint("passport:KAZ:N12345678", "yellow", iat=1_700_000_000, jti="fixedjti0001")
    for text in (token, "061211600012"):
        modules = np.array(qr_matrix(text), dtype=np.uint8)
        image = np.kron(255 * (1 - modules), np.ones((4, 4), dtype=np.uint8)).astype(np.uint8)
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        assert [r.text for r in found] == [text]


# --- the mint command ---------------------------------------------------------------------


def run_mint(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments("mint", parser.add_subparsers(required=True).add_parser("mint"))
    args = parser.parse_args(["mint", *argv])
    return args.func(args)


def test_mint_for_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    person = load().by_index(0)
    assert run_mint(["--person", "0", "--valid-s", "60", "--iat", "1000", "--jti", "jti-0000"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert verifies(token)
    claims = split(token)[1]
    assert (claims["sub"], claims["st"], claims["iat"], claims["exp"], claims["jti"]) == (
        person.sub,
        person.st,
        1000,
        1060,
        "jti-0000",
    )
    assert "person 0" in err
    assert person.sub[4:] not in err
    assert person.sub[-4:] in err


def test_mint_by_status_picks_such_a_person(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    png = tmp_path / "code.png"
    assert run_mint(["--status", "red", "--seed", "3", "--png", str(png)]) == 0
    out, err = capsys.readouterr()
    claims = split(out.strip())[1]
    person = load().by_sub(claims["sub"])
    assert person is not None and person.st == "red" and claims["st"] == "red"
    assert png.read_bytes().startswith(b"\x89PNG")
    assert claims["sub"].rsplit(":", 1)[1] not in err


def test_mint_by_sub_with_status_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_mint(["--sub", "passport:DEU:C01X00T47", "--status", "blue"]) == 0
    assert split(capsys.readouterr().out.strip())[1]["st"] == "blue"
    assert run_mint(["--sub", "passport:DEU:C01X00T47"]) == 2  # unknown, and no status
    assert run_mint(["--sub", "iin:921029350852", "--status", "blue"]) == 2
    assert "not a valid subject" in capsys.readouterr().err


def test_mint_bare_prints_the_iin(capsys: pytest.CaptureFixture[str]) -> None:
    population = load()
    resident = next(p for p in population if p.iin is not None)
    foreigner = next(p for p in population if p.iin is None)
    assert run_mint(["--person", str(resident.index), "--bare"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == resident.iin
    assert resident.iin not in err
    assert run_mint(["--person", str(foreigner.index), "--bare"]) == 2


def test_mint_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_mint([]) == 2
    assert run_mint(["--person", "999999"]) == 2
    assert run_mint(["--person", "0", "--key", str(tmp_path / "none.pem")]) == 2
    assert "none.pem" in capsys.readouterr().err


def test_mask_subject() -> None:
    assert cli.mask_subject("iin:921029350851") == "iin:********0851"
    assert cli.mask_subject("passport:DEU:C01X00T47") == "passport:DEU:*****0T47"
    assert cli.mask_subject("passport:USA:12345") == "passport:USA:*****"


@pytest.mark.parametrize("status", ["green", "blue", "yellow", "red"])
def test_mint_bare_by_status_always_gives_such_an_iin(
    status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # It drew a passport holder (no bare IIN) about one time in eight.
    population = load()
    for seed in range(16):
        assert run_mint(["--status", status, "--bare", "--seed", str(seed)]) == 0, seed
        iin = capsys.readouterr().out.strip()
        person = population.by_sub(f"iin:{iin}")
        assert person is not None and person.st == status
