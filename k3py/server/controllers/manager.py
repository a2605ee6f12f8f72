"""Runs a set of controllers for as long as this process holds their Lease.

Each leadership term starts from nothing: fresh shared informers, fresh controllers
(``setup`` adds handlers), one list of everything, then workers.  Losing the Lease stops
them all; a later term starts them again.  Without leader election (``elector=None``)
the term starts at once and lasts until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from k3py.server.controllers.base import Context, Controller, Informers
from k3py.server.controllers.leaderelection import LeaderElector

log = logging.getLogger("k3py.controllers")

Factory = Callable[[Context], Controller]


class Manager:
    def __init__(
        self,
        *,
        name: str,
        make_context: Callable[[Informers], Context],
        factories: list[Factory],
        elector: LeaderElector | None,
        informers: Callable[[], Informers],
    ) -> None:
        self.name = name
        self.make_context = make_context
        self.factories = factories
        self.elector = elector
        self.new_informers = informers
        self.controllers: list[Controller] = []
        self.informers: Informers | None = None
        self.running = asyncio.Event()  # set while a term's controllers run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.elector is None:
            self._task = loop.create_task(self._forever(), name=f"{self.name}-manager")
        else:
            self._task = loop.create_task(
                self.elector.run(self._start_term, self._stop_term), name=f"{self.name}-elector"
            )

    async def _forever(self) -> None:
        await self._start_term()
        try:
            await asyncio.Event().wait()
        finally:
            await self._stop_term()

    async def _start_term(self) -> None:
        informers = self.new_informers()
        ctx = self.make_context(informers)
        controllers = [f(ctx) for f in self.factories]
        for c in controllers:
            c.setup()
        self.informers, self.controllers = informers, controllers
        informers.start()
        await informers.wait_synced()
        for c in controllers:
            await c.started()
            c.start()
        self.running.set()
        log.info("%s: %d controllers running", self.name, len(controllers))

    async def _stop_term(self) -> None:
        self.running.clear()
        controllers, self.controllers = self.controllers, []
        informers, self.informers = self.informers, None
        for c in controllers:
            with contextlib.suppress(Exception):
                await c.stop()
        if informers is not None:
            await informers.stop()

    def get(self, name: str) -> Controller | None:
        for c in self.controllers:
            if c.name == name:
                return c
        return None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
