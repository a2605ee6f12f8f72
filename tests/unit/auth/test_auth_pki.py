from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from k3py.server.auth.pki import (
    PKI,
    PKIError,
    cert_sans,
    ensure_pki,
    issue_client_cert,
    issue_serving_cert,
)

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
FILES = [
    "server-ca.crt",
    "server-ca.key",
    "client-ca.crt",
    "client-ca.key",
    "serving-kube-apiserver.crt",
    "serving-kube-apiserver.key",
    "client-admin.crt",
    "client-admin.key",
    "service.key",
    "service.pub",
]


def make(
    tls_dir: Path,
    *,
    tls_sans: list[str] | None = None,
    now: dt.datetime = NOW,
    node_ip: str = "192.168.56.10",
    service_cidr: str = "10.43.0.0/16",
) -> PKI:
    return ensure_pki(
        tls_dir=tls_dir,
        node_ip=node_ip,
        advertise_address="203.0.113.7",
        tls_sans=["api.example.com", "10.9.8.7"] if tls_sans is None else tls_sans,
        cluster_domain="cluster.local",
        service_cidr=service_cidr,
        now=now,
        hostname="Node-A",
    )


def snapshot(tls_dir: Path) -> dict[str, tuple[bytes, int, int]]:
    out = {}
    for name in FILES:
        st = (tls_dir / name).stat()
        out[name] = ((tls_dir / name).read_bytes(), st.st_ino, st.st_mtime_ns)
    return out


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def verify_client(cert_file: Path, ca: x509.Certificate, *, at: dt.datetime = NOW) -> None:
    """Web-PKI client verification, except that (as in Kubernetes) a SAN is optional."""
    certs = x509.load_pem_x509_certificates(cert_file.read_bytes())
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .time(at)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
        .build_client_verifier()
    )
    verifier.verify(certs[0], certs[1:])


