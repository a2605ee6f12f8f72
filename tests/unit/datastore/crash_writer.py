"""Child process for test_crash: writes concurrently and prints every acknowledged write.

    python crash_writer.py <endpoint>

Prints ``READY``, then one line per acknowledged write: ``C <key> <revision>`` for a
create, ``U <key> <revision>`` for an update — only after the datastore returned, i.e.
after the write is durable.  Runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

from k3py.server.datastore import open_datastore


async def main(endpoint: str) -> None:
    ds = open_datastore(endpoint, compaction_interval=None)
    await ds.start()
    out = sys.stdout
    out.write("READY\n")
    out.flush()

    async def writer(w: int) -> None:
        counter = f"/crash/counters/w{w}"
        rec = await ds.create(counter, {"metadata": {"name": f"w{w}"}, "n": 0})
        i = 0
        while True:
            key = f"/crash/objects/w{w}-{i:06d}"
            created = await ds.create(key, {"metadata": {"name": key}, "data": "x" * 1500})
            out.write(f"C {key} {created.revision}\n")
            rec = await ds.update(
                counter, {"metadata": {"name": f"w{w}"}, "n": i}, expected_revision=rec.revision
            )
            out.write(f"U {counter} {rec.revision}\n")
            out.flush()
            i += 1

    await asyncio.gather(*(writer(w) for w in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
