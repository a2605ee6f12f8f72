"""The controllers' work queue: de-duplication, one worker per key, back-off, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from k3py.client.workqueue import ShutDown, TokenBucket, WorkQueue, backoff_delay, process


async def take(q: WorkQueue[str]) -> str:
    return await asyncio.wait_for(q.get(), 5)


async def test_adds_are_deduplicated_and_ordered() -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in ("a", "b", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [await take(q) for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_a_key_in_processing_is_requeued_once_on_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await take(q) == "a"
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 1  # "a" waits for done(); "b" is ready
    assert await take(q) == "b"
    q.done("b")
    q.done("a")
    assert len(q) == 1
    assert await take(q) == "a"
    q.done("a")
    assert len(q) == 0


async def test_get_waits_for_an_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 5) == "x"


async def test_a_cancelled_waiter_passes_its_wakeup_on() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("x")  # wakes ``first`` ...
    first.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(second, 5) == "x"


async def test_add_after_keeps_the_earliest_due_time() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("late-then-early", 3600)
    q.add_after("late-then-early", 0.01)
    q.add_after("early-then-late", 0.01)
    q.add_after("early-then-late", 3600)
    got = {await take(q), await take(q)}
    assert got == {"late-then-early", "early-then-late"}
    q.add_after("now", 0)
    assert await take(q) == "now"


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(failures=n, base=0.005, cap=1.0) for n in range(10)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1.0
    assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))
    assert backoff_delay(failures=10_000, base=0.005, cap=300.0) == 300.0


def test_token_bucket_spends_the_burst_then_spaces_requests() -> None:
    now = [100.0]
    bucket = TokenBucket(qps=10.0, burst=2, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)
    now[0] += 10.0  # refilled, but never beyond the burst
    assert [bucket.reserve() for _ in range(3)][-1] == pytest.approx(0.1)


async def test_rate_limited_requeues_count_until_forget() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.001, max_delay=0.01)
    for expected in (1, 2, 3):
        q.add_rate_limited("k")
        assert q.num_requeues("k") == expected
        assert await take(q) == "k"
        q.done("k")
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_wakes_waiters_and_ignores_adds() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add_after("later", 3600)
    q.shut_down()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 5)
    q.add("x")
    assert len(q) == 0
    with pytest.raises(ShutDown):
        await q.get()


async def test_process_retries_failures_with_backoff_and_honours_requeue_after() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.001, max_delay=0.01)
    calls: list[str] = []
    done = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        if key == "flaky" and calls.count("flaky") < 3:
            raise RuntimeError("not yet")
        if key == "poll" and calls.count("poll") < 2:
            return 0.001  # look again shortly
        if calls.count("flaky") >= 3 and calls.count("poll") >= 2:
            done.set()
        return None

    workers = [asyncio.create_task(process(q, reconcile)) for _ in range(2)]
    q.add("flaky")
    q.add("poll")
    await asyncio.wait_for(done.wait(), 5)
    q.shut_down()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert calls.count("flaky") == 3 and calls.count("poll") == 2
    assert q.num_requeues("flaky") == 0  # forgotten after the success


async def test_one_key_is_never_processed_by_two_workers_at_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    active: set[str] = set()
    overlaps: list[str] = []
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        if key in active:
            overlaps.append(key)
        active.add(key)
        seen.append(key)
        await asyncio.sleep(0.001)
        if len(seen) < 6:
            q.add(key)  # re-added while being processed
        active.discard(key)

    workers = [asyncio.create_task(process(q, reconcile)) for _ in range(4)]
    q.add("a")
    q.add("b")
    for _ in range(200):
        await asyncio.sleep(0.001)
        if len(seen) >= 6 and len(q) == 0 and not active:
            break
    q.shut_down()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert overlaps == []
    assert set(seen) == {"a", "b"} and len(seen) >= 6
