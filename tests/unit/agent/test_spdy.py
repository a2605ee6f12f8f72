from __future__ import annotations

import asyncio
import struct

from k3py.agent import spdy


def test_dictionary_and_header_blocks_round_trip() -> None:
    assert len(spdy.DICTIONARY) == 1423 and spdy.DICTIONARY.endswith(b"enq=0.")
    out, back = spdy.new_compressor(), spdy.new_decompressor()
    for headers in ({"streamType": "error", "port": "80", "requestID": "0"}, {"streamtype": "data"}):
        block = spdy.encode_headers(out, headers)
        assert spdy.decode_headers(back, block) == {k.lower(): v for k, v in headers.items()}


def test_frames_reassemble_from_slices() -> None:
    frames = spdy.control_frame(spdy.PING, 0, struct.pack(">I", 7)) + spdy.data_frame(3, spdy.FLAG_FIN, b"abc")
    reader = spdy.FrameReader()
    got = []
    for i in range(len(frames)):
        got += reader.feed(frames[i:i + 1])
    assert [(f.control, f.ftype, f.stream_id, f.flags, f.payload) for f in got] == [
        (True, spdy.PING, 7, 0, struct.pack(">I", 7)), (False, 0, 3, spdy.FLAG_FIN, b"abc")]


async def test_port_forward_session_pipes_a_data_stream() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sent: list[bytes] = []

    async def send(b: bytes) -> None:
        sent.append(b)

    async def dial(p: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", p)

    session = spdy.PortForwardSession(send, dial)
    z = spdy.new_compressor()
    for sid, stype in ((1, "error"), (3, "data")):
        block = spdy.encode_headers(z, {"streamType": stype, "port": str(port), "requestID": "0"})
        await session.feed(spdy.control_frame(spdy.SYN_STREAM, 0, struct.pack(">IIBB", sid, 0, 0, 0) + block))
    await session.feed(spdy.data_frame(3, 0, b"ping!"))
    reader = spdy.FrameReader()
    data = b""
    for _ in range(50):
        await asyncio.sleep(0.02)
        data = b"".join(f.payload for f in reader.feed(b"".join(sent)) if not f.control and f.stream_id == 3)
        sent.clear()
        if data:
            break
    assert data == b"PING!"
    await session.close()
    server.close()


async def _echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write((await r.read(100)).upper())
    await w.drain()
    w.close()
