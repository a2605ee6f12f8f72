"""PKI, join token, kubeconfig, TLS context, authentication and authorization.

Boot order (``server/run.py``)::

    pki = ensure_pki(tls_dir=data_dir / "server/tls", ...)
    token = ensure_token(path=data_dir / "server/token", ca_pem=pki.server_ca_pem, secret=cfg.token)
    write_kubeconfig(path=..., mode=0o600, server_url="https://127.0.0.1:6443",
                     ca_pem=pki.server_ca_pem, client_cert_pem=pki.admin.cert_pem,
                     client_key_pem=pki.admin.key_pem)
    ssl_context = server_ssl_context(pki)
"""

from k3py.server.auth.authn import (
    ANONYMOUS,
    Authenticator,
    ServiceAccountAuthenticator,
    StaticTokens,
    TokenAuthenticator,
    UserInfo,
    X509Authenticator,
)
from k3py.server.auth.authz import (
    Authorizer,
    ChainAuthorizer,
    Decision,
    MastersAuthorizer,
    RequestAttributes,
)
from k3py.server.auth.kubeconfig import write_kubeconfig
from k3py.server.auth.pki import PKI, ensure_pki, issue_client_cert, issue_serving_cert
from k3py.server.auth.sa_tokens import BoundObject, ServiceAccountClaims, ServiceAccountTokens
from k3py.server.auth.tls import server_ssl_context
from k3py.server.auth.token import ensure_token, parse_token

__all__ = [
    "ANONYMOUS",
    "PKI",
    "Authenticator",
    "Authorizer",
    "BoundObject",
    "ChainAuthorizer",
    "Decision",
    "MastersAuthorizer",
    "RequestAttributes",
    "ServiceAccountAuthenticator",
    "ServiceAccountClaims",
    "ServiceAccountTokens",
    "StaticTokens",
    "TokenAuthenticator",
    "UserInfo",
    "X509Authenticator",
    "ensure_pki",
    "ensure_token",
    "issue_client_cert",
    "issue_serving_cert",
    "parse_token",
    "server_ssl_context",
    "write_kubeconfig",
]
