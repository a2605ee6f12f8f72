"""An acknowledged write survives kill -9 of the process that made it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from k3py.server.datastore import open_datastore

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[3]


def run_until_acked(endpoint: str, *, acks: int, timeout: float = 60.0) -> list[str]:
    """Start the writer, read acknowledgements until ``acks`` arrived, kill -9 it mid-stream."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), endpoint], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout.readline().strip() == "READY"
        while len(lines) < acks and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    lines += rest.splitlines(keepends=True)
    assert proc.returncode == -signal.SIGKILL
    return [ln.strip() for ln in lines if ln.endswith("\n")]  # a torn last line is no ack


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    endpoint = f"sqlite:///{tmp_path / 'state.db'}"
    acked = run_until_acked(endpoint, acks=1500)
    assert len(acked) >= 1500
    creates: dict[str, int] = {}
    updates: dict[str, int] = {}
    for line in acked:
        kind, key, revision = line.split()
        if kind == "C":
            creates[key] = int(revision)
        else:
            updates[key] = max(int(revision), updates.get(key, 0))

    ds = open_datastore(endpoint, compaction_interval=None)
    await ds.start()
    try:
        for key, rev in creates.items():
            rec = await ds.get(key)
            assert rec is not None, f"acknowledged create of {key} lost"
            assert rec.revision == rev
        for key, rev in updates.items():
            rec = await ds.get(key)
            assert rec is not None and rec.revision >= rev, f"acknowledged update of {key} lost"
        newest = max([*creates.values(), *updates.values()])
        assert ds.current_revision() >= newest
        after = await ds.create("/crash/after", {"metadata": {"name": "after"}})
        assert after.revision > newest  # the revision counter resumed past every ack
        listed = await ds.list("/crash/objects/")
        assert {r.key for r in listed.records} >= creates.keys()
    finally:
        await ds.close()
