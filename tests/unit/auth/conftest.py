from __future__ import annotations

from pathlib import Path

import pytest

from k3py.server.auth.pki import PKI, ensure_pki


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    """A fresh PKI valid now (for tests that talk TLS or check validity against the clock)."""
    return ensure_pki(
        tls_dir=tmp_path / "tls",
        node_ip="192.168.56.10",
        advertise_address=None,
        tls_sans=[],
        cluster_domain="cluster.local",
        service_cidr="10.43.0.0/16",
    )
