"""Service-account tokens: bound JWTs as TokenRequest issues them, and legacy ones.

Bound tokens carry upstream's claims (``iss``, ``sub``, ``aud``, ``exp``, ``iat``,
``nbf``, ``jti`` and the private ``kubernetes.io`` object naming the namespace, the
ServiceAccount and what the token is bound to), signed with ``service.key``: ES256 for
the EC key k3py generates, RS256 for an RSA key a user brought.  Legacy tokens (the
``kubernetes.io/service-account-token`` Secret kind) use the ``kubernetes/serviceaccount``
issuer and never expire; whoever verifies them must also check that the Secret still
holds them.

This module only signs and checks signatures and times; whether the ServiceAccount
(or the bound Pod/Secret/Node) still exists is the authenticator's job (``authn``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from k3py.server.auth import jws
from k3py.server.auth.jws import InvalidToken
from k3py.server.auth.pki import PrivateKey, PublicKey, utc

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
LEEWAY_SECONDS = 60  # go-jose's default leeway for exp/nbf/iat, which upstream uses
_CACHE_MAX = 4096
_LEGACY_PREFIX = "kubernetes.io/serviceaccount/"

BoundKind = Literal["Pod", "Secret", "Node"]


@dataclass(frozen=True)
class BoundObject:
    kind: BoundKind
    name: str
    uid: str


@dataclass(frozen=True)
class ServiceAccountClaims:
    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...] = ()
    expires: int | None = None  # unix seconds; None for legacy tokens
    issued_at: int | None = None
    jti: str = ""
    pod: BoundObject | None = None
    secret: BoundObject | None = None
    node: BoundObject | None = None
    legacy_secret_name: str = ""  # set only for legacy tokens

    @property
    def legacy(self) -> bool:
        return bool(self.legacy_secret_name)

    @property
    def username(self) -> str:
        return service_account_username(self.namespace, self.name)


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


class ServiceAccountTokens:
    """Signs and verifies service-account JWTs with the service key.

    ``extra_public_keys`` lets tokens signed by a previous key verify after a rotation.
    """

    def __init__(
        self,
        *,
        key: PrivateKey,
        issuer: str = DEFAULT_ISSUER,
        extra_public_keys: Sequence[PublicKey] = (),
        accepted_issuers: Sequence[str] = (),
    ) -> None:
        self._key = key
        self.issuer = issuer
        self.kid = jws.key_id(key.public_key())
        self._public: dict[str, PublicKey] = {self.kid: key.public_key()}
        for pub in extra_public_keys:
            self._public.setdefault(jws.key_id(pub), pub)
        self._issuers = frozenset((issuer, *accepted_issuers))
        self._verified: dict[str, dict[str, Any]] = {}

    # ----------------------------------------------------------------------- issue

    def issue(
        self,
        *,
        namespace: str,
        sa_name: str,
        sa_uid: str,
        audiences: Sequence[str],
        expiration_seconds: int,
        bound_object: BoundObject | None = None,
        node: BoundObject | None = None,
        warn_after_seconds: int | None = None,
        now: dt.datetime | None = None,
    ) -> str:
        """A bound token as TokenRequest returns it.

        ``node`` adds the node a pod-bound token's pod runs on (upstream's
        ServiceAccountTokenPodNodeInfo); ``warn_after_seconds`` sets ``warnafter`` for
        the extended-expiry tokens kubelets request for projected volumes.
        """
        if expiration_seconds <= 0:
            raise ValueError("expiration_seconds must be positive")
        iat = int(utc(now).timestamp())
        private: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": sa_name, "uid": sa_uid},
        }
        if bound_object is not None:
            private[bound_object.kind.lower()] = {
                "name": bound_object.name,
                "uid": bound_object.uid,
            }
        if node is not None:
            private["node"] = {"name": node.name, "uid": node.uid}
        if warn_after_seconds is not None:
            private["warnafter"] = iat + warn_after_seconds
        claims = {
            "aud": list(audiences),
            "exp": iat + expiration_seconds,
            "iat": iat,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": iat,
            "sub": service_account_username(namespace, sa_name),
        }
        return jws.sign(claims=claims, key=self._key, kid=self.kid)

    def issue_legacy(self, *, namespace: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        """A non-expiring token for a ``kubernetes.io/service-account-token`` Secret."""
        claims = {
            "iss": LEGACY_ISSUER,
            _LEGACY_PREFIX + "namespace": namespace,
            _LEGACY_PREFIX + "secret.name": secret_name,
            _LEGACY_PREFIX + "service-account.name": sa_name,
            _LEGACY_PREFIX + "service-account.uid": sa_uid,
            "sub": service_account_username(namespace, sa_name),
        }
        return jws.sign(claims=claims, key=self._key, kid=self.kid)

    # ---------------------------------------------------------------------- verify

    def verify(self, token: str, *, now: dt.datetime | None = None) -> ServiceAccountClaims:
        """Signature, issuer, subject and times; raises :class:`InvalidToken`."""
        claims = self._verified_claims(token)
        iss = claims.get("iss")
        if iss == LEGACY_ISSUER:
            return _legacy_claims(claims)
        if iss not in self._issuers:
            raise InvalidToken("token issuer is not accepted")
        _check_times(claims, now=int(utc(now).timestamp()))
        return _bound_claims(claims)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        # Signature checks cost ~0.1 ms; pods re-send the same token on every request.
        cached = self._verified.get(token)
        if cached is not None:
            return cached
        claims = jws.verify(token, keys=self._public)
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set served at ``/openid/v1/jwks``."""
        return {"keys": [jws.jwk(pub) for pub in self._public.values()]}


