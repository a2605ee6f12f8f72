"""host-local IPAM over one node's podCIDR, with state in files (like CNI's host-local).

``<dir>/<ip>`` holds ``<container id>\\n<ifname>`` for every allocated address, and
``<dir>/last_reserved_ip`` the last one handed out, so allocation goes round-robin (an
address just freed is not reused at once).  Every operation holds ``flock`` on
``<dir>/lock``, so concurrent ADDs from several processes never hand out one address
twice.  A crash between allocation and use leaves a file that ``gc`` removes once the
agent knows the container is gone.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class IPAMError(Exception):
    pass


class HostLocal:
    def __init__(self, *, directory: Path, subnet: str) -> None:
        self.dir = Path(directory)
        self.net = ipaddress.ip_network(subnet, strict=False)
        self.gateway = next(self.net.hosts())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _candidates(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ip for ip in self.net.hosts() if ip != self.gateway]

    def allocations(self) -> dict[str, tuple[str, str]]:
        """ip -> (container id, ifname)."""
        out: dict[str, tuple[str, str]] = {}
        if not self.dir.is_dir():
            return out
        for entry in self.dir.iterdir():
            try:
                ipaddress.ip_address(entry.name)
            except ValueError:
                continue
            try:
                cid, _, ifname = entry.read_text().partition("\n")
            except OSError:
                continue
            out[entry.name] = (cid.strip(), ifname.strip())
        return out

    def allocate(self, *, container_id: str, ifname: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        with self._locked():
            existing = self._find(container_id, ifname)
            if existing is not None:
                return ipaddress.ip_interface(f"{existing}/{self.net.prefixlen}")
            candidates = self._candidates()
            start = 0
            try:
                last = ipaddress.ip_address((self.dir / "last_reserved_ip").read_text().strip())
                if last in self.net:
                    start = candidates.index(last) + 1 if last in candidates else 0  # type: ignore[arg-type]
            except (OSError, ValueError):
                pass
            n = len(candidates)
            for i in range(n):
                ip = candidates[(start + i) % n]
                path = self.dir / str(ip)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w") as f:
                    f.write(f"{container_id}\n{ifname}")
                    f.flush()
                    os.fsync(f.fileno())
                tmp = self.dir / "last_reserved_ip.tmp"
                tmp.write_text(str(ip))
                os.replace(tmp, self.dir / "last_reserved_ip")
                return ipaddress.ip_interface(f"{ip}/{self.net.prefixlen}")
        raise IPAMError(f"no IP addresses available in range set: {self.net}")

    def _find(self, container_id: str, ifname: str) -> str | None:
        for ip, (cid, ifn) in self.allocations().items():
            if cid == container_id and (ifn == ifname or not ifn):
                return ip
        return None

    def get(self, *, container_id: str, ifname: str) -> str | None:
        with self._locked():
            return self._find(container_id, ifname)

    def release(self, *, container_id: str, ifname: str = "") -> list[str]:
        freed: list[str] = []
        with self._locked():
            for ip, (cid, ifn) in self.allocations().items():
                if cid == container_id and (not ifname or ifn == ifname):
                    (self.dir / ip).unlink(missing_ok=True)
                    freed.append(ip)
        return freed

    def gc(self, live_container_ids: Iterable[str]) -> list[str]:
        """Release addresses held by containers that no longer exist."""
        live = set(live_container_ids)
        freed: list[str] = []
        with self._locked():
            for ip, (cid, _) in self.allocations().items():
                if cid not in live:
                    (self.dir / ip).unlink(missing_ok=True)
                    freed.append(ip)
        return freed
