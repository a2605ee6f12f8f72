from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from k3py.cni.ipam import HostLocal, IPAMError


def test_allocates_round_robin_skipping_gateway(tmp_path: Path) -> None:
    ipam = HostLocal(directory=tmp_path, subnet="10.42.3.0/24")
    a = ipam.allocate(container_id="a", ifname="eth0")
    b = ipam.allocate(container_id="b", ifname="eth0")
    assert str(a) == "10.42.3.2/24" and str(b) == "10.42.3.3/24"
    assert ipam.allocate(container_id="a", ifname="eth0") == a  # idempotent per container
    assert ipam.release(container_id="a") == ["10.42.3.2"]
    c = ipam.allocate(container_id="c", ifname="eth0")
    assert str(c.ip) == "10.42.3.4"  # a freed address is not reused at once


def test_exhaustion_is_an_error(tmp_path: Path) -> None:
    ipam = HostLocal(directory=tmp_path, subnet="10.42.3.0/29")  # hosts .1-.6, gateway .1
    got = {str(ipam.allocate(container_id=str(i), ifname="eth0").ip) for i in range(5)}
    assert got == {f"10.42.3.{i}" for i in range(2, 7)}
    with pytest.raises(IPAMError, match="no IP addresses available"):
        ipam.allocate(container_id="x", ifname="eth0")


def test_gc_releases_only_dead_containers(tmp_path: Path) -> None:
    ipam = HostLocal(directory=tmp_path, subnet="10.42.3.0/24")
    for cid in ("live", "dead1", "dead2"):
        ipam.allocate(container_id=cid, ifname="eth0")
    assert sorted(ipam.gc(["live"])) == ["10.42.3.3", "10.42.3.4"]
    assert list(ipam.allocations().values()) == [("live", "eth0")]


def _worker(args: tuple[str, int]) -> list[str]:
    directory, k = args
    ipam = HostLocal(directory=Path(directory), subnet="10.42.7.0/24")
    return [str(ipam.allocate(container_id=f"{k}-{i}", ifname="eth0").ip) for i in range(20)]


def test_concurrent_processes_never_share_an_address(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_worker, [(str(tmp_path), k) for k in range(4)])
    flat = [ip for r in results for ip in r]
    assert len(flat) == 80 and len(set(flat)) == 80
