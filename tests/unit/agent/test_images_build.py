from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from k3py.agent.images import build_busybox_image


def test_archive_is_a_valid_deterministic_oci_layout(tmp_path: Path) -> None:
    a = build_busybox_image(path=tmp_path / "a.tar", ref="k3py.local/bb:2", entrypoint=["/bin/sh"], applets=["sh"])
    b = build_busybox_image(path=tmp_path / "b.tar", ref="k3py.local/bb:2", entrypoint=["/bin/sh"], applets=["sh"])
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        names = set(tar.getnames())
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        m = index["manifests"][0]
        assert m["annotations"]["io.containerd.image.name"] == "k3py.local/bb:2"
        assert m["annotations"]["org.opencontainers.image.ref.name"] == "2"
        manifest_bytes = tar.extractfile(f"blobs/sha256/{m['digest'][7:]}").read()  # type: ignore[union-attr]
        assert hashlib.sha256(manifest_bytes).hexdigest() == m["digest"][7:]
        manifest = json.loads(manifest_bytes)
        for desc in [manifest["config"], *manifest["layers"]]:
            blob = tar.extractfile(f"blobs/sha256/{desc['digest'][7:]}").read()  # type: ignore[union-attr]
            assert len(blob) == desc["size"] and hashlib.sha256(blob).hexdigest() == desc["digest"][7:]
        config = json.loads(tar.extractfile(f"blobs/sha256/{manifest['config']['digest'][7:]}").read())  # type: ignore[union-attr]
        assert config["config"]["Entrypoint"] == ["/bin/sh"]
        docker = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert docker[0]["RepoTags"] == ["k3py.local/bb:2"]
        assert "oci-layout" in names
