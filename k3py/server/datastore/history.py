"""The state of a key range as of an old revision N, from the current rows and the log.

For a key changed after N, its first change after N says what it was at N: absent if
that change created it, otherwise the change's previous value (with its revision and
create revision).  A key not changed after N is as the current table has it.  When the
current rows were cut by a limit, only keys up to the last fetched one are known; the
backend fetched ``limit + changed keys + 1`` rows, so that still leaves more than
``limit`` answers and tells whether there are more.
"""

from __future__ import annotations

from operator import attrgetter

from k3py.server.datastore.dialect import ADDED, History, LogRow
from k3py.server.datastore.types import Record


def records_at(h: History, *, limit: int) -> tuple[list[Record], bool]:
    """Records in key order (at most ``limit``, 0: all) and whether more exist."""
    first: dict[str, LogRow] = {}
    for change in h.changes:
        first.setdefault(change[1], change)
    out = [Record(*row) for row in h.rows if row[0] not in first]
    bound = h.rows[-1][0] if h.truncated else None
    for key, ch in first.items():
        if ch[2] == ADDED or (bound is not None and key > bound):
            continue
        assert ch[7] is not None
        out.append(Record(key, ch[7], ch[4], ch[3]))
    out.sort(key=attrgetter("key"))
    if limit and len(out) > limit:
        return out[:limit], True
    return out, False
