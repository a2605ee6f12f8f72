"""The k3py CNI plugin (CNI spec 1.0: ADD, DEL, CHECK, VERSION, STATUS), with pyroute2.

ADD: bridge ``k3py0`` (created once, gateway = first address of the node's podCIDR), a
veth pair per pod (host side ``veth<hash>`` on the bridge with hairpin on, ``eth0`` in the
pod's netns), an address from host-local IPAM, the default route via the gateway, and
nftables rules: masquerade for traffic leaving the cluster CIDR and DNAT for hostPorts
(the ``portMappings`` capability).  DEL undoes it and is idempotent.  The same code
answers the ``loopback`` plugin (``lo`` up in the pod's netns), which containerd calls too.

``run(command, env, conf)`` is the one entry point: the agent's daemon calls it in a
worker thread for requests the thin executables forward, and an executable falls back to
calling it itself when the daemon is not there.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import ipaddress
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from k3py.cni.ipam import HostLocal, IPAMError

SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]
NFT_TABLE = "k3py-cni"
_nft_lock = threading.Lock()  # one rewrite of the nft table at a time per process


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _new_ipr() -> tuple[Any, Any]:
    """An IPRoute on a private selector event loop: pyroute2 drives its netlink socket with
    asyncio, and the agent's loop policy (uvloop) cannot open AF_NETLINK endpoints."""
    import asyncio

    from pyroute2 import IPRoute

    loop = asyncio.SelectorEventLoop()
    return IPRoute(use_event_loop=loop), loop


@contextlib.contextmanager
def host_ipr() -> Iterator[Any]:
    ipr, loop = _new_ipr()
    try:
        yield ipr
    finally:
        with contextlib.suppress(Exception):
            ipr.close()
        loop.close()


@contextlib.contextmanager
def netns_ipr(path: str) -> Iterator[Any]:
    """An IPRoute whose netlink socket lives in the netns at ``path``.

    The calling thread enters the namespace just long enough to open the socket (a
    netlink socket keeps the namespace it was made in), then returns: no fork, so this is
    safe in the agent's threaded process (pyroute2's NetNS forks a helper)."""
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            ipr, loop = _new_ipr()
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
    try:
        yield ipr
    finally:
        with contextlib.suppress(Exception):
            ipr.close()
        loop.close()


