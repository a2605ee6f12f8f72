"""Container log files in the CRI format, and where they live.

Each line: ``<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <message>`` — ``P`` marks a
partial line continued by the next one.  Paths:
``<data-dir>/agent/logs/pods/<ns>_<pod>_<uid>/<container>/<restartCount>.log``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k3py.agent.config import AgentConfig


def pod_log_dir(cfg: AgentConfig, pod: dict[str, Any]) -> Path:
    meta = pod["metadata"]
    return cfg.pod_logs_dir / f"{meta.get('namespace', 'default')}_{meta['name']}_{meta['uid']}"


def log_path_for(cfg: AgentConfig, pod: dict[str, Any], container: str, restart_count: int) -> Path:
    return pod_log_dir(cfg, pod) / container / f"{restart_count}.log"


def parse_cri_log_line(line: bytes) -> tuple[str, str, bool, bytes]:
    """(timestamp, stream, partial, message without the newline)."""
    ts, _, rest = line.partition(b" ")
    stream, _, rest = rest.partition(b" ")
    tag, _, msg = rest.partition(b" ")
    if msg.endswith(b"\n"):
        msg = msg[:-1]
    return ts.decode(errors="replace"), stream.decode(errors="replace"), tag.startswith(b"P"), msg
