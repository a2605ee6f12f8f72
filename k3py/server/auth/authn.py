"""Who is asking: client certificates first, then bearer tokens, else anonymous.

The order and the outcomes follow kube-apiserver's union authenticator:

- a client cert signed by the client CA → CN is the user, each O a group;
- a bearer token (``Authorization: Bearer …``, or the WebSocket subprotocol
  ``base64url.bearer.authorization.k8s.io.<token>`` kubectl uses for exec) is offered
  to each token authenticator in turn: static tokens (bootstrap tokens plug in here),
  then service-account JWTs;
- no credentials at all → ``None`` (anonymous; the API layer allows only health checks);
- credentials presented that nobody accepts → 401, even on paths anonymous may use.

Every authenticated user also gets the group ``system:authenticated``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k3py.server import errors
from k3py.server.auth.jws import InvalidToken
from k3py.server.auth.pki import issued_by
from k3py.server.auth.sa_tokens import ServiceAccountClaims, ServiceAccountTokens

log = logging.getLogger(__name__)

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"
SERVICE_ACCOUNTS = "system:serviceaccounts"
WS_BEARER_PREFIX = "base64url.bearer.authorization.k8s.io."
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 ``UserInfo`` (TokenReview, SelfSubjectReview)."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS = UserInfo(name="system:anonymous", groups=(UNAUTHENTICATED,))


def with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TokenAuthenticator(Protocol):
    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The user a token stands for, or None if this authenticator does not accept it."""
        ...


# ----------------------------------------------------------------------------- x509


class X509Authenticator:
    """Client certs: the TLS layer verified the chain; we re-check issuer and times."""

    _CACHE_MAX = 1024

    def __init__(self, *, client_ca: x509.Certificate, clock: Clock = _utcnow) -> None:
        self._ca = client_ca
        self._clock = clock
        self._cache: dict[bytes, tuple[UserInfo, x509.Certificate]] = {}

    def authenticate_der(self, der: bytes) -> UserInfo | None:
        hit = self._cache.get(der)
        if hit is None:
            hit = self._parse(der)
            if hit is None:
                return None
            if len(self._cache) >= self._CACHE_MAX:
                self._cache.clear()
            self._cache[der] = hit
        user, cert = hit
        now = self._clock()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return None
        return user

    def _parse(self, der: bytes) -> tuple[UserInfo, x509.Certificate] | None:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return None
        if cert.issuer != self._ca.subject or not issued_by(cert, self._ca):
            return None
        if not _client_auth_allowed(cert):
            return None
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(cns[0].value) if cns else ""
        if not name:
            return None
        orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        groups = tuple(dict.fromkeys(str(o.value) for o in orgs))
        cred = "X509SHA256=" + hashlib.sha256(der).hexdigest()
        user = UserInfo(
            name=name, groups=(*groups, AUTHENTICATED), extra={EXTRA_CREDENTIAL_ID: (cred,)}
        )
        return user, cert