class CNIError(Exception):
    """A CNI error result: code (spec: 1–99 well-known, 100+ plugin), msg, details."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def result(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


def host_veth_name(container_id: str, ifname: str) -> str:
    return "veth" + hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()[:8]


def run(command: str, env: dict[str, str], conf_text: str) -> tuple[int, str]:
    """Execute one CNI command; returns (exit code, stdout JSON)."""
    try:
        conf = json.loads(conf_text) if conf_text.strip() else {}
    except ValueError as e:
        return 1, json.dumps(CNIError(6, "failed to decode network configuration", str(e)).result("1.0.0"))
    version = str(conf.get("cniVersion") or "1.0.0")
    try:
        if command == "VERSION":
            return 0, json.dumps({"cniVersion": version, "supportedVersions": SUPPORTED_VERSIONS})
        if version not in SUPPORTED_VERSIONS:
            raise CNIError(1, f"incompatible CNI version {version}")
        loopback = conf.get("type") == "loopback"
        # Calls for different containers run concurrently (the daemon's threads): veth
        # names differ, IPAM takes its file lock and the nft rewrite its own lock.
        if command == "ADD":
            result = add_loopback(env, version) if loopback else add(env, conf, version)
            return 0, json.dumps(result)
        if command == "DEL":
            if not loopback:
                delete(env, conf)
            return 0, ""
        if command == "CHECK":
            if not loopback:
                check(env, conf)
            return 0, ""
        if command == "STATUS":
            status(conf)
            return 0, ""
        if command == "GC":
            return 0, ""
        raise CNIError(4, f"unknown CNI_COMMAND {command!r}")
    except CNIError as e:
        return 1, json.dumps(e.result(version))
    except IPAMError as e:
        return 1, json.dumps(CNIError(11, str(e)).result(version))
    except Exception as e:  # noqa: BLE001 - every failure must reach the runtime as a CNI error
        return 1, json.dumps(CNIError(999, f"{type(e).__name__}: {e}").result(version))


def _need(env: dict[str, str], key: str) -> str:
    value = env.get(key, "")
    if not value:
        raise CNIError(4, f"required environment variable {key} is missing")
    return value


def _ipam(conf: dict[str, Any]) -> HostLocal:
    return HostLocal(directory=Path(conf["ipamDir"]), subnet=conf["podCIDR"])


def _sysctl(path: str, value: str) -> None:
    try:
        Path("/proc/sys", path).write_text(value)
    except OSError:
        pass


def ensure_bridge(ipr: Any, *, name: str, gateway: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
                  mtu: int) -> int:
    idx = ipr.link_lookup(ifname=name)
    if not idx:
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except Exception:  # noqa: BLE001 - another process made it first
            pass
        idx = ipr.link_lookup(ifname=name)
    index = int(idx[0])
    have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index)}
    if (str(gateway.ip), gateway.network.prefixlen) not in have:
        try:
            ipr.addr("add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
        except Exception:  # noqa: BLE001 - EEXIST from a concurrent ADD
            pass
    ipr.link("set", index=index, state="up", mtu=mtu)
    _sysctl("net/ipv4/ip_forward", "1")
    _sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")
    return index


def _mac(link: Any) -> str:
    return str(link.get("IFLA_ADDRESS") or "")


def add_loopback(env: dict[str, str], version: str) -> dict[str, Any]:
    netns = _need(env, "CNI_NETNS")
    with netns_ipr(netns) as ns:
        lo = ns.link_lookup(ifname="lo")[0]
        ns.link("set", index=lo, state="up")
    return {
        "cniVersion": version,
        "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": netns}],
        "ips": [{"address": "127.0.0.1/8", "interface": 0}],
        "dns": {},
    }


def add(env: dict[str, str], conf: dict[str, Any], version: str) -> dict[str, Any]:
    cid = _need(env, "CNI_CONTAINERID")
    netns = _need(env, "CNI_NETNS")
    ifname = env.get("CNI_IFNAME") or "eth0"
    bridge = str(conf.get("bridge") or "k3py0")
    mtu = int(conf.get("mtu") or 1500)
    if not os.path.exists(netns):
        raise CNIError(4, f"network namespace {netns} does not exist")
    ipam = _ipam(conf)
    gateway = ipaddress.ip_interface(f"{ipam.gateway}/{ipam.net.prefixlen}")
    addr = ipam.allocate(container_id=cid, ifname=ifname)
    host_name = host_veth_name(cid, ifname)
    peer_tmp = "p" + host_name[4:] + "tmp"
    ipr, ipr_loop = _new_ipr()
    try:
        br = ensure_bridge(ipr, name=bridge, gateway=gateway, mtu=mtu)
        if ipr.link_lookup(ifname=host_name):  # a retried ADD: start over
            ipr.link("del", index=ipr.link_lookup(ifname=host_name)[0])
        ipr.link("add", ifname=host_name, kind="veth", mtu=mtu, peer={"ifname": peer_tmp, "mtu": mtu})
        host_idx = ipr.link_lookup(ifname=host_name)[0]
        peer_idx = ipr.link_lookup(ifname=peer_tmp)[0]
        fd = os.open(netns, os.O_RDONLY)
        try:
            ipr.link("set", index=peer_idx, net_ns_fd=fd)
        finally:
            os.close(fd)
        ipr.link("set", index=host_idx, master=br, state="up")
        try:
            ipr.brport("set", index=host_idx, hairpin_mode=1)
        except Exception:  # noqa: BLE001 - older kernels: hairpin via sysfs
            _sysctl_path = Path(f"/sys/class/net/{host_name}/brport/hairpin_mode")
            try:
                _sysctl_path.write_text("1")
            except OSError:
                pass
        host_link = ipr.get_links(host_idx)[0]
        bridge_link = ipr.get_links(br)[0]
    except Exception:
        ipam.release(container_id=cid, ifname=ifname)
        with _suppress():
            idx = ipr.link_lookup(ifname=host_name)
            if idx:
                ipr.link("del", index=idx[0])
        raise
    finally:
        ipr.close()
        ipr_loop.close()
    try:
        with netns_ipr(netns) as ns:
            idx = ns.link_lookup(ifname=peer_tmp)[0]
            ns.link("set", index=idx, ifname=ifname)
            ns.addr("add", index=idx, address=str(addr.ip), prefixlen=addr.network.prefixlen)
            ns.link("set", index=idx, state="up")
            lo = ns.link_lookup(ifname="lo")
            if lo:
                ns.link("set", index=lo[0], state="up")
            ns.route("add", dst="0.0.0.0/0", gateway=str(gateway.ip))
            pod_link = ns.get_links(idx)[0]
    except Exception:
        ipam.release(container_id=cid, ifname=ifname)
        with _suppress():
            with host_ipr() as ipr2:
                idx2 = ipr2.link_lookup(ifname=host_name)
                if idx2:
                    ipr2.link("del", index=idx2[0])
        raise
    if _write_hostports(conf, cid, str(addr.ip)):
        sync_nft(conf)  # masquerade rules are static: installed with the network config
    elif not _nft_synced.get(str(conf.get("podCIDR"))):
        sync_nft(conf)  # first ADD in this process (a fallback executable, or rules lost)
        _nft_synced[str(conf.get("podCIDR"))] = True
    return {
        "cniVersion": version,
        "interfaces": [
            {"name": bridge, "mac": _mac(bridge_link)},
            {"name": host_name, "mac": _mac(host_link)},
            {"name": ifname, "mac": _mac(pod_link), "sandbox": netns},
        ],
        "ips": [{"address": str(addr), "gateway": str(gateway.ip), "interface": 2}],
        "routes": [{"dst": "0.0.0.0/0", "gw": str(gateway.ip)}],
        "dns": {},
    }


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def delete(env: dict[str, str], conf: dict[str, Any]) -> None:
    cid = _need(env, "CNI_CONTAINERID")
    ifname = env.get("CNI_IFNAME") or "eth0"
    with host_ipr() as ipr:
        idx = ipr.link_lookup(ifname=host_veth_name(cid, ifname))
        if idx:
            with _suppress():
                ipr.link("del", index=idx[0])
    if conf.get("ipamDir") and conf.get("podCIDR"):
        _ipam(conf).release(container_id=cid, ifname=ifname)
    hp = _hostport_dir(conf) / f"{cid}.json"
    if hp.exists():
        hp.unlink(missing_ok=True)
        sync_nft(conf)


def check(env: dict[str, str], conf: dict[str, Any]) -> None:
    cid = _need(env, "CNI_CONTAINERID")
    netns = _need(env, "CNI_NETNS")
    ifname = env.get("CNI_IFNAME") or "eth0"
    ip = _ipam(conf).get(container_id=cid, ifname=ifname)
    if ip is None:
        raise CNIError(11, f"no IP address allocated for container {cid}")
    with netns_ipr(netns) as ns:
        idx = ns.link_lookup(ifname=ifname)
        if not idx:
            raise CNIError(11, f"interface {ifname} not found in {netns}")
        addrs = {a.get("IFA_ADDRESS") for a in ns.get_addr(index=idx[0])}
    if ip not in addrs:
        raise CNIError(11, f"interface {ifname} lacks its address {ip}")


def status(conf: dict[str, Any]) -> None:
    if not conf.get("podCIDR"):
        raise CNIError(50, "the node has no podCIDR yet")


# ---- hostPorts and masquerade (one nftables table, rewritten atomically) -----------


def _hostport_dir(conf: dict[str, Any]) -> Path:
    return Path(str(conf.get("ipamDir") or "/nonexistent")).parent / "hostports"


_nft_synced: dict[str, bool] = {}


def _write_hostports(conf: dict[str, Any], cid: str, ip: str) -> bool:
    """Record the container's hostPorts; whether it has any."""
    mappings = ((conf.get("runtimeConfig") or {}).get("portMappings")) or []
    if not mappings:
        return False
    d = _hostport_dir(conf)
    d.mkdir(parents=True, exist_ok=True)
    entries = []
    for m in mappings:
        # The spec's keys are camelCase; containerd 1.6 (go-cni) sends Go field names.
        def field(key: str, m: dict[str, Any] = m) -> Any:
            return m.get(key, m.get(key[0].upper() + key[1:]))

        if int(field("hostPort") or 0):
            entries.append({"hostPort": int(field("hostPort")), "containerPort": int(field("containerPort")),
                            "protocol": str(field("protocol") or "tcp").lower(),
                            "hostIP": str(field("hostIP") or ""), "podIP": ip})
    tmp = d / f"{cid}.json.tmp"
    tmp.write_text(json.dumps(entries))
    os.replace(tmp, d / f"{cid}.json")
    return bool(entries)


