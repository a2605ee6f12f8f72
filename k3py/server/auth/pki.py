"""The server's PKI under ``<data-dir>/server/tls``, made on first start and reused after.

Layout (K3s's file names):

    server-ca.crt/.key               signs serving certs (API server, kubelets)
    client-ca.crt/.key               signs client certs (admin, nodes); the API trusts it
    serving-kube-apiserver.crt/.key  the API's TLS cert (leaf + server CA in the .crt)
    client-admin.crt/.key            CN=system:admin, O=system:masters (leaf + client CA)
    service.key / service.pub        service-account token signing key

Every key is EC P-256: generating one takes well under a millisecond, where RSA 2048
takes tens to hundreds, and the whole first start has a budget of 150 ms.  Existing
keys of either type are loaded as they are (a user may bring an RSA CA).

Reuse rules: a file that exists is never rewritten, with three exceptions that only
ever touch leaf *certificates* (their keys are kept): the serving cert is re-issued
from the existing CA when it lacks a SAN now asked for (the new cert carries the union
of old and new SANs, so clients using an old address keep working); and a leaf cert
that expires within 90 days, or was not signed by the CA next to it, is re-issued
(K3s renews on restart the same way).  A CA whose cert exists without its key (or the
reverse) is an error, never silently replaced: everything else trusts it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k3py.server.auth.files import sync_dir, write_atomic

log = logging.getLogger(__name__)
T = TypeVar("T")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Usage = Literal["server", "client"]

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_DAYS = 365
RENEW_WITHIN = dt.timedelta(days=90)
# Backdate notBefore so a peer whose clock is a little behind still accepts fresh certs.
BACKDATE = dt.timedelta(hours=1)
KEY_MODE = 0o600
CERT_MODE = 0o644

SERVER_CA = "server-ca"
CLIENT_CA = "client-ca"
SERVING = "serving-kube-apiserver"
ADMIN = "client-admin"
SERVICE_KEY = "service.key"
SERVICE_PUB = "service.pub"


class PKIError(Exception):
    """The TLS directory is in a state we must not repair on our own."""


@dataclass
class CertKey:
    """A certificate (the leaf, if the file holds a chain) with its key, as on disk."""

    cert: x509.Certificate
    key: PrivateKey
    cert_pem: bytes  # the file's bytes (leaf first, then the issuing CA for leaf files)
    key_pem: bytes
    cert_path: Path
    key_path: Path


@dataclass
class PKI:
    tls_dir: Path
    server_ca: CertKey
    client_ca: CertKey
    serving: CertKey
    admin: CertKey
    service_key: PrivateKey
    service_public_key: PublicKey
    service_key_path: Path
    service_pub_path: Path

    @property
    def server_ca_pem(self) -> bytes:
        """Exactly the bytes of server-ca.crt: what the join token's hash covers."""
        return self.server_ca.cert_pem

    @property
    def client_ca_pem(self) -> bytes:
        return self.client_ca.cert_pem


@dataclass(frozen=True)
class SANs:
    dns: tuple[str, ...]
    ips: tuple[IPAddress, ...]

    def covers(self, other: SANs) -> bool:
        return set(other.dns) <= set(self.dns) and set(other.ips) <= set(self.ips)

    def union(self, other: SANs) -> SANs:
        return SANs(
            dns=tuple(dict.fromkeys((*self.dns, *other.dns))),
            ips=tuple(dict.fromkeys((*self.ips, *other.ips))),
        )


# ---------------------------------------------------------------------------- keys, PEM


