"""The tables, in SQLAlchemy Core so every dialect gets its own DDL from one description.

``objects`` holds the current state, one row per key (never compacted).  ``log`` holds
every change, one row per revision (revisions are contiguous: only successful writes
take one), with the previous state so a watch can be replayed and a list at an old
revision reconstructed by undoing later changes.  ``meta`` holds the compact revision.
Small columns come before the blobs so scans that filter on them stay off overflow pages.
"""

from __future__ import annotations

import sqlalchemy as sa

# SQLite needs exactly INTEGER for a rowid alias (cheap appends, ordered by revision).
REVISION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

objects = sa.Table(
    "objects",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("revision", REVISION, nullable=False),
    sa.Column("create_revision", REVISION, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

log = sa.Table(
    "log",
    metadata,
    sa.Column("revision", REVISION, primary_key=True, autoincrement=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("type", sa.SmallInteger, nullable=False),  # ADDED / MODIFIED / DELETED codes
    sa.Column("create_revision", REVISION, nullable=False),
    sa.Column("prev_revision", REVISION, nullable=False),  # 0 for ADDED
    sa.Column("ts", sa.Float, nullable=False),  # commit time (non-decreasing), for retention
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("prev_value", sa.LargeBinary, nullable=True),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", REVISION, nullable=False),
)

COMPACT_REVISION = "compact_revision"
