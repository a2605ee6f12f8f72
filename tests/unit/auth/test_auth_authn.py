from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from k3py.server.auth.authn import (
    Authenticator,
    ServiceAccountAuthenticator,
    StaticTokens,
    UserInfo,
    X509Authenticator,
    bearer_token,
)
from k3py.server.auth.pki import PKI, ensure_pki, issue_client_cert
from k3py.server.auth.sa_tokens import DEFAULT_ISSUER, BoundObject, ServiceAccountTokens
from k3py.server.errors import APIError

AUDIENCES = [DEFAULT_ISSUER, "k3s"]


def der(cert_pem: bytes) -> bytes:
    cert = x509.load_pem_x509_certificates(cert_pem)[0]
    return cert.public_bytes(serialization.Encoding.DER)


class FakeObjects:
    """Live ServiceAccounts / Pods / Secrets by key, as an informer cache would answer."""

    def __init__(self) -> None:
        self.service_accounts = {("default", "builder"): "sa-uid"}
        self.objects = {("Pod", "default", "web-0"): "pod-uid"}
        self.secrets: dict[tuple[str, str], bytes] = {}

    async def sa_uid(self, namespace: str, name: str) -> str | None:
        return self.service_accounts.get((namespace, name))

    async def object_uid(self, kind: str, namespace: str, name: str) -> str | None:
        return self.objects.get((kind, namespace, name))

    async def secret_token(self, namespace: str, name: str) -> bytes | None:
        return self.secrets.get((namespace, name))


@pytest.fixture
def objects() -> FakeObjects:
    return FakeObjects()


@pytest.fixture
def tokens(pki: PKI) -> ServiceAccountTokens:
    return ServiceAccountTokens(key=pki.service_key)


@pytest.fixture
def authn(pki: PKI, tokens: ServiceAccountTokens, objects: FakeObjects) -> Authenticator:
    sa = ServiceAccountAuthenticator(
        tokens=tokens,
        audiences=AUDIENCES,
        service_account_uid=objects.sa_uid,
        object_uid=objects.object_uid,
        legacy_secret_token=objects.secret_token,
    )
    static = StaticTokens(
        {"bootstrap-abc": UserInfo("system:bootstrap:abc", groups=("system:bootstrappers",))}
    )
    return Authenticator(
        x509_auth=X509Authenticator(client_ca=pki.client_ca.cert), token_authenticators=[static, sa]
    )


def sa_token(tokens: ServiceAccountTokens, **kw: object) -> str:
    args: dict = {
        "namespace": "default",
        "sa_name": "builder",
        "sa_uid": "sa-uid",
        "audiences": [DEFAULT_ISSUER],
        "expiration_seconds": 3600,
    }
    args.update(kw)
    return tokens.issue(**args)


async def test_admin_cert_is_system_admin_in_masters(authn: Authenticator, pki: PKI) -> None:
    admin_der = der(pki.admin.cert_pem)
    user = await authn.authenticate_credentials(peer_cert_der=admin_der, bearer=None)
    assert user is not None
    assert user.name == "system:admin"
    assert user.groups == ("system:masters", "system:authenticated")
    assert user.uid == ""
    assert user.extra == {
        "authentication.kubernetes.io/credential-id": (
            "X509SHA256=" + hashlib.sha256(admin_der).hexdigest(),
        )
    }


async def test_node_cert_user_and_group(authn: Authenticator, pki: PKI) -> None:
    cert_pem, _ = issue_client_cert(
        pki, common_name="system:node:w1", organizations=["system:nodes"]
    )
    user = await authn.authenticate_credentials(peer_cert_der=der(cert_pem), bearer=None)
    assert user is not None and user.name == "system:node:w1"
    assert user.groups == ("system:nodes", "system:authenticated")


async def test_cert_from_another_ca_is_unauthorized(authn: Authenticator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = ensure_pki(
        tls_dir=tmp_path / "other",
        node_ip="127.0.0.1",
        advertise_address=None,
        tls_sans=[],
        cluster_domain="cluster.local",
        service_cidr="10.43.0.0/16",
    )
    with pytest.raises(APIError) as e:
        await authn.authenticate_credentials(peer_cert_der=der(other.admin.cert_pem), bearer=None)
    assert e.value.code == 401


async def test_expired_cert_is_unauthorized(pki: PKI) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    authn = Authenticator(
        x509_auth=X509Authenticator(client_ca=pki.client_ca.cert, clock=lambda: later)
    )
    with pytest.raises(APIError):
        await authn.authenticate_credentials(peer_cert_der=der(pki.admin.cert_pem), bearer=None)


async def test_server_cert_is_not_a_client_identity(pki: PKI) -> None:
    # Signed by the server CA (and for serverAuth only): never a user.
    x = X509Authenticator(client_ca=pki.server_ca.cert)
    assert x.authenticate_der(der(pki.serving.cert_pem)) is None


async def test_no_credentials_is_anonymous(authn: Authenticator) -> None:
    assert await authn.authenticate_credentials(peer_cert_der=None, bearer=None) is None


async def test_service_account_token(authn: Authenticator, tokens: ServiceAccountTokens) -> None:
    pod = BoundObject(kind="Pod", name="web-0", uid="pod-uid")
    token = sa_token(tokens, bound_object=pod)
    user = await authn.authenticate_credentials(peer_cert_der=None, bearer=token)
    assert user is not None
    assert user.name == "system:serviceaccount:default:builder"
    assert user.uid == "sa-uid"
    assert user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    )
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("web-0",)
    assert user.extra["authentication.kubernetes.io/pod-uid"] == ("pod-uid",)
    assert user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")


