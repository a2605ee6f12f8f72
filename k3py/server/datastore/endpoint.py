"""``--datastore-endpoint`` URLs and the driver each scheme selects.

SQLite URLs read as in SQLAlchemy (and as ``ServerConfig.datastore_url`` builds them):
``sqlite:///`` followed by the path, so ``sqlite:///state.db`` is relative to the working
directory and ``sqlite:////var/lib/k3py/server/db/state.db`` is absolute.  ``sqlite://``
and ``sqlite:///:memory:`` are an in-memory database.  ``postgresql://`` / ``postgres://``
are reserved for the asyncpg driver (one more module implementing ``dialect.Backend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from k3py.server.datastore.dialect import Backend
from k3py.server.datastore.sqlite import SQLiteBackend

_MEMORY = ("", "/", ":memory:", "/:memory:")


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str  # "sqlite" | "postgresql"
    path: str | None  # sqlite: file path, None in memory
    url: str


def default_endpoint(data_dir: str | Path) -> str:
    """``sqlite:///`` + the absolute path of ``<data-dir>/server/db/state.db``."""
    return "sqlite:///" + str(Path(data_dir).resolve() / "server" / "db" / "state.db")


def parse_endpoint(endpoint: str) -> Endpoint:
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ValueError(f"datastore endpoint {endpoint!r} is not a URL (sqlite:///path)")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return Endpoint(scheme="postgresql", path=None, url=endpoint)
    if scheme not in ("sqlite", "sqlite3"):
        raise ValueError(f"unsupported datastore scheme {scheme!r} (sqlite, postgresql)")
    if "?" in rest:
        raise ValueError("sqlite endpoint options (?...) are not supported")
    if rest in _MEMORY:
        return Endpoint(scheme="sqlite", path=None, url=endpoint)
    if not rest.startswith("/"):
        raise ValueError(f"sqlite endpoint {endpoint!r} names a host; use sqlite:///path")
    return Endpoint(scheme="sqlite", path=rest[1:], url=endpoint)


def backend_for(ep: Endpoint, *, readers: int) -> Backend:
    if ep.scheme == "sqlite":
        return SQLiteBackend(path=ep.path, readers=readers)
    raise ValueError(f"the {ep.scheme} datastore driver is not available yet")
