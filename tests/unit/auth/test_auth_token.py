from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest

from k3py.server.auth.token import TokenError, ensure_token, parse_token, token_matches

CA = b"-----BEGIN CERTIFICATE-----\nMIIB...fake...\n-----END CERTIFICATE-----\n"
OTHER_CA = CA.replace(b"fake", b"other")
CA_HASH = hashlib.sha256(CA).hexdigest()


def test_token_has_k10_format_with_ca_hash_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "server" / "token"
    token = ensure_token(path=path, ca_pem=CA, secret=None)
    m = re.fullmatch(r"K10([0-9a-f]{64})::server:([0-9a-f]{32})", token)
    assert m is not None, token
    assert m.group(1) == CA_HASH
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_is_reused_on_restart(tmp_path: Path) -> None:
    path = tmp_path / "token"
    first = ensure_token(path=path, ca_pem=CA, secret=None)
    mtime = path.stat().st_mtime_ns
    assert ensure_token(path=path, ca_pem=CA, secret=None) == first
    assert path.stat().st_mtime_ns == mtime


def test_given_bare_secret_is_used(tmp_path: Path) -> None:
    token = ensure_token(path=tmp_path / "token", ca_pem=CA, secret="s3cret")
    assert token == f"K10{CA_HASH}::server:s3cret"


def test_given_full_token_is_accepted(tmp_path: Path) -> None:
    full = f"K10{CA_HASH}::server:s3cret"
    assert ensure_token(path=tmp_path / "token", ca_pem=CA, secret=full) == full


def test_given_token_for_another_ca_is_refused(tmp_path: Path) -> None:
    other = f"K10{hashlib.sha256(OTHER_CA).hexdigest()}::server:s3cret"
    with pytest.raises(TokenError):
        ensure_token(path=tmp_path / "token", ca_pem=CA, secret=other)


def test_given_secret_replaces_stored_one(tmp_path: Path) -> None:
    path = tmp_path / "token"
    ensure_token(path=path, ca_pem=CA, secret=None)
    assert ensure_token(path=path, ca_pem=CA, secret="new").endswith("::server:new")
    assert ensure_token(path=path, ca_pem=CA, secret=None).endswith("::server:new")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (f"K10{CA_HASH}::server:abc", (CA_HASH, "server", "abc")),
        (f"K10{CA_HASH}::node:abc:def", (CA_HASH, "node", "abc:def")),
        (f"K10{CA_HASH}::abc", (CA_HASH, "server", "abc")),
        ("abc", (None, "server", "abc")),
        ("agent:abc", (None, "agent", "abc")),
    ],
)
def test_parse_token(token: str, expected: tuple[str | None, str, str]) -> None:
    assert parse_token(token) == expected


@pytest.mark.parametrize("token", ["K10abc::server:x", f"K10{CA_HASH}::server:", ""])
def test_parse_token_rejects_malformed(token: str) -> None:
    with pytest.raises(TokenError):
        parse_token(token)


def test_token_matches() -> None:
    assert token_matches(presented=f"K10{CA_HASH}::server:abc", ca_pem=CA, secret="abc")
    assert token_matches(presented="abc", ca_pem=CA, secret="abc")
    assert not token_matches(presented="abd", ca_pem=CA, secret="abc")
    assert not token_matches(presented=f"K10{'0' * 64}::server:abc", ca_pem=CA, secret="abc")
