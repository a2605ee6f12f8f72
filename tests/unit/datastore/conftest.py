"""Fixtures: a started datastore per test, parametrized over a SQLite file and memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from k3py.server.datastore import SQLDatastore, open_datastore


class FakeClock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeStore = Callable[..., Awaitable[SQLDatastore]]


@pytest.fixture(params=["file", "memory"])
def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"sqlite:///{tmp_path / 'server' / 'db' / 'state.db'}"
    return "sqlite://"


@pytest.fixture
def file_endpoint(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'server' / 'db' / 'state.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def open_store(clock: FakeClock) -> AsyncIterator[MakeStore]:
    """Open and start a store on an endpoint; all are closed at the end of the test."""
    opened: list[SQLDatastore] = []

    async def make(ep: str, **kw: Any) -> SQLDatastore:
        kw.setdefault("compaction_interval", None)
        kw.setdefault("clock", clock)
        ds = open_datastore(ep, **kw)
        await ds.start()
        opened.append(ds)
        return ds

    yield make
    for ds in opened:
        await ds.close()


@pytest.fixture
def make_store(endpoint: str, open_store: MakeStore) -> MakeStore:
    """Like ``open_store``, on the parametrized endpoint (file, memory)."""

    async def make(**kw: Any) -> SQLDatastore:
        return await open_store(endpoint, **kw)

    return make


@pytest.fixture
async def ds(make_store: MakeStore) -> SQLDatastore:
    return await make_store()


def obj(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}
