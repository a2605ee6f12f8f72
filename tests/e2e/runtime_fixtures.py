"""Test images built from Debian's busybox-static (no registry, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k3py.agent.images import PAUSE_APPLETS, PAUSE_ENTRYPOINT, build_busybox_image

BUSYBOX_REF = "k3py.local/busybox:1"
PAUSE_REF = "k3py.local/pause:3.10"


def build_test_images(directory: Path) -> dict[str, Any]:
    """OCI archives of a pause image and a busybox image (sh, httpd, nc, wget, nslookup…)."""
    busybox = build_busybox_image(path=directory / "busybox.tar", ref=BUSYBOX_REF, entrypoint=["/bin/sh"])
    pause = build_busybox_image(path=directory / "pause.tar", ref=PAUSE_REF, entrypoint=PAUSE_ENTRYPOINT,
                                applets=PAUSE_APPLETS)
    return {"busybox": {"path": busybox, "ref": BUSYBOX_REF}, "pause": {"path": pause, "ref": PAUSE_REF}}
