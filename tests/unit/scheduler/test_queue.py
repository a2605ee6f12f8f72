"""The scheduling queue: order, back-off, unschedulable pods and moves (fake clock)."""

from __future__ import annotations

from k3py.server.scheduler.queue import ACTIVE, BACKOFF, UNSCHEDULABLE, SchedulingQueue
from tests.unit.scheduler.helpers import info


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make() -> tuple[SchedulingQueue, Clock]:
    clock = Clock()
    return SchedulingQueue(
        backoff_initial=1, backoff_max=10, unschedulable_flush=60, clock=clock
    ), clock


def test_priority_then_fifo() -> None:
    q, clock = make()
    a = info(name="a", priority=0)
    clock.t += 1
    b = info(name="b", priority=100)
    clock.t += 1
    c = info(name="c", priority=0)
    for p in (a, b, c):
        q.add(p)
        clock.t += 1
    assert [q.pop_ready().pod.name for _ in range(3)] == ["b", "a", "c"]  # type: ignore[union-attr]
    assert q.pop_ready() is None


def test_backoff_durations() -> None:
    q, _ = make()
    assert [q.backoff_duration(n) for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 8, 10, 10]


def test_unschedulable_waits_for_a_move_then_backoff() -> None:
    q, clock = make()
    q.add(info(name="a"))
    qp = q.pop_ready()
    assert qp is not None
    q.requeue_unschedulable(qp, plugins=frozenset({"NodeResourcesFit"}))
    assert qp.where == UNSCHEDULABLE
    assert q.pop_ready() is None
    clock.t += 0.5
    assert q.move_all(event="NodeAdd") == 1
    assert qp.where == BACKOFF  # 1 s back-off after the first attempt not over yet
    assert q.pop_ready() is None
    clock.t += 0.6
    assert q.pop_ready() is qp
    assert qp.attempts == 2


def test_move_predicate_filters_by_plugin() -> None:
    q, clock = make()
    q.add(info(name="a"))
    qp = q.pop_ready()
    assert qp is not None
    q.requeue_unschedulable(qp, plugins=frozenset({"NodeResourcesFit"}))
    clock.t += 5
    assert q.rejected_by == {"NodeResourcesFit": 1}
    assert q.move_all(event="AssignedPodAdd", plugins=frozenset({"InterPodAffinity"})) == 0
    assert qp.where == UNSCHEDULABLE
    assert q.move_all(event="AssignedPodDelete", plugins=frozenset({"NodeResourcesFit"})) == 1
    assert qp.where == ACTIVE  # back-off already over
    assert q.rejected_by == {}


def test_change_during_attempt_goes_to_backoff() -> None:
    q, clock = make()
    q.add(info(name="a"))
    qp = q.pop_ready()
    assert qp is not None
    q.move_all(event="NodeAdd")  # while the pod was being scheduled
    q.requeue_unschedulable(qp, plugins=frozenset({"NodeResourcesFit"}))
    assert qp.where == BACKOFF
    clock.t += 1.1
    assert q.pop_ready() is qp


def test_unschedulable_flushed_after_timeout() -> None:
    q, clock = make()
    q.add(info(name="a"))
    qp = q.pop_ready()
    assert qp is not None
    q.requeue_unschedulable(qp, plugins=frozenset())
    clock.t += 59
    assert q.pop_ready() is None
    clock.t += 2
    assert q.pop_ready() is qp


def test_delete_and_update() -> None:
    q, _ = make()
    a = info(name="a", priority=1)
    b = info(name="b", priority=2)
    q.add(a)
    q.add(b)
    q.delete(b.uid)
    got = q.pop_ready()
    assert got is not None and got.pod is a
    assert q.pop_ready() is None
    assert len(q) == 1  # a is in flight
    q.done_scheduled(a.uid)
    assert len(q) == 0


def test_priority_update_resorts() -> None:
    q, clock = make()
    a = info(name="a", priority=1)
    q.add(a)
    clock.t += 1
    b = info(name="b", priority=2)
    q.add(b)
    body_a = info(name="a", priority=5)
    body_a.uid = a.uid
    q.update(body_a)
    got = q.pop_ready()
    assert got is not None and got.pod.name == "a"


def test_error_requeue_uses_backoff() -> None:
    q, clock = make()
    q.add(info(name="a"))
    qp = q.pop_ready()
    assert qp is not None
    q.done_scheduled(qp.pod.uid)  # assumed, then the binding failed
    q.requeue_error(qp)
    assert qp.where == BACKOFF and len(q) == 1
    clock.t += 1.01
    assert q.pop_ready() is qp
