"""Fixtures: the in-process transport over an in-memory datastore (no HTTP server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from k3py.client import NAMESPACES, Client
from k3py.server import admission
from k3py.server.datastore import SQLDatastore, open_datastore
from k3py.server.inprocess import InProcessTransport
from k3py.server.registry.catalog import Catalog
from k3py.server.registry.store import ObjectStore


@dataclass
class Env:
    ds: SQLDatastore
    transport: InProcessTransport
    client: Client


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    # The log keeps only the newest revision once compacted: ``await ds.compact()``
    # makes every older resourceVersion 410 Gone.
    ds = open_datastore(
        "sqlite://", compaction_interval=None, retention_seconds=0, retention_revisions=1
    )
    await ds.start()
    catalog = Catalog()
    store = ObjectStore(datastore=ds)
    store.admit = [
        admission.NamespaceLifecycle(store=store, catalog=catalog),
        admission.pod_defaults,
    ]
    transport = InProcessTransport(store=store, catalog=catalog, field_manager="unit")
    client = Client(transport)
    for ns in ("default", "other"):
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    yield Env(ds=ds, transport=transport, client=client)
    await ds.close()
