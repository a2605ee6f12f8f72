"""The scheduler: queue, cache, filter/score plugins, preemption, binding (DESIGN §5)."""

from k3py.server.scheduler.scheduler import Scheduler

__all__ = ["Scheduler"]
