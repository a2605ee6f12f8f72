"""Compact JWS (``header.payload.signature``, base64url) with ES256 and RS256 only.

Written against ``cryptography`` directly; the rules that keep it safe:

- the algorithm comes from the *key*, never from the token: a header whose ``alg``
  does not match the key's type (``none``, ``HS256``, an RSA alg on an EC key) fails;
- ES256 signatures are the raw 64-byte ``r || s`` of RFC 7518, not DER;
- base64url is decoded strictly (no padding, no stray characters), and the signature
  covers the token's own header and payload bytes, so nothing can be re-encoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from k3py.server.auth.pki import PrivateKey, PublicKey

MAX_TOKEN_BYTES = 16 * 1024
_P256_BYTES = 32


class InvalidToken(Exception):
    """The token is malformed, badly signed, or its claims do not hold."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if "=" in text:
        raise InvalidToken("base64url segment must not be padded")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidToken("malformed base64url segment") from e


def algorithm(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"unsupported curve {key.curve.name} (want P-256)")
        return "ES256"
    return "RS256"


def key_id(public_key: PublicKey) -> str:
    """kube-apiserver's ``kid``: base64url(sha256(DER SubjectPublicKeyInfo))."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url(hashlib.sha256(der).digest())


def sign(*, claims: Mapping[str, Any], key: PrivateKey, kid: str | None = None) -> str:
    header: dict[str, str] = {"alg": algorithm(key)}
    if kid:
        header["kid"] = kid
    signing_input = (
        b64url(orjson.dumps(header))
        + "."
        + b64url(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))
    )
    return signing_input + "." + b64url(_signature(key, signing_input.encode("ascii")))


def _signature(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def verify(token: str, *, keys: Mapping[str, PublicKey]) -> dict[str, Any]:
    """Check the signature against ``keys`` (kid → key) and return the claims.

    A header with a ``kid`` picks that key; without one every key is tried.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a compact JWS")
    header = _json_object(b64url_decode(parts[0]), what="header")
    signature = b64url_decode(parts[2])
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    kid = header.get("kid")
    candidates = [keys[kid]] if isinstance(kid, str) and kid in keys else []
    if kid is None:
        candidates = list(keys.values())
    alg = header.get("alg")
    for key in candidates:
        if alg == algorithm(key) and _verify_one(key, signature, signing_input):
            return _json_object(b64url_decode(parts[1]), what="payload")
    raise InvalidToken("signature verification failed")


def _verify_one(key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        if len(signature) != 2 * _P256_BYTES:
            return False
        r = int.from_bytes(signature[:_P256_BYTES], "big")
        s = int.from_bytes(signature[_P256_BYTES:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def _json_object(raw: bytes, *, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidToken(f"token {what} is not JSON") from e
    if not isinstance(value, dict):
        raise InvalidToken(f"token {what} is not a JSON object")
    return value


def jwk(public_key: PublicKey) -> dict[str, str]:
    """The public key as a JWK, as served at ``/openid/v1/jwks``."""
    base = {"use": "sig", "kid": key_id(public_key), "alg": algorithm(public_key)}
    if isinstance(public_key, rsa.RSAPublicKey):
        nums = public_key.public_numbers()
        return base | {"kty": "RSA", "n": _uint(nums.n), "e": _uint(nums.e)}
    pn = public_key.public_numbers()
    return base | {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(pn.x.to_bytes(_P256_BYTES, "big")),
        "y": b64url(pn.y.to_bytes(_P256_BYTES, "big")),
    }


def _uint(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))
