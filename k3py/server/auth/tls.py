"""The API server's TLS context: serving cert, client CA, client certs optional."""

from __future__ import annotations

import ssl

from k3py.server.auth.pki import PKI


def server_ssl_context(pki: PKI) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for aiohttp's ``web.TCPSite(..., ssl_context=...)``.

    Client certs are requested and, when sent, verified against the client CA during
    the handshake (a cert from another CA fails it, like Go's VerifyClientCertIfGiven);
    clients without one still connect, so bearer tokens and anonymous health checks work.
    ALPN offers only http/1.1: the server does not speak h2.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=pki.serving.cert_path, keyfile=pki.serving.key_path)
    ctx.load_verify_locations(cafile=pki.client_ca.cert_path)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
