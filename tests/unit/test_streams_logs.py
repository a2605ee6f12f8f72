"""Container log files: CRI line parsing, partial lines, tail, since, limit, follow."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from k3py.agent.streams import logs

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def cri_line(i: int, msg: str, *, tag: str = "F", stream: str = "stdout") -> bytes:
    ts = (T0 + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S") + ".5Z"
    return f"{ts} {stream} {tag} {msg}\n".encode()


def test_timestamps_with_any_fraction_length() -> None:
    assert logs.parse_timestamp("2026-01-02T03:04:05Z") == T0
    assert logs.parse_timestamp("2026-01-02T03:04:05.1Z") == T0.replace(microsecond=100000)
    assert logs.parse_timestamp("2026-01-02T03:04:05.123456789Z") == T0.replace(microsecond=123456)
    assert logs.parse_timestamp("2026-01-02T04:04:05.5+01:00") == T0.replace(microsecond=500000)
    assert logs.parse_timestamp("yesterday") is None


def test_options_from_query() -> None:
    q = {
        "follow": "true",
        "tailLines": "3",
        "sinceSeconds": "10",
        "timestamps": "1",
        "limitBytes": "7",
    }
    opts = logs.LogOptions.from_query(q, now=T0)
    assert opts == logs.LogOptions(
        follow=True, timestamps=True, tail=3, since=T0 - dt.timedelta(seconds=10), limit=7
    )
    assert logs.LogOptions.from_query({"sinceTime": "2026-01-02T03:04:05Z"}, now=T0).since == T0
    prev = logs.LogOptions.from_query({"previous": "true", "follow": "true"}, now=T0)
    assert prev.previous and not prev.follow
    for bad in ({"tailLines": "x"}, {"tailLines": "-1"}, {"sinceTime": "soon"}):
        with pytest.raises(ValueError):
            logs.LogOptions.from_query(bad, now=T0)


def test_renderer_joins_partials_keeps_first_timestamp_and_filters_since() -> None:
    r = logs.LineRenderer(timestamps=True, since=T0 + dt.timedelta(seconds=1))
    out = r.feed([cri_line(0, "old"), cri_line(1, "he", tag="P")])
    assert out == []  # "he" waits for the rest of its line
    out = r.feed([cri_line(5, "llo", tag="F"), cri_line(2, "err", stream="stderr")])
    assert out == [b"2026-01-02T03:04:06.5Z hello\n", b"2026-01-02T03:04:07.5Z err\n"]


def test_complete_lines_leaves_unfinished_fragments() -> None:
    data = cri_line(0, "a") + cri_line(1, "b", tag="P") + b"2026-01-02T03:04"
    lines, end = logs.complete_lines(data)
    assert lines == [cri_line(0, "a")] and end == len(cri_line(0, "a"))


def write_log(path: Path, n: int) -> None:
    path.write_bytes(b"".join(cri_line(i, f"line {i}") for i in range(n)))


def test_tail_reads_from_the_end_of_a_long_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "TAIL_BLOCK", 100)  # several growing blocks
    path = tmp_path / "0.log"
    write_log(path, 500)
    out, pos = logs.read_initial(path, logs.LogOptions(tail=3))
    assert out == [b"line 497\n", b"line 498\n", b"line 499\n"] and pos == path.stat().st_size
    assert logs.read_initial(path, logs.LogOptions(tail=0))[0] == []
    assert len(logs.read_initial(path, logs.LogOptions(tail=1000))[0]) == 500
    since = logs.read_initial(path, logs.LogOptions(since=T0 + dt.timedelta(seconds=498)))[0]
    assert since == [b"line 498\n", b"line 499\n"]


async def test_stream_with_limit_bytes(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    write_log(path, 10)
    got: list[bytes] = []

    async def write(b: bytes) -> None:
        got.append(b)

    async def running() -> bool:
        return False

    await logs.stream_log(path, logs.LogOptions(limit=10), write=write, running=running)
    assert b"".join(got) == b"line 0\nlin"


async def test_follow_sees_new_lines_and_stops_after_exit(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    write_log(path, 2)
    got: list[bytes] = []
    alive = True
    wrote = asyncio.Event()

    async def write(b: bytes) -> None:
        got.append(b)
        wrote.set()

    async def running() -> bool:
        return alive

    task = asyncio.create_task(
        logs.stream_log(
            path, logs.LogOptions(follow=True, tail=1), write=write, running=running, poll=0.01
        )
    )
    await asyncio.wait_for(wrote.wait(), 5)
    with path.open("ab") as f:
        f.write(cri_line(2, "par", tag="P"))
    await asyncio.sleep(0.05)
    with path.open("ab") as f:
        f.write(cri_line(3, "tial") + cri_line(4, "last"))
    alive = False  # the container exits; the lines written before are still delivered
    await asyncio.wait_for(task, 5)
    assert got == [b"line 1\n", b"partial\n", b"last\n"]


async def test_follow_starts_over_when_the_file_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    write_log(path, 3)
    got: list[bytes] = []
    polls = 0

    async def write(b: bytes) -> None:
        got.append(b)

    async def running() -> bool:
        nonlocal polls
        polls += 1
        if polls == 1:
            path.write_bytes(cri_line(9, "rotated"))
        return polls < 3

    await asyncio.wait_for(
        logs.stream_log(
            path, logs.LogOptions(follow=True), write=write, running=running, poll=0.01
        ),
        5,
    )
    assert got[-1] == b"rotated\n" and len(got) == 4