def utc(now: dt.datetime | None) -> dt.datetime:
    """``now`` as an aware UTC time (naive values are taken to be UTC already)."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: PrivateKey) -> bytes:
    # "EC PRIVATE KEY" / "RSA PRIVATE KEY", as K3s writes them; kubectl and Python's ssl
    # read both this and PKCS#8.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def public_key_to_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(data: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(
        data, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PKIError(f"unsupported key type {type(key).__name__} (want EC or RSA)")
    return key


def load_leaf(data: bytes) -> x509.Certificate:
    certs = x509.load_pem_x509_certificates(data)
    return certs[0]


# ----------------------------------------------------------------------------- signing


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def make_ca(*, common_name: str, key: PrivateKey, now: dt.datetime) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _key_usage(ca=True, rsa_key=isinstance(key, rsa.RSAPrivateKey)), critical=True
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(*, ca: bool, rsa_key: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=rsa_key,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def sign_leaf(
    *,
    ca: CertKey,
    public_key: PublicKey,
    common_name: str,
    organizations: Sequence[str] = (),
    usage: Usage,
    sans: SANs | None = None,
    days: int = LEAF_DAYS,
    now: dt.datetime,
) -> x509.Certificate:
    eku = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(ca=False, rsa_key=isinstance(public_key, rsa.RSAPublicKey)), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(_authority_key_id(ca.cert), critical=False)
    )
    if sans is not None and (sans.dns or sans.ips):
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in sans.dns]
        names += [x509.IPAddress(ip) for ip in sans.ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def cert_sans(cert: x509.Certificate) -> SANs:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return SANs(dns=(), ips=())
    return SANs(
        dns=tuple(ext.get_values_for_type(x509.DNSName)),
        ips=tuple(ext.get_values_for_type(x509.IPAddress)),  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------------------- SANs


def serving_sans(
    *,
    node_ip: str,
    advertise_address: str | None,
    tls_sans: Iterable[str],
    cluster_domain: str,
    service_cidr: str,
    hostname: str,
) -> SANs:
    """The names the API server answers to, as kube-apiserver and K3s list them."""
    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    dns.append(f"kubernetes.default.svc.{cluster_domain}")
    ips: list[IPAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    names = [hostname, node_ip, advertise_address or "", *tls_sans]
    for cidr in service_cidr.split(","):
        if cidr.strip():
            ips.append(service_ip(cidr.strip()))
    for name in names:
        _add_name(name, dns=dns, ips=ips)
    return SANs(dns=tuple(dict.fromkeys(dns)), ips=tuple(dict.fromkeys(ips)))


def service_ip(cidr: str) -> IPAddress:
    """The first address of the service CIDR: the ``kubernetes`` Service's ClusterIP."""
    net = ipaddress.ip_network(cidr, strict=False)
    return net.network_address + 1


def _add_name(name: str, *, dns: list[str], ips: list[IPAddress]) -> None:
    name = name.strip().strip("[]")
    if not name:
        return
    try:
        ips.append(ipaddress.ip_address(name))
    except ValueError:
        dns.append(name.lower())


# --------------------------------------------------------------------------- on disk


def _paths(tls_dir: Path, stem: str) -> tuple[Path, Path]:
    return tls_dir / f"{stem}.crt", tls_dir / f"{stem}.key"


def _load_pair(tls_dir: Path, stem: str) -> CertKey | None:
    cert_path, key_path = _paths(tls_dir, stem)
    have_cert, have_key = cert_path.exists(), key_path.exists()
    if not have_cert and not have_key:
        return None
    if not (have_cert and have_key):
        present = cert_path if have_cert else key_path
        raise PKIError(f"{present} exists without its pair; restore it or remove both files")
    cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    return CertKey(
        _read(load_leaf, cert_pem, cert_path),
        _read(load_private_key, key_pem, key_path),
        cert_pem,
        key_pem,
        cert_path,
        key_path,
    )


def _read(loader: Callable[[bytes], T], data: bytes, path: Path) -> T:
    try:
        return loader(data)
    except ValueError as e:
        raise PKIError(f"{path}: cannot load: {e}") from e


def _ensure_ca(*, tls_dir: Path, stem: str, prefix: str, now: dt.datetime) -> CertKey:
    existing = _load_pair(tls_dir, stem)
    if existing is not None:
        return existing
    key = new_key()
    cert = make_ca(common_name=f"{prefix}@{int(now.timestamp())}", key=key, now=now)
    cert_path, key_path = _paths(tls_dir, stem)
    pair = CertKey(cert, key, cert_to_pem(cert), key_to_pem(key), cert_path, key_path)
    write_atomic(key_path, pair.key_pem, mode=KEY_MODE)
    write_atomic(cert_path, pair.cert_pem, mode=CERT_MODE)
    return pair


@dataclass(frozen=True)
class LeafSpec:
    stem: str
    common_name: str
    organizations: tuple[str, ...]
    usage: Usage
    sans: SANs | None = None


def _ensure_leaf(*, tls_dir: Path, ca: CertKey, spec: LeafSpec, now: dt.datetime) -> CertKey:
    cert_path, key_path = _paths(tls_dir, spec.stem)
    key_pem = key_path.read_bytes() if key_path.exists() else None
    key = _read(load_private_key, key_pem, key_path) if key_pem is not None else None
    if cert_path.exists() and key is not None:
        cert_pem = cert_path.read_bytes()
        cert = _read(load_leaf, cert_pem, cert_path)
        reason = _reissue_reason(cert=cert, key=key, ca=ca, spec=spec, now=now)
        if reason is None:
            return CertKey(cert, key, cert_pem, key_pem or b"", cert_path, key_path)
        log.info("re-issuing %s: %s", cert_path, reason)
        sans = spec.sans.union(cert_sans(cert)) if spec.sans is not None else None
        spec = LeafSpec(spec.stem, spec.common_name, spec.organizations, spec.usage, sans)
    if key is None:
        key = new_key()
        key_pem = key_to_pem(key)
        write_atomic(key_path, key_pem, mode=KEY_MODE)
    cert = sign_leaf(
        ca=ca,
        public_key=key.public_key(),
        common_name=spec.common_name,
        organizations=spec.organizations,
        usage=spec.usage,
        sans=spec.sans,
        now=now,
    )
    cert_pem = cert_to_pem(cert) + ca.cert_pem
    write_atomic(cert_path, cert_pem, mode=CERT_MODE)
    return CertKey(cert, key, cert_pem, key_pem or b"", cert_path, key_path)