def _client_auth_allowed(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return (
        ExtendedKeyUsageOID.CLIENT_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    )


# --------------------------------------------------------------------------- tokens


class StaticTokens:
    """A token → user map; bootstrap tokens and test fixtures plug in here."""

    def __init__(self, tokens: Mapping[str, UserInfo] | None = None) -> None:
        self._tokens: dict[str, UserInfo] = dict(tokens or {})

    def set(self, token: str, user: UserInfo) -> None:
        self._tokens[token] = user

    def remove(self, token: str) -> None:
        self._tokens.pop(token, None)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        # Compare every entry in constant time so timing does not leak a prefix.
        found: UserInfo | None = None
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return with_authenticated(found) if found is not None else None


# (namespace, name) → uid of the live ServiceAccount, or None when it is gone.
ServiceAccountLookup = Callable[[str, str], Awaitable[str | None]]
# (kind "Pod"|"Secret"|"Node", namespace ("" for Node), name) → uid, or None.
ObjectUIDLookup = Callable[[str, str, str], Awaitable[str | None]]
# (namespace, secret name) → the Secret's data["token"] (decoded), or None.
LegacySecretLookup = Callable[[str, str], Awaitable[bytes | None]]


class ServiceAccountAuthenticator:
    """Service-account JWTs, valid only while their ServiceAccount (same uid) exists.

    Bound tokens must name one of ``audiences`` and, when ``object_uid`` is given, the
    Pod/Secret/Node they are bound to must still exist with the same uid.  Legacy tokens
    are accepted only with ``legacy_secret_token``, and only while their Secret holds them.
    """

    def __init__(
        self,
        *,
        tokens: ServiceAccountTokens,
        audiences: Sequence[str],
        service_account_uid: ServiceAccountLookup,
        object_uid: ObjectUIDLookup | None = None,
        legacy_secret_token: LegacySecretLookup | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self._tokens = tokens
        self._audiences = frozenset(audiences)
        self._sa_uid = service_account_uid
        self._object_uid = object_uid
        self._legacy_secret = legacy_secret_token
        self._clock = clock

    async def authenticate_token(self, token: str) -> UserInfo | None:
        if token.count(".") != 2:
            return None
        try:
            claims = self._tokens.verify(token, now=self._clock())
        except InvalidToken as e:
            log.debug("service-account token rejected: %s", e)
            return None
        if not await self._still_valid(claims, token):
            return None
        return _sa_user(claims)

    async def _still_valid(self, claims: ServiceAccountClaims, token: str) -> bool:
        if claims.legacy:
            if self._legacy_secret is None:
                return False
            stored = await self._legacy_secret(claims.namespace, claims.legacy_secret_name)
            if stored is None or not hmac.compare_digest(stored, token.encode()):
                return False
        elif not self._audiences.intersection(claims.audiences):
            return False
        uid = await self._sa_uid(claims.namespace, claims.name)
        if uid is None or (claims.uid and uid != claims.uid):
            return False
        return await self._bound_objects_exist(claims)

    async def _bound_objects_exist(self, claims: ServiceAccountClaims) -> bool:
        if self._object_uid is None:
            return True
        for ref in (claims.pod, claims.secret, claims.node):
            if ref is None:
                continue
            namespace = "" if ref.kind == "Node" else claims.namespace
            uid = await self._object_uid(ref.kind, namespace, ref.name)
            if uid is None or uid != ref.uid:
                return False
        return True


def _sa_user(claims: ServiceAccountClaims) -> UserInfo:
    extra: dict[str, tuple[str, ...]] = {}
    if claims.pod is not None:
        extra["authentication.kubernetes.io/pod-name"] = (claims.pod.name,)
        extra["authentication.kubernetes.io/pod-uid"] = (claims.pod.uid,)
    if claims.node is not None:
        extra["authentication.kubernetes.io/node-name"] = (claims.node.name,)
        extra["authentication.kubernetes.io/node-uid"] = (claims.node.uid,)
    if claims.jti:
        extra[EXTRA_CREDENTIAL_ID] = ("JTI=" + claims.jti,)
    groups = (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{claims.namespace}", AUTHENTICATED)
    return UserInfo(name=claims.username, uid=claims.uid, groups=groups, extra=extra)


# ----------------------------------------------------------------------------- chain


class Authenticator:
    """The request authenticator the API layer calls: ``await auth.authenticate(request)``."""

    def __init__(
        self,
        *,
        x509_auth: X509Authenticator | None = None,
        token_authenticators: Sequence[TokenAuthenticator] = (),
    ) -> None:
        self._x509 = x509_auth
        self._tokens = list(token_authenticators)

    def add_token_authenticator(self, authenticator: TokenAuthenticator) -> None:
        self._tokens.append(authenticator)

    async def authenticate(self, request: Any) -> UserInfo | None:
        """An aiohttp request's user; None if anonymous; APIError 401 for bad credentials."""
        return await self.authenticate_credentials(
            peer_cert_der=peer_cert_der(request), bearer=bearer_token(request.headers)
        )

    async def authenticate_credentials(
        self, *, peer_cert_der: bytes | None, bearer: str | None
    ) -> UserInfo | None:
        if peer_cert_der and self._x509 is not None:
            user = self._x509.authenticate_der(peer_cert_der)
            if user is not None:
                return user
        if bearer is not None:
            user = await self.authenticate_token(bearer)
            if user is not None:
                return user
        if peer_cert_der or bearer is not None:
            raise errors.unauthorized()
        return None

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """Token alone (also what TokenReview asks); None if no authenticator takes it."""
        if not token:
            return None
        for authenticator in self._tokens:
            user = await authenticator.authenticate_token(token)
            if user is not None:
                return user
        return None


def peer_cert_der(request: Any) -> bytes | None:
    """The client certificate (DER) of an aiohttp request over TLS, if one was sent."""
    transport = getattr(request, "transport", None)
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token of a request: Authorization header, or kubectl's WebSocket form.

    Returns "" for a malformed bearer header (credentials presented, none usable), None
    when there are none.
    """
    auth = headers.get("Authorization", "")
    scheme, _, rest = auth.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    if headers.get("Upgrade", "").lower() == "websocket":
        for proto in headers.get("Sec-WebSocket-Protocol", "").split(","):
            proto = proto.strip()
            if proto.startswith(WS_BEARER_PREFIX):
                return _ws_token(proto[len(WS_BEARER_PREFIX) :])
    return None


def _ws_token(encoded: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return ""