def nft_ruleset(conf: dict[str, Any]) -> str:
    pod_cidr = conf["podCIDR"]
    cluster_cidr = conf.get("clusterCIDR") or pod_cidr
    bridge = conf.get("bridge") or "k3py0"
    lines = [
        f"table ip {NFT_TABLE} {{}}",
        f"delete table ip {NFT_TABLE}",
        f"table ip {NFT_TABLE} {{",
        "  chain hostports {",
    ]
    d = _hostport_dir(conf)
    if d.is_dir():
        for f in sorted(d.glob("*.json")):
            try:
                entries = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            for e in entries:
                proto = e["protocol"] if e["protocol"] in ("tcp", "udp", "sctp") else "tcp"
                match = f"ip daddr {e['hostIP']} " if e.get("hostIP") not in ("", "0.0.0.0") else ""
                lines.append(f"    {match}{proto} dport {e['hostPort']} dnat to {e['podIP']}:{e['containerPort']}"
                             f' comment "{f.stem[:64]}"')
    lines += [
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority -100; policy accept;",
        "    fib daddr type local jump hostports",
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        "    fib daddr type local jump hostports",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority 100; policy accept;",
        f'    ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade',
        f"    ct status dnat ip saddr {pod_cidr} ip daddr {pod_cidr} masquerade",
        f"    ip saddr {pod_cidr} ip daddr != {cluster_cidr} masquerade",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def sync_nft(conf: dict[str, Any]) -> None:
    if not conf.get("podCIDR"):
        return
    with _nft_lock:  # the rules are rebuilt from the state files: the last rewrite sees them all
        res = subprocess.run(["nft", "-f", "-"], input=nft_ruleset(conf), capture_output=True, text=True)
    if res.returncode != 0:
        raise CNIError(999, "nftables update failed", res.stderr.strip())
