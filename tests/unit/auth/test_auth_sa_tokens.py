from __future__ import annotations

import base64
import datetime as dt

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from k3py.server.auth import jws
from k3py.server.auth.jws import InvalidToken
from k3py.server.auth.sa_tokens import (
    DEFAULT_ISSUER,
    BoundObject,
    ServiceAccountTokens,
)

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def segments(token: str) -> tuple[dict, dict, bytes]:
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return (
        orjson.loads(base64.urlsafe_b64decode(pad(h))),
        orjson.loads(base64.urlsafe_b64decode(pad(p))),
        base64.urlsafe_b64decode(pad(s)),
    )


def issue(tokens: ServiceAccountTokens, **kw: object) -> str:
    args: dict = {
        "namespace": "default",
        "sa_name": "builder",
        "sa_uid": "uid-1",
        "audiences": [DEFAULT_ISSUER],
        "expiration_seconds": 3600,
        "now": NOW,
    }
    args.update(kw)
    return tokens.issue(**args)


def resign(token: str, *, header: dict | None = None, payload: dict | None = None) -> str:
    h, p, s = token.split(".")
    if header is not None:
        h = jws.b64url(orjson.dumps(header))
    if payload is not None:
        p = jws.b64url(orjson.dumps(payload))
    return f"{h}.{p}.{s}"


def test_round_trip_has_upstream_claims() -> None:
    tokens = ServiceAccountTokens(key=EC_KEY)
    pod = BoundObject(kind="Pod", name="web-0", uid="pod-uid")
    node = BoundObject(kind="Node", name="node-a", uid="node-uid")
    token = issue(tokens, bound_object=pod, node=node)
    header, payload, sig = segments(token)
    assert header == {"alg": "ES256", "kid": jws.key_id(EC_KEY.public_key())}
    assert len(sig) == 64
    iat = int(NOW.timestamp())
    assert payload["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert payload["sub"] == "system:serviceaccount:default:builder"
    assert payload["aud"] == [DEFAULT_ISSUER]
    assert (payload["iat"], payload["nbf"], payload["exp"]) == (iat, iat, iat + 3600)
    assert payload["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "builder", "uid": "uid-1"},
        "pod": {"name": "web-0", "uid": "pod-uid"},
        "node": {"name": "node-a", "uid": "node-uid"},
    }
    claims = tokens.verify(token, now=NOW + dt.timedelta(minutes=30))
    assert (claims.namespace, claims.name, claims.uid) == ("default", "builder", "uid-1")
    assert claims.audiences == (DEFAULT_ISSUER,)
    assert claims.pod == pod and claims.node == node and claims.secret is None
    assert claims.jti == payload["jti"]
    assert not claims.legacy


def test_rsa_key_signs_rs256() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = ServiceAccountTokens(key=key)
    token = issue(tokens)
    assert segments(token)[0]["alg"] == "RS256"
    assert tokens.verify(token, now=NOW).name == "builder"
    with pytest.raises(InvalidToken):
        ServiceAccountTokens(key=EC_KEY).verify(token, now=NOW)


def test_tampered_payload_is_rejected() -> None:
    tokens = ServiceAccountTokens(key=EC_KEY)
    token = issue(tokens)
    _h, payload, _s = segments(token)
    payload["kubernetes.io"]["namespace"] = "kube-system"
    payload["sub"] = "system:serviceaccount:kube-system:builder"
    with pytest.raises(InvalidToken, match="signature"):
        tokens.verify(resign(token, payload=payload), now=NOW)


def test_tampered_signature_is_rejected() -> None:
    tokens = ServiceAccountTokens(key=EC_KEY)
    h, p, s = issue(tokens).split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=="))
    sig[10] ^= 1
    with pytest.raises(InvalidToken):
        tokens.verify(f"{h}.{p}.{jws.b64url(bytes(sig))}", now=NOW)


def test_expiry_honours_a_60s_leeway() -> None:
    tokens = ServiceAccountTokens(key=EC_KEY)
    token = issue(tokens, expiration_seconds=600)
    tokens.verify(token, now=NOW + dt.timedelta(seconds=650))
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token, now=NOW + dt.timedelta(seconds=661))


def test_not_yet_valid_token_is_rejected() -> None:
    tokens = ServiceAccountTokens(key=EC_KEY)
    token = issue(tokens, now=NOW + dt.timedelta(hours=1))
    with pytest.raises(InvalidToken, match="not valid yet"):
        tokens.verify(token, now=NOW)


def test_wrong_key_is_rejected() -> None:
    token = issue(ServiceAccountTokens(key=ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(InvalidToken):
        ServiceAccountTokens(key=EC_KEY).verify(token, now=NOW)


def test_old_key_still_verifies_after_rotation() -> None:
    old = ec.generate_private_key(ec.SECP256R1())
    token = issue(ServiceAccountTokens(key=old))
    rotated = ServiceAccountTokens(key=EC_KEY, extra_public_keys=[old.public_key()])
    assert rotated.verify(token, now=NOW).name == "builder"
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {
        jws.key_id(old.public_key()),
        jws.key_id(EC_KEY.public_key()),
    }


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "HS256"},
        {"alg": "RS256"},
        {"alg": "ES256", "kid": "someone-else"},
    ],
)
def test_header_cannot_pick_the_algorithm_or_key(header: dict) -> None:
    tokens = ServiceAccountTokens(key=EC_KEY)
    with pytest.raises(InvalidToken):
        tokens.verify(resign(issue(tokens), header=header), now=NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "=",
        lambda t: t.replace(".", ".!", 1),
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t + ".x",
        lambda t: "e30." + t.split(".", 1)[1],  # header {}
    ],
)
def test_malformed_tokens_are_rejected(mangle) -> None:  # type: ignore[no-untyped-def]
    tokens = ServiceAccountTokens(key=EC_KEY)
    with pytest.raises(InvalidToken):
        tokens.verify(mangle(issue(tokens)), now=NOW)


def test_foreign_issuer_is_rejected() -> None:
    tokens = ServiceAccountTokens(key=EC_KEY, issuer="https://elsewhere.example")
    token = issue(tokens)
    with pytest.raises(InvalidToken, match="issuer"):
        ServiceAccountTokens(key=EC_KEY).verify(token, now=NOW)


def test_legacy_token_round_trip() -> None:
    tokens = ServiceAccountTokens(key=EC_KEY)
    token = tokens.issue_legacy(namespace="ci", sa_name="bot", sa_uid="u9", secret_name="bot-token")
    payload = segments(token)[1]
    assert payload["iss"] == "kubernetes/serviceaccount"
    assert payload["kubernetes.io/serviceaccount/secret.name"] == "bot-token"
    assert "exp" not in payload
    claims = tokens.verify(token, now=NOW + dt.timedelta(days=3650))
    assert claims.legacy and claims.legacy_secret_name == "bot-token"
    assert claims.username == "system:serviceaccount:ci:bot"


def test_jwks_describes_the_signing_key() -> None:
    (key,) = ServiceAccountTokens(key=EC_KEY).jwks()["keys"]
    nums = EC_KEY.public_key().public_numbers()
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
    assert int.from_bytes(jws.b64url_decode(key["x"]), "big") == nums.x
