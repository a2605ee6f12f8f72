"""``kill -9`` of a real ``k3py server`` in the middle of a write stream loses nothing
that was acknowledged, and a watch resumes after the restart without a gap.

Sixteen writers create and update ConfigMaps over HTTPS; every answered write is an
acknowledged one (name, resourceVersion, data).  A watch follows the namespace from
before the first write.  About 1.5 s in, the server gets SIGKILL; it is restarted on
the same data dir and port.  Then:

* every acknowledged write is there, at its resourceVersion or a later one (and with
  its data when the resourceVersion is the acknowledged one);
* a watch from the last resourceVersion the first watch delivered replays every later
  event up to the store's head, revisions strictly increasing, every acknowledged write
  after that point included, and replaying both watches rebuilds exactly the listed
  state (no event lost, none invented).

Everything is bounded: writers stop after :data:`MAX_OPS` each or at the kill, the
resumed watch has a server-side timeout and a client deadline.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.common import ServerProc, start_server

pytestmark = pytest.mark.timeout(180)

NS = "crash"
WRITERS = 16
MAX_OPS = 400
KILL_AFTER = 1.5
SEED = 7
CMS = f"/api/v1/namespaces/{NS}/configmaps"


@dataclass(frozen=True)
class Ack:
    name: str
    rv: int
    data: dict[str, str]
    op: str


@dataclass
class WatchLog:
    events: list[tuple[str, str, int, dict[str, str] | None]] = field(default_factory=list)
    error: str = ""

    @property
    def last_rv(self) -> int:
        return self.events[-1][2] if self.events else 0


def session_for(srv: ServerProc, **kw: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=srv.url,
        connector=aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=WRITERS + 4),
        **kw,
    )


async def follow(
    session: aiohttp.ClientSession, *, since: int, log: WatchLog, until_rv: int = 0
) -> None:
    """Append the namespace's ConfigMap events to ``log`` until the stream ends (or
    ``until_rv`` has been delivered).  A partial last line (cut by the kill) is not an event."""
    params = {"watch": "1", "resourceVersion": str(since), "timeoutSeconds": "30"}
    async with session.get(CMS, params=params, timeout=aiohttp.ClientTimeout(total=40)) as r:
        if r.status != 200:
            log.error = f"watch answered {r.status}: {await r.text()}"
            return
        try:
            async for line in r.content:
                try:
                    ev = json.loads(line)
                except ValueError:
                    break
                obj = ev["object"]
                if ev["type"] not in ("ADDED", "MODIFIED", "DELETED"):
                    log.error = f"unexpected event {ev}"
                    return
                meta = obj["metadata"]
                log.events.append(
                    (ev["type"], meta["name"], int(meta["resourceVersion"]), obj.get("data"))
                )
                if until_rv and log.last_rv >= until_rv:
                    return
        except (aiohttp.ClientError, ConnectionError):
            return  # the server died under the stream


async def writer(
    session: aiohttp.ClientSession,
    i: int,
    acks: list[Ack],
    problems: list[str],
    stop: asyncio.Event,
) -> None:
    rng = random.Random(SEED * 100 + i)
    own: dict[str, int] = {}
    for n in range(MAX_OPS):
        if stop.is_set():
            return
        data = {"writer": str(i), "n": str(n), "pad": "x" * rng.randint(10, 400)}
        try:
            if own and rng.random() < 0.4:
                name = rng.choice(sorted(own))
                body = {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                        "metadata": {"name": name, "resourceVersion": str(own[name])}}  # fmt: skip
                op, expect, resp_ctx = "update", 200, session.put(f"{CMS}/{name}", json=body)
            else:
                name = f"w{i}-{n}"
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name},
                    "data": data,
                }
                op, expect, resp_ctx = "create", 201, session.post(CMS, json=body)
            async with resp_ctx as r:
                raw = await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            return  # killed: this write is not acknowledged
        if status != expect:
            problems.append(f"writer {i} {op} {name}: {status} {raw[:300]!r}")
            return
        obj = json.loads(raw)
        rv = int(obj["metadata"]["resourceVersion"])
        own[name] = rv
        acks.append(Ack(name=name, rv=rv, data=obj["data"], op=op))


async def write_then_kill(srv: ServerProc) -> tuple[list[Ack], WatchLog, int]:
    acks: list[Ack] = []
    problems: list[str] = []
    log = WatchLog()
    async with session_for(srv) as s:
        async with s.post(
            "/api/v1/namespaces",
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        ) as r:
            ns = await r.json()
            assert r.status == 201, ns
        start_rv = int(ns["metadata"]["resourceVersion"])
        watch = asyncio.create_task(follow(s, since=start_rv, log=log))
        stop = asyncio.Event()
        writers = [asyncio.create_task(writer(s, i, acks, problems, stop)) for i in range(WRITERS)]
        await asyncio.sleep(KILL_AFTER)
        in_flight = sum(not w.done() for w in writers)
        srv.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(srv.proc.wait, 30)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*writers), 30)
        await asyncio.wait_for(watch, 30)
    assert not problems, problems
    assert in_flight > 0, "the writers finished before the kill: raise MAX_OPS"
    assert log.error == "", log.error
    return acks, log, start_rv


async def list_state(s: aiohttp.ClientSession) -> dict[str, tuple[int, dict[str, str] | None]]:
    async with s.get(CMS) as r:
        body = await r.json()
        assert r.status == 200, body
    return {
        o["metadata"]["name"]: (int(o["metadata"]["resourceVersion"]), o.get("data"))
        for o in body["items"]
    }


def replay(
    events: list[tuple[str, str, int, dict[str, str] | None]],
) -> dict[str, tuple[int, dict[str, str] | None]]:
    state: dict[str, tuple[int, dict[str, str] | None]] = {}
    for etype, name, rv, data in events:
        if etype == "DELETED":
            state.pop(name, None)
        else:
            state[name] = (rv, data)
    return state


def strictly_increasing(rvs: list[int]) -> bool:
    return all(a < b for a, b in zip(rvs, rvs[1:], strict=False))


def test_kill_9_loses_no_acknowledged_write_and_watch_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = start_server(data_dir)
    try:
        acks, before, start_rv = asyncio.run(write_then_kill(srv))
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
    print(f"\n{len(acks)} acknowledged writes, first watch delivered {len(before.events)} events")
    assert acks, "no write was acknowledged before the kill"
    assert before.events, "the watch delivered nothing before the kill"
    assert strictly_increasing([e[2] for e in before.events])
    assert before.events[0][2] > start_rv

    again = start_server(data_dir, port=srv.port)
    try:
        asyncio.run(check_after_restart(again, acks=acks, before=before))
    finally:
        again.stop()


async def check_after_restart(srv: ServerProc, *, acks: list[Ack], before: WatchLog) -> None:
    async with session_for(srv) as s:
        state = await list_state(s)

        # 1. Every acknowledged write survived.
        latest: dict[str, Ack] = {}
        for a in acks:
            if a.name not in latest or a.rv > latest[a.name].rv:
                latest[a.name] = a
        missing = [a.name for a in latest.values() if a.name not in state]
        assert not missing, f"{len(missing)} acknowledged objects lost, e.g. {missing[:10]}"
        older = [
            (a.name, a.rv, state[a.name][0]) for a in latest.values() if state[a.name][0] < a.rv
        ]
        assert not older, f"objects went back before their acknowledged version: {older[:10]}"
        changed = [
            a.name
            for a in latest.values()
            if state[a.name][0] == a.rv and state[a.name][1] != a.data
        ]
        assert not changed, f"acknowledged data differs at the same resourceVersion: {changed[:10]}"

        # 2. A watch resumes from the last delivered revision, with no gap up to the head.
        since = before.last_rv
        head = max(rv for rv, _ in state.values())
        after = WatchLog()
        if head > since:
            await asyncio.wait_for(follow(s, since=since, log=after, until_rv=head), 45)
        assert after.error == "", after.error
        rvs = [e[2] for e in after.events]
        assert strictly_increasing(rvs), "resumed watch out of order"
        assert not rvs or rvs[0] > since, (since, rvs[:5])
        assert (rvs[-1] if rvs else since) == head, (
            f"resumed watch stopped at {rvs[-1:]} before head {head}"
        )
        seen = {(name, rv) for _, name, rv, _ in after.events}
        unseen = [(a.name, a.rv) for a in acks if a.rv > since and (a.name, a.rv) not in seen]
        assert not unseen, f"acknowledged writes missing from the resumed watch: {unseen[:10]}"
        rebuilt = replay(before.events + after.events)
        assert rebuilt == state, "replaying the watches does not rebuild the stored state"

        # 3. Resuming from further back replays, from the restarted server's log, exactly
        #    what the first watch saw live, then the same tail.
        mid = before.events[len(before.events) // 2][2]
        longer = WatchLog()
        if head > mid:
            await asyncio.wait_for(follow(s, since=mid, log=longer, until_rv=head), 45)
        assert longer.error == "", longer.error
        expected = [e for e in before.events if e[2] > mid] + after.events
        assert longer.events == expected, (
            "the log replayed after the restart differs from the live stream"
        )

        # 4. And the restarted server takes writes again.
        async with s.post(
            CMS, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}}
        ) as r:
            assert r.status == 201, await r.text()
