"""The datastore's pure parts: key ranges, endpoints, batch planning, the event ring."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from k3py.server.datastore import KeyExists, KeyNotFound, Record, RevisionMismatch
from k3py.server.datastore.dialect import ADDED, DELETED, MODIFIED, KeyRange, prefix_range
from k3py.server.datastore.endpoint import default_endpoint, parse_endpoint
from k3py.server.datastore.planning import CREATE, DELETE, UPDATE, Op, plan_batch
from k3py.server.datastore.types import Event
from k3py.server.datastore.watching import Ring


def test_prefix_range() -> None:
    assert prefix_range("/core/pods/") == KeyRange("/core/pods/", "/core/pods0")
    assert prefix_range("") == KeyRange("", None)
    assert prefix_range("a\U0010ffff") == KeyRange("a\U0010ffff", "b")
    assert prefix_range("\U0010ffff") == KeyRange("\U0010ffff", None)
    rng = prefix_range("/x/a_b")
    for key, inside in [
        ("/x/a_b", True),
        ("/x/a_bc/d", True),
        ("/x/a_c", False),
        ("/x/aXb", False),
    ]:
        assert (rng.lo <= key and (rng.hi is None or key < rng.hi)) == inside


def test_parse_endpoint() -> None:
    assert parse_endpoint("sqlite://").path is None
    assert parse_endpoint("sqlite:///:memory:").path is None
    assert parse_endpoint("sqlite:////var/lib/k3py/state.db").path == "/var/lib/k3py/state.db"
    assert parse_endpoint("sqlite:///state.db").path == "state.db"
    assert parse_endpoint("postgresql://u@h/db").scheme == "postgresql"
    for bad in ("state.db", "mysql://h/db", "sqlite://host/x.db", "sqlite:///x.db?cache=shared"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)
    ep = default_endpoint(Path("/var/lib/k3py"))
    assert parse_endpoint(ep).path == "/var/lib/k3py/server/db/state.db"


def _op(verb: str, key: str, body: dict[str, object] | None = None, expected: int = 0) -> Op:
    fut: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
    return Op(verb, key, body, expected, fut)


async def test_plan_batch_walks_ops_in_order() -> None:
    old = orjson.dumps({"metadata": {"name": "b", "resourceVersion": "7"}})
    ops = [
        _op(CREATE, "/a", {"metadata": {"name": "a"}}),
        _op(UPDATE, "/a", {"metadata": {"name": "a"}, "x": 1}, expected=11),
        _op(CREATE, "/b", {"metadata": {}}),  # exists
        _op(UPDATE, "/b", {"metadata": {}}, expected=6),  # stale
        _op(DELETE, "/b", expected=7),
        _op(DELETE, "/c"),  # absent
    ]
    plan = plan_batch(ops, rows=[("/b", old, 7, 5)], head=10, ts=123.0)
    assert plan.head == 13
    a1, a2, e1, e2, gone, e3 = plan.outcomes
    assert isinstance(a1, Record) and a1.revision == 11 and a1.create_revision == 11
    assert isinstance(a2, Record) and a2.revision == 12 and a2.create_revision == 11
    assert isinstance(e1, KeyExists)
    assert isinstance(e2, RevisionMismatch) and e2.current == Record("/b", old, 7, 5)
    assert isinstance(gone, Record) and gone.revision == 13 and gone.create_revision == 5
    assert orjson.loads(gone.value)["metadata"]["resourceVersion"] == "13"
    assert isinstance(e3, KeyNotFound)
    assert [(r[0], r[1], r[2]) for r in plan.writes.log] == [
        (11, "/a", ADDED),
        (12, "/a", MODIFIED),
        (13, "/b", DELETED),
    ]
    assert plan.writes.log[2][7] == old  # the previous state rides in the log
    assert plan.writes.upserts == [("/a", a2.value, 12, 11)]  # final state only
    assert plan.writes.deletes == ["/b"]
    assert [e.type for e in plan.events] == ["ADDED", "MODIFIED", "DELETED"]


async def test_plan_batch_create_and_delete_in_one_batch_leaves_no_row() -> None:
    plan = plan_batch(
        [_op(CREATE, "/a", {"metadata": {}}), _op(DELETE, "/a")], rows=[], head=0, ts=0.0
    )
    assert plan.head == 2
    assert plan.writes.upserts == [] and plan.writes.deletes == []
    assert len(plan.writes.log) == 2


def _event(rev: int, key: str) -> Event:
    return Event("ADDED", key, rev, b"{}", None)


def test_ring_reads_by_revision_and_forgets_the_oldest() -> None:
    ring = Ring(size=4, head=10)
    assert ring.covers(10) and not ring.covers(9)
    ring.append([_event(11, "/a/1"), _event(12, "/b/1"), _event(13, "/a/2")])
    got, scanned = ring.read(prefix="/a/", after=10, upto=13, limit=10)
    assert [e.revision for e in got] == [11, 13] and scanned == 13
    got, scanned = ring.read(prefix="", after=10, upto=13, limit=2)
    assert [e.revision for e in got] == [11, 12] and scanned == 12
    ring.append([_event(14, "/a/3"), _event(15, "/a/4")])
    assert not ring.covers(10) and ring.covers(11)
    got, _ = ring.read(prefix="", after=11, upto=15, limit=10)
    assert [e.revision for e in got] == [12, 13, 14, 15]
    ring.append([_event(20, "/a/5")])  # a gap restarts the ring
    assert not ring.covers(15) and ring.covers(19)
