"""Serving container logs from CRI log files (``kubectl logs``).

A CRI log line is ``<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <message>``; ``P``
fragments are joined with the following ones into one line, which carries the first
fragment's timestamp (for ``sinceTime`` and ``timestamps``).  ``tailLines`` reads the
file from its end in growing blocks, so a long log is not read whole.  ``follow`` polls
the file, starts over when it shrinks (rotated or truncated) and stops once the container
is no longer running and the file is drained.  ``limitBytes`` caps everything written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from k3py.agent.kubelet.logs import parse_cri_log_line

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
TAIL_BLOCK = 64 * 1024


def parse_timestamp(ts: str) -> dt.datetime | None:
    """An RFC 3339 timestamp with 0-9 fraction digits (containerd trims trailing zeros)."""
    m = _TS.match(ts.strip())
    if m is None:
        return None
    base, frac, zone = m.groups()
    micros = (frac or "").ljust(6, "0")[:6]
    try:
        return dt.datetime.fromisoformat(f"{base}.{micros}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None


def _flag(q: Mapping[str, str], key: str) -> bool:
    return q.get(key, "").lower() in ("true", "1")


def _int(q: Mapping[str, str], key: str) -> int | None:
    raw = q.get(key, "")
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key}: invalid value {raw!r}") from None
    if value < 0:
        raise ValueError(f"{key}: must be greater than or equal to 0")
    return value


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail: int | None = None
    since: dt.datetime | None = None
    limit: int | None = None

    @classmethod
    def from_query(cls, q: Mapping[str, str], *, now: dt.datetime) -> LogOptions:
        """Options from the kubelet's query; ValueError for invalid values."""
        since = None
        seconds = _int(q, "sinceSeconds")
        if seconds is not None:
            since = now - dt.timedelta(seconds=seconds)
        elif q.get("sinceTime"):
            since = parse_timestamp(q["sinceTime"])
            if since is None:
                raise ValueError(f"sinceTime: invalid value {q['sinceTime']!r}")
        previous = _flag(q, "previous")
        return cls(
            follow=_flag(q, "follow") and not previous,
            previous=previous,
            timestamps=_flag(q, "timestamps"),
            tail=_int(q, "tailLines"),
            since=since,
            limit=_int(q, "limitBytes"),
        )


class LineRenderer:
    """Turns complete CRI log lines into output lines, keeping partial fragments across
    calls."""

    def __init__(self, *, since: dt.datetime | None = None, timestamps: bool = False) -> None:
        self.since = since
        self.timestamps = timestamps
        self._fragments: list[bytes] = []
        self._first_ts = ""

    def feed(self, lines: Iterable[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for raw in lines:
            ts, _stream, partial, msg = parse_cri_log_line(raw)
            if not ts:
                continue
            if not self._fragments:
                self._first_ts = ts
            self._fragments.append(msg)
            if partial:
                continue
            line = b"".join(self._fragments) + b"\n"
            self._fragments.clear()
            if self.since is not None:
                when = parse_timestamp(self._first_ts)
                if when is not None and when < self.since:
                    continue
            out.append(self._first_ts.encode() + b" " + line if self.timestamps else line)
        return out


def complete_lines(data: bytes) -> tuple[list[bytes], int]:
    """The newline-terminated lines of ``data`` and how many bytes they span, leaving out
    trailing partial fragments (their line is not finished yet)."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines(keepends=True)
    while lines and parse_cri_log_line(lines[-1])[2]:
        end -= len(lines.pop())
    return lines, end


def tail_lines(lines: list[bytes], n: int | None) -> list[bytes]:
    if n is None:
        return lines
    return lines[-n:] if n else []


def read_initial(path: Path, opts: LogOptions) -> tuple[list[bytes], int]:
    """The rendered lines to send first (tail and since applied) and the file offset
    following them; partial fragments at the end are left for follow."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [], 0
    with path.open("rb") as f:
        if opts.tail is None:
            lines, end = complete_lines(f.read(size))
            return LineRenderer(since=opts.since, timestamps=opts.timestamps).feed(lines), end
        block = TAIL_BLOCK
        while True:
            start = max(0, size - block)
            f.seek(start)
            lines, end = complete_lines(f.read(size - start))
            if start > 0:
                # The first line may start mid-way, and the first joined line may lack
                # fragments from before the block: both are dropped, since we only stop
                # with more lines than the tail keeps.
                lines = lines[1:]
            out = LineRenderer(since=opts.since, timestamps=opts.timestamps).feed(lines)
            if start == 0 or len(out) > opts.tail:
                return tail_lines(out, opts.tail), start + end
            block *= 4


async def stream_log(
    path: Path,
    opts: LogOptions,
    *,
    write: Callable[[bytes], Awaitable[None]],
    running: Callable[[], Awaitable[bool]],
    poll: float = 0.2,
) -> None:
    """Writes the log (then, with follow, new lines until the container stops)."""
    budget = _Budget(opts.limit)
    out, pos = read_initial(path, opts)
    for line in out:
        if not await budget.write(write, line):
            return
    if not opts.follow:
        return
    renderer = LineRenderer(timestamps=opts.timestamps)
    finishing = False
    while True:
        pos, lines = _read_new(path, pos)
        for line in renderer.feed(lines):
            if not await budget.write(write, line):
                return
        if lines:
            continue
        if finishing:
            return
        await asyncio.sleep(poll)
        if not await running():
            finishing = True  # one more read drains what was written before the exit


def _read_new(path: Path, pos: int) -> tuple[int, list[bytes]]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return pos, []
    if size < pos:
        pos = 0  # rotated or truncated: start over
    if size == pos:
        return pos, []
    with path.open("rb") as f:
        f.seek(pos)
        lines, end = complete_lines(f.read(size - pos))
    return pos + end, lines


class _Budget:
    def __init__(self, limit: int | None) -> None:
        self.left = limit

    async def write(self, write: Callable[[bytes], Awaitable[None]], chunk: bytes) -> bool:
        """Writes what the limit allows; False once it is used up."""
        if self.left is None:
            await write(chunk)
            return True
        if len(chunk) >= self.left:
            if self.left:
                await write(chunk[: self.left])
            self.left = 0
            return False
        await write(chunk)
        self.left -= len(chunk)
        return True
