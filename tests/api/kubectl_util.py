"""Helpers for the tests that drive the real kubectl against a k3py server."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

from tests.conftest import ServerHandle

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

_names = count(1)


def unique(prefix: str) -> str:
    """A name no other test in this session uses."""
    return f"{prefix}-{os.getpid() % 10000}-{next(_names)}"


def table(out: str) -> list[list[str]]:
    """kubectl's tabular output as rows of cells (columns are 3+ spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]


def rows_by_name(out: str, *, name_col: int = 0) -> dict[str, list[str]]:
    rows = table(out)
    return {r[name_col]: r for r in rows[1:]}


def get_json(server: ServerHandle, *args: str) -> Any:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def apply_text(
    server: ServerHandle, text: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return server.kubectl("apply", "-f", "-", *args, input=text, check=check)


def configmap(
    name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> str:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    if labels:
        doc["metadata"]["labels"] = labels
    if data is not None:
        doc["data"] = data
    return json.dumps(doc)


def deployment(name: str, *, replicas: int = 1, image: str = "busybox:1.36") -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": image}]},
                },
            },
        }
    )


def crontab(name: str, *, spec: str = "*/5 * * * *", replicas: int | None = None) -> str:
    body: dict[str, Any] = {"cronSpec": spec}
    if replicas is not None:
        body["replicas"] = replicas
    return json.dumps(
        {
            "apiVersion": "stable.example.com/v1",
            "kind": "CronTab",
            "metadata": {"name": name},
            "spec": body,
        }
    )


def ensure_crd(server: ServerHandle) -> None:
    server.kubectl("apply", "-f", str(EXAMPLES / "crd.yaml"))
    server.kubectl(
        "wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=20s"
    )


def kubectl_bg(
    server: ServerHandle, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    cmd = ["kubectl", "--kubeconfig", str(server.kubeconfig), *args]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def kubectl_env(
    server: ServerHandle, *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    cmd = ["kubectl", "--kubeconfig", str(server.kubeconfig), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}
    )


class LineReader:
    """Reads a subprocess's stdout on a thread so tests can wait for lines with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, pred: Callable[[list[str]], bool], timeout: float = 15.0) -> list[str]:
        """Collect lines until ``pred(lines)`` holds; fail with what was seen otherwise."""
        deadline = time.monotonic() + timeout
        while not pred(self.lines):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        if not pred(self.lines):
            err = ""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read()
            raise AssertionError(f"expected output not seen; got {self.lines!r}\nstderr: {err}")
        return self.lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