def test_first_start_creates_every_file_with_safe_modes(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    pki = make(tls)
    for name in FILES:
        mode = stat.S_IMODE((tls / name).stat().st_mode)
        assert mode == (0o600 if name.endswith(".key") else 0o644), name
    assert isinstance(pki.service_key, ec.EllipticCurvePrivateKey)
    assert pki.server_ca_pem == (tls / "server-ca.crt").read_bytes()
    pub = serialization.load_pem_public_key((tls / "service.pub").read_bytes())
    assert pub == pki.service_key.public_key()


def test_second_start_reuses_files_untouched(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    first = make(tls)
    before = snapshot(tls)
    second = make(tls, now=NOW + dt.timedelta(days=30))
    assert snapshot(tls) == before
    assert second.server_ca.cert == first.server_ca.cert
    assert second.admin.key_pem == first.admin.key_pem
    assert sorted(os.listdir(tls)) == sorted(FILES)  # no temp files left behind


def test_cas_and_leaves_have_the_agreed_lifetimes(tmp_path: Path) -> None:
    pki = make(tmp_path / "tls")
    for ca in (pki.server_ca.cert, pki.client_ca.cert):
        assert ca.not_valid_after_utc - NOW == dt.timedelta(days=3650)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for cert in (pki.serving.cert, pki.admin.cert):
        assert cert.not_valid_after_utc - NOW == dt.timedelta(days=365)
        assert cert.not_valid_before_utc <= NOW
    assert pki.server_ca.cert.subject != pki.client_ca.cert.subject


def test_serving_cert_carries_all_sans(tmp_path: Path) -> None:
    pki = make(tmp_path / "tls")
    sans = cert_sans(pki.serving.cert)
    assert set(sans.dns) >= {
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "node-a",
        "api.example.com",
    }
    assert {str(ip) for ip in sans.ips} >= {
        "127.0.0.1",
        "::1",
        "192.168.56.10",
        "203.0.113.7",
        "10.43.0.1",
        "10.9.8.7",
    }
    assert "10.9.8.7" not in sans.dns  # an IP --tls-san is an IP SAN, not a DNS one
    eku = pki.serving.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_serving_cert_verifies_as_a_server_for_its_names(tmp_path: Path) -> None:
    pki = make(tmp_path / "tls")
    certs = x509.load_pem_x509_certificates(pki.serving.cert_path.read_bytes())
    store = Store([pki.server_ca.cert])
    for name in (
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("10.43.0.1")),
    ):
        verifier = PolicyBuilder().store(store).time(NOW).build_server_verifier(name)
        verifier.verify(certs[0], certs[1:])
    wrong = PolicyBuilder().store(store).time(NOW).build_server_verifier(x509.DNSName("evil.test"))
    with pytest.raises(VerificationError):
        wrong.verify(certs[0], certs[1:])


def test_dual_stack_service_cidr_gets_both_service_ips(tmp_path: Path) -> None:
    pki = make(tmp_path / "tls", service_cidr="10.43.0.0/16,2001:cafe:43::/112")
    ips = {str(ip) for ip in cert_sans(pki.serving.cert).ips}
    assert {"10.43.0.1", "2001:cafe:43::1"} <= ips


def test_admin_cert_chains_to_client_ca_with_masters_identity(tmp_path: Path) -> None:
    pki = make(tmp_path / "tls")
    verify_client(pki.admin.cert_path, pki.client_ca.cert)
    with pytest.raises(VerificationError):
        verify_client(pki.admin.cert_path, pki.server_ca.cert)
    subject = pki.admin.cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:admin"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"


def test_new_san_reissues_only_the_serving_cert(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    make(tls)
    before = snapshot(tls)
    pki = make(tls, tls_sans=["api.example.com", "10.9.8.7", "new.example.com"])
    after = snapshot(tls)
    changed = {name for name in FILES if after[name][0] != before[name][0]}
    assert changed == {"serving-kube-apiserver.crt"}
    sans = cert_sans(pki.serving.cert)
    assert "new.example.com" in sans.dns
    assert pki.serving.cert.issuer == pki.server_ca.cert.subject


def test_reissued_serving_cert_keeps_old_sans(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    make(tls, node_ip="192.168.56.10")
    pki = make(tls, node_ip="192.168.56.11")
    ips = {str(ip) for ip in cert_sans(pki.serving.cert).ips}
    assert {"192.168.56.10", "192.168.56.11"} <= ips


def test_leaf_close_to_expiry_is_renewed_with_the_same_key(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    first = make(tls)
    later = NOW + dt.timedelta(days=300)
    second = make(tls, now=later)
    assert second.admin.cert.serial_number != first.admin.cert.serial_number
    assert second.admin.key_pem == first.admin.key_pem
    assert second.admin.cert.not_valid_after_utc - later == dt.timedelta(days=365)
    assert second.server_ca.cert == first.server_ca.cert
    verify_client(second.admin.cert_path, second.client_ca.cert, at=later)


def test_ca_cert_without_key_is_refused(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    make(tls)
    (tls / "client-ca.key").unlink()
    with pytest.raises(PKIError, match="client-ca.crt"):
        make(tls)


def test_node_client_cert_is_signed_by_client_ca(tmp_path: Path) -> None:
    pki = make(tmp_path / "tls")
    cert_pem, key_pem = issue_client_cert(
        pki, common_name="system:node:worker-1", organizations=["system:nodes"], now=NOW
    )
    path = tmp_path / "node.crt"
    path.write_bytes(cert_pem)
    verify_client(path, pki.client_ca.cert)
    cert = x509.load_pem_x509_certificates(cert_pem)[0]
    assert cert.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert key.public_key() == cert.public_key()


def test_kubelet_serving_cert_is_signed_by_server_ca(tmp_path: Path) -> None:
    pki = make(tmp_path / "tls")
    cert_pem, _key = issue_serving_cert(
        pki,
        common_name="worker-1",
        dns_names=["worker-1"],
        ip_addresses=["192.168.56.20"],
        now=NOW,
    )
    certs = x509.load_pem_x509_certificates(cert_pem)
    verifier = (
        PolicyBuilder()
        .store(Store([pki.server_ca.cert]))
        .time(NOW)
        .build_server_verifier(x509.IPAddress(ipaddress.ip_address("192.168.56.20")))
    )
    verifier.verify(certs[0], certs[1:])
    assert cert_sans(certs[0]).dns == ("worker-1",)


def test_unreadable_key_is_reported_with_its_path(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    make(tls)
    (tls / "serving-kube-apiserver.key").write_bytes(b"not a key")
    with pytest.raises(PKIError, match="serving-kube-apiserver.key"):
        make(tls)
