"""The K3s-style join token: ``K10<sha256 hex of the server CA PEM>::server:<secret>``.

The hash lets a joining agent pin the CA it downloads from ``/cacerts`` before it
trusts anything else; the secret proves the agent may join.  A ``--token`` may be given
as the full K10 form (its hash must then match this server's CA) or as a bare secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from k3py.server.auth.files import write_atomic

PREFIX = "K10"
SERVER_USER = "server"
_HASH = re.compile(r"[0-9a-f]{64}")


class TokenError(ValueError):
    """A malformed token, or one pinned to another CA."""


def ca_hash(ca_pem: bytes) -> str:
    return hashlib.sha256(ca_pem).hexdigest()


def format_token(*, ca_pem: bytes, secret: str, username: str = SERVER_USER) -> str:
    return f"{PREFIX}{ca_hash(ca_pem)}::{username}:{secret}"


def parse_token(token: str) -> tuple[str | None, str, str]:
    """Split a token into ``(ca_hash or None, username, secret)``.

    ``K10<hash>::server:<secret>`` → (hash, "server", secret); ``K10<hash>::<secret>``
    and a bare ``<secret>`` default the username to "server"; ``user:secret`` keeps it.
    """
    token = token.strip()
    ca: str | None = None
    creds = token
    if token.startswith(PREFIX) and "::" in token:
        ca, creds = token[len(PREFIX) :].split("::", 1)
        if not _HASH.fullmatch(ca):
            raise TokenError("token CA hash must be 64 lowercase hex digits")
    username, sep, secret = creds.partition(":")
    if not sep:
        username, secret = SERVER_USER, creds
    if not secret or not username:
        raise TokenError("token has an empty username or secret")
    return ca, username, secret


def ensure_token(*, path: Path, ca_pem: bytes, secret: str | None) -> str:
    """Write (or reuse) ``<data-dir>/server/token`` and return the full token.

    With ``secret`` given (bare or K10) it wins over what is on disk; without one, the
    secret already on disk is reused, else a random one is made.  The hash is always
    this CA's, and the file is rewritten (0600) only when its content would change.
    """
    want = _secret_for(path=path, ca_pem=ca_pem, secret=secret)
    token = format_token(ca_pem=ca_pem, secret=want)
    current = path.read_text().strip() if path.exists() else None
    if current != token:
        write_atomic(path, (token + "\n").encode(), mode=0o600)
    return token


def _secret_for(*, path: Path, ca_pem: bytes, secret: str | None) -> str:
    if secret:
        ca, _user, value = parse_token(secret)
        if ca is not None and ca != ca_hash(ca_pem):
            raise TokenError("token CA hash does not match this server's CA certificate")
        return value
    if path.exists():
        existing = path.read_text().strip()
        if existing:
            return parse_token(existing)[2]
    return secrets.token_hex(16)


def token_matches(*, presented: str, ca_pem: bytes, secret: str) -> bool:
    """Whether an agent's token carries ``secret`` (and, if pinned, this CA's hash)."""
    try:
        ca, _user, value = parse_token(presented)
    except TokenError:
        return False
    if ca is not None and not hmac.compare_digest(ca, ca_hash(ca_pem)):
        return False
    return hmac.compare_digest(value.encode(), secret.encode())