@pytest.mark.parametrize(
    "change",
    ["sa-deleted", "sa-recreated", "pod-deleted", "wrong-audience", "expired", "garbage"],
)
async def test_service_account_token_stops_working(
    change: str, authn: Authenticator, tokens: ServiceAccountTokens, objects: FakeObjects
) -> None:
    pod = BoundObject(kind="Pod", name="web-0", uid="pod-uid")
    kw: dict = {"bound_object": pod}
    if change == "wrong-audience":
        kw["audiences"] = ["vault"]
    if change == "expired":
        kw["now"] = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    token = sa_token(tokens, **kw)
    if change == "sa-deleted":
        del objects.service_accounts[("default", "builder")]
    if change == "sa-recreated":
        objects.service_accounts[("default", "builder")] = "new-uid"
    if change == "pod-deleted":
        del objects.objects[("Pod", "default", "web-0")]
    if change == "garbage":
        token = token[:-4] + "AAAA"
    with pytest.raises(APIError) as e:
        await authn.authenticate_credentials(peer_cert_der=None, bearer=token)
    assert e.value.code == 401
    assert await authn.authenticate_token(token) is None


async def test_legacy_token_needs_its_secret(
    authn: Authenticator, tokens: ServiceAccountTokens, objects: FakeObjects
) -> None:
    token = tokens.issue_legacy(
        namespace="default", sa_name="builder", sa_uid="sa-uid", secret_name="b-tok"
    )
    assert await authn.authenticate_token(token) is None
    objects.secrets[("default", "b-tok")] = token.encode()
    user = await authn.authenticate_token(token)
    assert user is not None and user.name == "system:serviceaccount:default:builder"
    objects.secrets[("default", "b-tok")] = b"rotated"
    assert await authn.authenticate_token(token) is None


async def test_legacy_token_without_lookup_is_refused(
    pki: PKI, tokens: ServiceAccountTokens, objects: FakeObjects
) -> None:
    sa = ServiceAccountAuthenticator(
        tokens=tokens, audiences=AUDIENCES, service_account_uid=objects.sa_uid
    )
    token = tokens.issue_legacy(
        namespace="default", sa_name="builder", sa_uid="sa-uid", secret_name="b-tok"
    )
    assert await sa.authenticate_token(token) is None
    assert await sa.authenticate_token(sa_token(tokens)) is not None


async def test_static_token(authn: Authenticator) -> None:
    user = await authn.authenticate_credentials(peer_cert_der=None, bearer="bootstrap-abc")
    assert user is not None and user.name == "system:bootstrap:abc"
    assert user.groups == ("system:bootstrappers", "system:authenticated")
    with pytest.raises(APIError):
        await authn.authenticate_credentials(peer_cert_der=None, bearer="bootstrap-abd")


async def test_cert_wins_over_a_bad_token(authn: Authenticator, pki: PKI) -> None:
    user = await authn.authenticate_credentials(
        peer_cert_der=der(pki.admin.cert_pem), bearer="nope"
    )
    assert user is not None and user.name == "system:admin"


async def test_empty_bearer_is_unauthorized(authn: Authenticator) -> None:
    with pytest.raises(APIError):
        await authn.authenticate_credentials(peer_cert_der=None, bearer="")


def test_bearer_token_parsing() -> None:
    assert bearer_token({"Authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"Authorization": "bearer  abc "}) == "abc"
    assert bearer_token({"Authorization": "Bearer"}) == ""
    assert bearer_token({"Authorization": "Basic dXNlcjpwdw=="}) is None
    assert bearer_token({}) is None
    proto = "base64url.bearer.authorization.k8s.io." + base64.urlsafe_b64encode(
        b"tok.en"
    ).decode().rstrip("=")
    ws = {"Upgrade": "websocket", "Sec-WebSocket-Protocol": f"v5.channel.k8s.io, {proto}"}
    assert bearer_token(ws) == "tok.en"
    assert bearer_token({"Sec-WebSocket-Protocol": proto}) is None


def test_user_info_api_shape() -> None:
    user = UserInfo("u", uid="1", groups=("g",), extra={"k": ("v",)})
    assert user.to_api() == {"username": "u", "uid": "1", "groups": ["g"], "extra": {"k": ["v"]}}
    assert UserInfo("u").to_api() == {"username": "u"}
