"""The datastore contract, run unchanged against a SQLite file and in-memory SQLite."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import orjson
import pytest

from k3py.server.datastore import (
    CommitFailed,
    Compacted,
    Datastore,
    DatastoreError,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    Record,
    RevisionMismatch,
    SQLDatastore,
    Watch,
    WatchCutOff,
)

from .conftest import FakeClock, MakeStore, obj


def file_size(path: str) -> int:
    return os.path.getsize(path)


def rv(value: bytes) -> str:
    out: str = orjson.loads(value)["metadata"]["resourceVersion"]
    return out


async def next_batch(w: Watch) -> list[Event]:
    return await asyncio.wait_for(w.__aiter__().__anext__(), 5.0)


async def collect(w: Watch, *, count: int) -> list[Event]:
    out: list[Event] = []
    while len(out) < count:
        out += await next_batch(w)
    return out


# ---- create / get / update / delete ------------------------------------------------


async def test_create_then_get(ds: SQLDatastore) -> None:
    o = obj("a", data={"k": "v"})
    rec = await ds.create("/core/configmaps/default/a", o)
    assert rec.revision == rec.create_revision == ds.current_revision()
    assert o["metadata"]["resourceVersion"] == str(rec.revision)  # set on the caller's dict
    assert rv(rec.value) == str(rec.revision)
    assert rec.obj()["data"] == {"k": "v"}
    assert await ds.get("/core/configmaps/default/a") == rec
    assert await ds.get("/core/configmaps/default/missing") is None


async def test_create_existing_key_fails(ds: SQLDatastore) -> None:
    await ds.create("/k/a", obj("a"))
    head = ds.current_revision()
    with pytest.raises(KeyExists) as e:
        await ds.create("/k/a", obj("a", data={"x": "1"}))
    assert e.value.key == "/k/a"
    assert ds.current_revision() == head  # a failed write takes no revision
    assert "data" not in (await ds.get("/k/a") or pytest.fail()).obj()


async def test_update_semantics(ds: SQLDatastore) -> None:
    created = await ds.create("/k/a", obj("a"))
    upd = await ds.update("/k/a", obj("a", data={"v": "1"}), expected_revision=created.revision)
    assert upd.revision > created.revision
    assert upd.create_revision == created.revision
    assert rv(upd.value) == str(upd.revision)
    with pytest.raises(RevisionMismatch) as e:
        await ds.update("/k/a", obj("a", data={"v": "2"}), expected_revision=created.revision)
    assert e.value.current == upd  # the current record rides along
    blind = await ds.update("/k/a", obj("a", data={"v": "3"}))  # 0: unconditional
    assert blind.obj()["data"] == {"v": "3"}
    with pytest.raises(KeyNotFound):
        await ds.update("/k/missing", obj("missing"))
    with pytest.raises(KeyNotFound):
        await ds.update("/k/missing", obj("missing"), expected_revision=blind.revision)


async def test_delete_semantics(ds: SQLDatastore) -> None:
    created = await ds.create("/k/a", obj("a", data={"v": "1"}))
    with pytest.raises(RevisionMismatch) as e:
        await ds.delete("/k/a", expected_revision=created.revision + 100)
    assert e.value.current == created
    gone = await ds.delete("/k/a", expected_revision=created.revision)
    assert gone.revision == ds.current_revision() > created.revision
    assert rv(gone.value) == str(gone.revision)  # last state, stamped with the delete
    assert gone.obj()["data"] == {"v": "1"}
    assert gone.create_revision == created.revision
    assert await ds.get("/k/a") is None
    with pytest.raises(KeyNotFound):
        await ds.delete("/k/a")
    again = await ds.create("/k/a", obj("a"))
    assert again.create_revision == again.revision > gone.revision


async def test_revisions_strictly_increase_and_failures_take_none(ds: SQLDatastore) -> None:
    revs = [(await ds.create(f"/k/{i}", obj(str(i)))).revision for i in range(5)]
    with pytest.raises(KeyExists):
        await ds.create("/k/0", obj("0"))
    revs.append((await ds.update("/k/1", obj("1"))).revision)
    revs.append((await ds.delete("/k/2")).revision)
    assert revs == list(range(revs[0], revs[0] + len(revs)))
    assert ds.current_revision() == revs[-1]


async def test_unserializable_object_fails_alone(ds: SQLDatastore) -> None:
    bad = obj("bad", data={"x": object()})
    results = await asyncio.gather(
        ds.create("/k/good", obj("good")), ds.create("/k/bad", bad), return_exceptions=True
    )
    assert isinstance(results[0], Record)
    assert isinstance(results[1], TypeError)
    assert "resourceVersion" not in bad["metadata"]
    assert await ds.get("/k/bad") is None


# ---- group commit ----------------------------------------------------------------


async def test_group_commit_many_concurrent_creates(ds: SQLDatastore) -> None:
    before = ds.stats.batches
    n = 300
    recs = await asyncio.gather(*(ds.create(f"/k/{i:04d}", obj(str(i))) for i in range(n)))
    revs = sorted(r.revision for r in recs)
    assert revs == list(range(revs[0], revs[0] + n))  # distinct and contiguous
    assert ds.stats.batches - before < n  # shared transactions
    assert ds.stats.largest_batch > 1
    for r in recs:
        assert rv(r.value) == str(r.revision)
    assert await ds.count("/k/") == n


async def test_failed_precondition_fails_only_its_op(ds: SQLDatastore) -> None:
    await ds.create("/k/taken", obj("taken"))
    results = await asyncio.gather(
        ds.create("/k/x", obj("x")),
        ds.create("/k/taken", obj("taken")),
        ds.create("/k/y", obj("y")),
        ds.create("/k/x", obj("x")),  # same key twice in one batch: the second loses
        return_exceptions=True,
    )
    assert isinstance(results[0], Record) and isinstance(results[2], Record)
    assert isinstance(results[1], KeyExists) and isinstance(results[3], KeyExists)
    assert results[2].revision == results[0].revision + 1


async def test_later_op_in_a_batch_sees_earlier_ones(ds: SQLDatastore) -> None:
    created, updated, deleted, recreated = await asyncio.gather(
        ds.create("/k/a", obj("a", data={"v": "1"})),
        ds.update("/k/a", obj("a", data={"v": "2"})),
        ds.delete("/k/a"),
        ds.create("/k/a", obj("a", data={"v": "3"})),
    )
    assert updated.revision == created.revision + 1
    assert updated.create_revision == created.revision
    assert deleted.obj()["data"] == {"v": "2"}
    assert recreated.create_revision == recreated.revision == deleted.revision + 1
    cur = await ds.get("/k/a")
    assert cur == recreated


async def test_failed_commit_fails_the_whole_batch(ds: SQLDatastore) -> None:
    real = ds.backend.apply
    calls = 0

    async def failing_once(keys: list[str], *, plan: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk on fire")
        return await real(keys, plan=plan)

    ds.backend.apply = failing_once  # type: ignore[method-assign]
    head = ds.current_revision()
    results = await asyncio.gather(
        *(ds.create(f"/k/{i}", obj(str(i))) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, CommitFailed) for r in results)
    assert isinstance(results[0], CommitFailed) and isinstance(results[0].__cause__, OSError)
    assert ds.current_revision() == head
    assert await ds.count("/k/") == 0
    rec = await ds.create("/k/0", obj("0"))  # the writer carries on
    assert rec.revision == head + 1


async def test_reads_never_see_a_transaction_in_flight(
    open_store: MakeStore, file_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k3py.server.datastore import sqlite_sql

    ds = await open_store(file_endpoint)
    inside, release = threading.Event(), threading.Event()
    real_commit = sqlite_sql.commit

    def held_commit(db: Any) -> None:  # runs in the writer connection's thread
        inside.set()
        release.wait(10)
        real_commit(db)

    monkeypatch.setattr(sqlite_sql, "commit", held_commit)
    pending = asyncio.create_task(ds.create("/k/a", obj("a")))
    assert await asyncio.to_thread(inside.wait, 10)  # staged, not committed
    assert await ds.get("/k/a") is None  # readers are not blocked, and see nothing
    assert (await ds.list("/k/")).records == []
    assert await ds.count("/k/") == 0
    assert not pending.done()
    release.set()
    rec = await pending
    assert await ds.get("/k/a") == rec
    assert ds.current_revision() == rec.revision


# ---- list / count ------------------------------------------------------------------


async def test_list_pagination(ds: SQLDatastore) -> None:
    keys = [f"/core/pods/ns/p{i:02d}" for i in range(25)]
    for k in reversed(keys):
        await ds.create(k, obj(k))
    await ds.create("/core/pods/other/x", obj("x"))
    await ds.create("/core/podsx/ns/y", obj("y"))  # shares the text prefix, not the path
    seen: list[str] = []
    start, pages = "", 0
    while True:
        res = await ds.list("/core/pods/ns/", start_after=start, limit=10)
        seen += [r.key for r in res.records]
        pages += 1
        assert res.revision == ds.current_revision()
        if not res.more:
            break
        start = res.records[-1].key
    assert seen == keys and pages == 3
    everything = await ds.list("/core/pods/")
    assert [r.key for r in everything.records] == [*keys, "/core/pods/other/x"]
    assert not everything.more
    exact = await ds.list("/core/pods/ns/", limit=25)
    assert len(exact.records) == 25 and not exact.more
    assert await ds.count("/core/pods/") == 26
    assert await ds.count("") == 27


async def test_prefix_is_exact_for_sql_wildcards(ds: SQLDatastore) -> None:
    for k in ("/x/a_b/1", "/x/aXb/1", "/x/a%b/1", "/x/aYYb/1"):
        await ds.create(k, obj(k))
    assert [r.key for r in (await ds.list("/x/a_b/")).records] == ["/x/a_b/1"]
    assert [r.key for r in (await ds.list("/x/a%b/")).records] == ["/x/a%b/1"]
    assert await ds.count("/x/a_") == 1
    assert await ds.count("/x/a") == 4


async def test_list_at_an_old_revision(ds: SQLDatastore) -> None:
    a = await ds.create("/p/a", obj("a", data={"v": "a1"}))
    b = await ds.create("/p/b", obj("b"))
    c = await ds.create("/p/c", obj("c"))
    then = ds.current_revision()
    await ds.update("/p/a", obj("a", data={"v": "a2"}))
    await ds.delete("/p/b")
    await ds.create("/p/d", obj("d"))
    await ds.delete("/p/c")
    await ds.create("/p/c", obj("c", data={"v": "c2"}))
    await ds.create("/q/z", obj("z"))

    old = await ds.list("/p/", revision=then)
    assert old.revision == then
    assert old.records == [a, b, c]  # exact records: values, revisions, create revisions
    assert not old.more
    now = await ds.list("/p/")
    assert [r.key for r in now.records] == ["/p/a", "/p/c", "/p/d"]

    page1 = await ds.list("/p/", revision=then, limit=2)
    assert page1.records == [a, b] and page1.more
    page2 = await ds.list("/p/", revision=then, limit=2, start_after="/p/b")
    assert page2.records == [c] and not page2.more

    mid = await ds.list("/p/", revision=then + 2)  # after "a" changed and "b" went
    assert [(r.key, r.obj().get("data")) for r in mid.records] == [
        ("/p/a", {"v": "a2"}),
        ("/p/c", None),
    ]
    with pytest.raises(FutureRevision):
        await ds.list("/p/", revision=ds.current_revision() + 1)


async def test_list_at_revision_paginates_with_many_changes(ds: SQLDatastore) -> None:
    for i in range(30):
        await ds.create(f"/p/{i:02d}", obj(str(i), data={"gen": "1"}))
    then = ds.current_revision()
    expected = [r for r in (await ds.list("/p/")).records]
    for i in range(0, 30, 2):
        await ds.update(f"/p/{i:02d}", obj(str(i), data={"gen": "2"}))
    for i in range(1, 30, 3):
        await ds.delete(f"/p/{i:02d}")
    for i in range(30, 40):
        await ds.create(f"/p/{i:02d}", obj(str(i)))
    got: list[Record] = []
    start = ""
    while True:
        res = await ds.list("/p/", revision=then, limit=7, start_after=start)
        got += res.records
        if not res.more:
            break
        start = res.records[-1].key
    assert got == expected


# ---- watch -------------------------------------------------------------------------


async def test_watch_replays_exactly_from_a_revision(ds: SQLDatastore) -> None:
    await ds.create("/pods/a", obj("a"))
    start = ds.current_revision()
    b = await ds.create("/pods/b", obj("b"))
    await ds.create("/svc/x", obj("x"))  # another prefix
    a2 = await ds.update("/pods/a", obj("a", data={"v": "2"}))
    gone = await ds.delete("/pods/b")
    w = ds.watch("/pods/", after_revision=start)
    events = await collect(w, count=3)
    assert [(e.type, e.key, e.revision) for e in events] == [
        ("ADDED", "/pods/b", b.revision),
        ("MODIFIED", "/pods/a", a2.revision),
        ("DELETED", "/pods/b", gone.revision),
    ]
    assert events[0].value == b.value and events[0].prev_value is None
    assert events[1].value == a2.value and rv(events[1].prev_value or b"") == str(start)
    assert rv(events[2].value) == str(gone.revision)  # deleted: stamped with its revision
    assert events[2].prev_value == b.value
    live = await ds.create("/pods/c", obj("c"))
    assert [e.revision for e in await next_batch(w)] == [live.revision]
    await w.close()


async def test_watch_from_now_and_prefix_filtering(ds: SQLDatastore) -> None:
    await ds.create("/pods/old", obj("old"))
    w_pods = ds.watch("/pods/", after_revision=0)
    w_all = ds.watch("", after_revision=0)
    await ds.create("/svc/s", obj("s"))
    p = await ds.create("/pods/new", obj("new"))
    await ds.create("/podsx/n", obj("n"))
    assert [e.key for e in await collect(w_pods, count=1)] == ["/pods/new"]
    assert [e.key for e in await collect(w_all, count=3)] == ["/svc/s", "/pods/new", "/podsx/n"]
    q = await ds.create("/pods/q", obj("q"))
    got = await next_batch(w_pods)  # /podsx/n never reached /pods/
    assert [e.revision for e in got] == [q.revision] and q.revision > p.revision
    await w_pods.close()
    await w_all.close()


async def test_watch_from_a_future_revision_skips_up_to_it(ds: SQLDatastore) -> None:
    head = ds.current_revision()
    w = ds.watch("/k/", after_revision=head + 2)
    for i in range(4):
        await ds.create(f"/k/{i}", obj(str(i)))
    got = await collect(w, count=2)
    assert [e.revision for e in got] == [head + 3, head + 4]
    await w.close()


async def test_watch_catches_up_from_the_log_while_writes_continue(
    make_store: MakeStore,
) -> None:
    ds = await make_store(ring_size=8)
    for i in range(50):
        await ds.create(f"/k/{i:03d}", obj(str(i)))
    start = 3
    w = ds.watch("/k/", after_revision=start)

    async def writer() -> None:
        for i in range(50, 250):
            await ds.create(f"/k/{i:03d}", obj(str(i)))
            if i % 7 == 0:
                await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    got: list[int] = []
    async for batch in w:
        got += [e.revision for e in batch]
        if len(got) >= 250 - start:
            break
    await task
    first = start + 1
    assert got == list(range(first, first + 250 - start))  # no gap, no duplicate
    await w.close()


async def test_long_replay_from_the_log_comes_in_chunks_without_gaps(
    make_store: MakeStore,
) -> None:
    ds = await make_store(ring_size=8)
    for start in range(0, 2500, 500):
        await asyncio.gather(
            *(ds.create(f"/k/{i:04d}", obj(str(i))) for i in range(start, start + 500))
        )
    w = ds.watch("/k/", after_revision=1)
    batches = []
    got: list[int] = []
    while len(got) < 2499:
        batch = await next_batch(w)
        batches.append(len(batch))
        got += [e.revision for e in batch]
    assert got == list(range(2, 2501))
    assert len(batches) > 2  # read in bounded chunks
    await w.close()


async def test_close_ends_a_watch(ds: SQLDatastore) -> None:
    w = ds.watch("/k/", after_revision=0)
    got_one = asyncio.Event()

    async def drain() -> int:
        n = 0
        async for batch in w:
            n += len(batch)
            got_one.set()
        return n

    task = asyncio.create_task(drain())
    await ds.create("/k/a", obj("a"))
    await asyncio.wait_for(got_one.wait(), 5)
    await w.close()  # ends the iteration the consumer is parked in
    assert await asyncio.wait_for(task, 5) == 1


async def test_slow_watcher_is_cut_off_while_others_continue(make_store: MakeStore) -> None:
    ds = await make_store(watch_buffer=5)
    slow = ds.watch("/k/", after_revision=0)
    fast = ds.watch("/k/", after_revision=0)
    await ds.create("/k/first", obj("first"))
    first = await next_batch(slow)  # the slow one reads once, then stalls
    got_fast: list[int] = []

    async def read_fast() -> None:
        async for batch in fast:
            got_fast.extend(e.revision for e in batch)
            if len(got_fast) >= 21:
                return

    reader = asyncio.create_task(read_fast())
    recs = []
    for i in range(20):  # the writer never waits for the stalled watcher
        recs.append(await ds.create(f"/k/{i:02d}", obj(str(i))))
        await asyncio.sleep(0)
    await asyncio.wait_for(reader, 5)
    assert got_fast == [first[0].revision, *(r.revision for r in recs)]
    with pytest.raises(WatchCutOff) as e:
        await next_batch(slow)
    assert e.value.last_revision == first[0].revision
    resumed = ds.watch("/k/", after_revision=e.value.last_revision)  # resume: nothing lost
    assert [x.revision for x in await collect(resumed, count=20)] == [r.revision for r in recs]
    await resumed.close()
    await fast.close()


async def test_store_close_ends_watches(make_store: MakeStore) -> None:
    ds = await make_store()
    w = ds.watch("", after_revision=0)
    await ds.close()
    with pytest.raises(StopAsyncIteration):
        await next_batch(w)


# ---- compaction --------------------------------------------------------------------


async def test_compaction_keeps_both_retentions(make_store: MakeStore, clock: FakeClock) -> None:
    ds = await make_store(retention_seconds=300, retention_revisions=10, compact_chunk=3)
    for i in range(20):  # revisions 1..20 at t0
        await ds.create(f"/k/{i:02d}", obj(str(i)))
    clock.advance(200)
    for i in range(20, 40):  # revisions 21..40 at t0+200
        await ds.update(f"/k/{i - 20:02d}", obj(str(i)))
    assert await ds.compact() == 0  # nothing is 300 s old yet
    clock.advance(150)  # t0+350: revisions 1..20 are old; the newest 10 must stay anyway
    assert await ds.compact() == 20
    assert ds.compact_revision() == 20
    clock.advance(1000)  # everything is old: the revision rule still keeps 31..40
    assert await ds.compact() == 30
    with pytest.raises(Compacted) as e:
        ds.watch("/k/", after_revision=29)
    assert e.value.compact_revision == 30
    w = ds.watch("/k/", after_revision=30)  # the oldest a watch may start after
    assert [x.revision for x in await collect(w, count=10)] == list(range(31, 41))
    await w.close()
    with pytest.raises(Compacted):
        await ds.list("/k/", revision=29)
    at30 = await ds.list("/k/", revision=30)
    assert len(at30.records) == 20
    assert {r.key: r.revision for r in at30.records}["/k/19"] == 20
    assert await ds.count("/k/") == 20  # current objects are never compacted


async def test_watch_resume_after_compaction_raises_compacted(make_store: MakeStore) -> None:
    ds = await make_store(retention_seconds=0, retention_revisions=1, ring_size=4)
    for i in range(10):
        await ds.create(f"/k/{i}", obj(str(i)))
    w = ds.watch("/k/", after_revision=2)  # accepted: nothing compacted yet
    assert await ds.compact() == 9
    with pytest.raises(Compacted):  # its history went before it was read
        await next_batch(w)
    with pytest.raises(Compacted):
        ds.watch("/k/", after_revision=5)


async def test_background_compaction_runs(make_store: MakeStore) -> None:
    ds = await make_store(retention_seconds=0, retention_revisions=2, compaction_interval=0.01)
    for i in range(6):
        await ds.create(f"/k/{i}", obj(str(i)))
    for _ in range(500):
        if ds.compact_revision() == 4:
            break
        await asyncio.sleep(0.01)
    assert ds.compact_revision() == 4


# ---- persistence -------------------------------------------------------------------


async def test_reopen_keeps_objects_revisions_and_log(
    open_store: MakeStore, file_endpoint: str
) -> None:
    ds = await open_store(file_endpoint, retention_seconds=0, retention_revisions=3)
    for i in range(8):
        await ds.create(f"/k/{i}", obj(str(i)))
    gone = await ds.delete("/k/7")
    await ds.compact()
    await ds.close()

    again = await open_store(file_endpoint)
    assert again.current_revision() == gone.revision
    assert again.compact_revision() == gone.revision - 3
    assert await again.count("/k/") == 7
    rec = await again.get("/k/3")
    assert rec is not None and rv(rec.value) == "4"
    w = again.watch("/k/", after_revision=gone.revision - 2)  # replayed from the log
    assert [e.revision for e in await collect(w, count=2)] == [gone.revision - 1, gone.revision]
    nxt = await again.create("/k/new", obj("new"))
    assert nxt.revision == gone.revision + 1
    assert [e.key for e in await next_batch(w)] == ["/k/new"]
    await w.close()


async def test_reopen_after_deleting_the_newest_revision(
    open_store: MakeStore, file_endpoint: str
) -> None:
    ds = await open_store(file_endpoint, retention_seconds=0, retention_revisions=0)
    await ds.create("/k/a", obj("a"))
    gone = await ds.delete("/k/a")
    await ds.compact()  # the log is now empty; only the compact revision remembers
    await ds.close()
    again = await open_store(file_endpoint)
    assert again.current_revision() == gone.revision
    assert (await again.create("/k/b", obj("b"))).revision == gone.revision + 1


# ---- lifecycle and faults ----------------------------------------------------------


async def test_close_finishes_queued_writes_then_refuses(make_store: MakeStore) -> None:
    ds = await make_store()
    conforming: Datastore = ds  # the contract, checked by mypy
    pending = [asyncio.create_task(conforming.create(f"/k/{i}", obj(str(i)))) for i in range(50)]
    await asyncio.sleep(0)  # queued, not yet committed
    await ds.close()
    assert all(isinstance(t.result(), Record) for t in pending)
    with pytest.raises(DatastoreError):
        await ds.create("/k/late", obj("late"))
    await ds.close()  # idempotent


async def test_batches_never_exceed_max_batch(make_store: MakeStore) -> None:
    ds = await make_store(max_batch=4)
    recs = await asyncio.gather(*(ds.create(f"/k/{i:02d}", obj(str(i))) for i in range(20)))
    assert sorted(r.revision for r in recs) == list(range(1, 21))
    assert ds.stats.largest_batch <= 4
    assert ds.stats.batches >= 5


async def test_commit_reported_failed_but_stored_is_still_published(
    open_store: MakeStore, file_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k3py.server.datastore import sqlite_sql

    ds = await open_store(file_endpoint)
    w = ds.watch("", after_revision=0)
    real_commit = sqlite_sql.commit

    def commit_then_fail(db: Any) -> None:  # an I/O error after the data reached the disk
        real_commit(db)
        monkeypatch.setattr(sqlite_sql, "commit", real_commit)
        raise sqlite_sql.sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_sql, "commit", commit_then_fail)
    results = await asyncio.gather(
        ds.create("/k/a", obj("a")), ds.create("/k/b", obj("b")), return_exceptions=True
    )
    assert all(isinstance(r, CommitFailed) for r in results)
    assert ds.current_revision() == 2  # the writer re-read the head from the database
    assert [e.key for e in await collect(w, count=2)] == ["/k/a", "/k/b"]  # no gap
    c = await ds.create("/k/c", obj("c"))
    assert c.revision == 3
    assert [e.revision for e in await next_batch(w)] == [3]
    await w.close()


async def test_compaction_truncates_the_wal(open_store: MakeStore, file_endpoint: str) -> None:
    ds = await open_store(file_endpoint, retention_seconds=0, retention_revisions=10)
    for i in range(5):
        await ds.create(f"/k/{i}", obj("x"))
    for i in range(200):
        await ds.update(f"/k/{i % 5}", obj("x", data={"v": "y" * 2000}))
    wal = file_endpoint.removeprefix("sqlite:///") + "-wal"
    assert file_size(wal) > 0
    assert await ds.compact() == ds.current_revision() - 10
    assert file_size(wal) == 0
    assert await ds.count("/k/") == 5


async def test_one_store_per_database_file(open_store: MakeStore, file_endpoint: str) -> None:
    ds = await open_store(file_endpoint)
    with pytest.raises(DatastoreError, match="in use"):
        await open_store(file_endpoint)
    await ds.close()
    again = await open_store(file_endpoint)  # released on close
    assert again.current_revision() == 0
