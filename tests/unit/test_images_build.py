"""The busybox image builder: OCI layout + Docker manifest.json, correct digests and sizes,
the root filesystem it promises, and byte-identical output for the same input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from k3py.agent.images import (
    DEFAULT_APPLETS,
    PAUSE_APPLETS,
    PAUSE_ENTRYPOINT,
    _arch,
    build_busybox_image,
)

REQUIRED_APPLETS = (
    "sh httpd nc wget nslookup sleep cat echo ls ps kill env hostname mkdir rm cp mv tar true "
    "false id head tail grep sed date dd printf test uname top df du ip ifconfig ping timeout "
    "yes seq wc sort touch chmod ln pwd find xargs vi"
).split()
FAKE_BUSYBOX = b"\x7fELF fake busybox for tests\n" * 100


@pytest.fixture
def busybox(tmp_path: Path) -> str:
    p = tmp_path / "busybox"
    p.write_bytes(FAKE_BUSYBOX)
    return str(p)


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out: dict[str, bytes] = {}
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f else b""
        return out


def layer_of(files: dict[str, bytes], manifest: dict[str, Any]) -> tarfile.TarFile:
    blob = files["blobs/sha256/" + manifest["layers"][0]["digest"].removeprefix("sha256:")]
    return tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)))


def build(tmp_path: Path, busybox: str, name: str = "img.tar", **kw: Any) -> Path:
    args: dict[str, Any] = {"ref": "k3py.local/busybox:1", "entrypoint": ["/bin/sh"]}
    args.update(kw)
    return build_busybox_image(path=tmp_path / name, busybox=busybox, **args)


def test_oci_layout_and_digests(tmp_path: Path, busybox: str) -> None:
    files = members(build(tmp_path, busybox, cmd=["-c", "echo hi"]))
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/") and name.count("/") == 2:
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]

    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    [desc] = index["manifests"]
    assert desc["annotations"]["io.containerd.image.name"] == "k3py.local/busybox:1"
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "1"
    assert desc["platform"] == {"architecture": _arch(), "os": "linux"}
    manifest_bytes = files["blobs/sha256/" + desc["digest"].removeprefix("sha256:")]
    assert len(manifest_bytes) == desc["size"]
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config_bytes = files["blobs/sha256/" + manifest["config"]["digest"].removeprefix("sha256:")]
    assert len(config_bytes) == manifest["config"]["size"]
    config = json.loads(config_bytes)
    assert config["architecture"] == _arch() and config["os"] == "linux"
    assert config["config"]["Entrypoint"] == ["/bin/sh"]
    assert config["config"]["Cmd"] == ["-c", "echo hi"]
    assert any(e.startswith("PATH=") for e in config["config"]["Env"])

    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    blob = files["blobs/sha256/" + layer["digest"].removeprefix("sha256:")]
    assert len(blob) == layer["size"]
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}

    [docker] = json.loads(files["manifest.json"])
    assert docker["RepoTags"] == ["k3py.local/busybox:1"]
    assert docker["Config"] in files and all(p in files for p in docker["Layers"])
    assert docker["Config"].endswith(manifest["config"]["digest"].removeprefix("sha256:"))


def test_root_filesystem(tmp_path: Path, busybox: str) -> None:
    files = members(build(tmp_path, busybox))
    manifest_digest = json.loads(files["index.json"])["manifests"][0]["digest"]
    manifest = json.loads(files["blobs/sha256/" + manifest_digest.removeprefix("sha256:")])
    with layer_of(files, manifest) as layer:
        entries = {m.name: m for m in layer.getmembers()}
        bb = entries["bin/busybox"]
        assert bb.isfile() and bb.mode == 0o755 and bb.uid == 0
        f = layer.extractfile(bb)
        assert f is not None and f.read() == FAKE_BUSYBOX
        for applet in REQUIRED_APPLETS:
            link = entries[f"bin/{applet}"]
            assert link.issym() and link.linkname == "busybox", applet
        assert entries["tmp"].isdir() and entries["tmp"].mode == 0o1777
        pw = layer.extractfile(entries["etc/passwd"])
        assert pw is not None
        users = {line.split(":")[0]: line for line in pw.read().decode().splitlines()}
        assert users["root"].startswith("root:x:0:0:") and users["nobody"].split(":")[2] == "65534"
        gr = layer.extractfile(entries["etc/group"])
        assert gr is not None
        groups = {line.split(":")[0] for line in gr.read().decode().splitlines()}
        assert {"root", "nobody"} <= groups
        assert all(m.mtime == 0 for m in entries.values())


def test_deterministic_and_distinct(tmp_path: Path, busybox: str) -> None:
    a = build(tmp_path, busybox, "a.tar").read_bytes()
    b = build(tmp_path, busybox, "b.tar").read_bytes()
    assert a == b
    other = build(tmp_path, busybox, "c.tar", ref="k3py.local/busybox:2").read_bytes()
    assert other != a
    assert not list(tmp_path.glob("*.tmp"))


def test_pause_image(tmp_path: Path, busybox: str) -> None:
    path = build(
        tmp_path,
        busybox,
        ref="k3py.local/pause:3.10",
        entrypoint=PAUSE_ENTRYPOINT,
        applets=PAUSE_APPLETS,
    )
    files = members(path)
    [docker] = json.loads(files["manifest.json"])
    assert docker["RepoTags"] == ["k3py.local/pause:3.10"]
    config = json.loads(files[docker["Config"]])
    assert config["config"]["Entrypoint"] == PAUSE_ENTRYPOINT
    assert "trap" in PAUSE_ENTRYPOINT[-1] and "TERM" in PAUSE_ENTRYPOINT[-1]
    manifest_digest = json.loads(files["index.json"])["manifests"][0]["digest"]
    manifest = json.loads(files["blobs/sha256/" + manifest_digest.removeprefix("sha256:")])
    with layer_of(files, manifest) as layer:
        links = {m.name for m in layer.getmembers() if m.issym()}
    assert links == {"bin/sh", "bin/sleep"}


def test_default_applets_cover_the_promised_set() -> None:
    assert set(REQUIRED_APPLETS) <= set(DEFAULT_APPLETS)
    assert "busybox" not in DEFAULT_APPLETS