def _reissue_reason(
    *, cert: x509.Certificate, key: PrivateKey, ca: CertKey, spec: LeafSpec, now: dt.datetime
) -> str | None:
    if cert.not_valid_after_utc - now < RENEW_WITHIN:
        return "expires soon"
    if not issued_by(cert, ca.cert):
        return "not signed by the current CA"
    if _spki(cert.public_key()) != _spki(key.public_key()):  # type: ignore[arg-type]
        return "does not match its key"
    if spec.sans is not None and not cert_sans(cert).covers(spec.sans):
        return "missing SANs"
    return None


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ensure_service_key(tls_dir: Path) -> tuple[PrivateKey, Path, Path]:
    key_path, pub_path = tls_dir / SERVICE_KEY, tls_dir / SERVICE_PUB
    if key_path.exists():
        key = load_private_key(key_path.read_bytes())
    else:
        key = new_key()
        write_atomic(key_path, key_to_pem(key), mode=KEY_MODE)
    if not pub_path.exists():
        write_atomic(pub_path, public_key_to_pem(key.public_key()), mode=CERT_MODE)
    return key, key_path, pub_path


def ensure_pki(
    *,
    tls_dir: Path,
    node_ip: str,
    advertise_address: str | None,
    tls_sans: list[str],
    cluster_domain: str,
    service_cidr: str,
    now: dt.datetime | None = None,
    hostname: str | None = None,
) -> PKI:
    """Create the PKI on first start, load (and minimally repair) it on later ones."""
    now = utc(now)
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    server_ca = _ensure_ca(tls_dir=tls_dir, stem=SERVER_CA, prefix="k3py-server-ca", now=now)
    client_ca = _ensure_ca(tls_dir=tls_dir, stem=CLIENT_CA, prefix="k3py-client-ca", now=now)
    sans = serving_sans(
        node_ip=node_ip,
        advertise_address=advertise_address,
        tls_sans=tls_sans,
        cluster_domain=cluster_domain,
        service_cidr=service_cidr,
        hostname=(hostname or socket.gethostname()).lower(),
    )
    serving_spec = LeafSpec(SERVING, "kube-apiserver", (), "server", sans)
    serving = _ensure_leaf(tls_dir=tls_dir, ca=server_ca, spec=serving_spec, now=now)
    admin_spec = LeafSpec(ADMIN, "system:admin", ("system:masters",), "client")
    admin = _ensure_leaf(tls_dir=tls_dir, ca=client_ca, spec=admin_spec, now=now)
    service_key, service_key_path, service_pub_path = _ensure_service_key(tls_dir)
    sync_dir(tls_dir)
    return PKI(
        tls_dir=tls_dir,
        server_ca=server_ca,
        client_ca=client_ca,
        serving=serving,
        admin=admin,
        service_key=service_key,
        service_public_key=service_key.public_key(),
        service_key_path=service_key_path,
        service_pub_path=service_pub_path,
    )


# ------------------------------------------------------------ certificates for others


def issue_client_cert(
    pki: PKI,
    *,
    common_name: str,
    organizations: Sequence[str],
    days: int = LEAF_DAYS,
    now: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A client cert signed by the client CA, e.g. ``system:node:<name>`` / ``system:nodes``.

    Returns ``(cert_pem, key_pem)``; ``cert_pem`` is the leaf followed by the client CA,
    as K3s hands out node certs.
    """
    key = new_key()
    cert = sign_leaf(
        ca=pki.client_ca,
        public_key=key.public_key(),
        common_name=common_name,
        organizations=organizations,
        usage="client",
        days=days,
        now=utc(now),
    )
    return cert_to_pem(cert) + pki.client_ca.cert_pem, key_to_pem(key)


def issue_serving_cert(
    pki: PKI,
    *,
    common_name: str,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    days: int = LEAF_DAYS,
    now: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A serving cert signed by the server CA (e.g. a kubelet's :10250 cert).

    Returns ``(cert_pem, key_pem)``; ``cert_pem`` is the leaf followed by the server CA.
    """
    key = new_key()
    dns: list[str] = []
    ips: list[IPAddress] = []
    for name in (*dns_names, *ip_addresses):
        _add_name(name, dns=dns, ips=ips)
    cert = sign_leaf(
        ca=pki.server_ca,
        public_key=key.public_key(),
        common_name=common_name,
        usage="server",
        sans=SANs(dns=tuple(dict.fromkeys(dns)), ips=tuple(dict.fromkeys(ips))),
        days=days,
        now=utc(now),
    )
    return cert_to_pem(cert) + pki.server_ca.cert_pem, key_to_pem(key)