def _check_times(claims: dict[str, Any], *, now: int) -> None:
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not isinstance(exp, int):
        raise InvalidToken("token has no expiry")
    if now > exp + LEEWAY_SECONDS:
        raise InvalidToken("token has expired")
    if isinstance(nbf, int) and now < nbf - LEEWAY_SECONDS:
        raise InvalidToken("token is not valid yet")
    if isinstance(iat, int) and now < iat - LEEWAY_SECONDS:
        raise InvalidToken("token was issued in the future")


def _bound_claims(claims: dict[str, Any]) -> ServiceAccountClaims:
    private = claims.get("kubernetes.io")
    if not isinstance(private, dict):
        raise InvalidToken("token has no kubernetes.io claims")
    namespace = _str(private.get("namespace"))
    sa = private.get("serviceaccount") or {}
    name, uid = _str(sa.get("name")), _str(sa.get("uid"))
    if not namespace or not name or claims.get("sub") != service_account_username(namespace, name):
        raise InvalidToken("token subject does not name its service account")
    aud = claims.get("aud")
    audiences = (
        (aud,) if isinstance(aud, str) else tuple(a for a in aud or () if isinstance(a, str))
    )
    return ServiceAccountClaims(
        namespace=namespace,
        name=name,
        uid=uid,
        audiences=audiences,
        expires=claims["exp"],
        issued_at=claims.get("iat") if isinstance(claims.get("iat"), int) else None,
        jti=_str(claims.get("jti")),
        pod=_ref(private, "pod"),
        secret=_ref(private, "secret"),
        node=_ref(private, "node"),
    )


def _legacy_claims(claims: dict[str, Any]) -> ServiceAccountClaims:
    namespace = _str(claims.get(_LEGACY_PREFIX + "namespace"))
    name = _str(claims.get(_LEGACY_PREFIX + "service-account.name"))
    secret = _str(claims.get(_LEGACY_PREFIX + "secret.name"))
    if not (namespace and name and secret):
        raise InvalidToken("legacy token lacks namespace, service account or secret")
    if claims.get("sub") != service_account_username(namespace, name):
        raise InvalidToken("token subject does not name its service account")
    return ServiceAccountClaims(
        namespace=namespace,
        name=name,
        uid=_str(claims.get(_LEGACY_PREFIX + "service-account.uid")),
        legacy_secret_name=secret,
    )


def _ref(private: dict[str, Any], key: str) -> BoundObject | None:
    value = private.get(key)
    if not isinstance(value, dict):
        return None
    kind: BoundKind = "Pod" if key == "pod" else "Secret" if key == "secret" else "Node"
    return BoundObject(kind=kind, name=_str(value.get("name")), uid=_str(value.get("uid")))


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
