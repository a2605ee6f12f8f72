"""The SPDY remote-command client against a small in-process streaming server that echoes
stdin to stdout until stdin is half-closed, then reports an exit status."""

from __future__ import annotations

import asyncio
import struct

import orjson

from k3py.agent import spdy
from k3py.agent.streams import channels
from k3py.agent.streams.remotecommand import HandshakeError, RemoteCommand


class FakeStreamingServer:
    def __init__(self) -> None:
        self.request = b""
        self.streams: dict[str, int] = {}
        self.resizes: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.request = await reader.readuntil(b"\r\n\r\n")
        if b"/refuse" in self.request:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno token\n")
            await writer.drain()
            writer.close()
            return
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
        )
        frames, zin, zout = spdy.FrameReader(), spdy.new_decompressor(), spdy.new_compressor()
        writer.write(spdy.control_frame(spdy.PING, 0, struct.pack(">I", 2)))
        received = bytearray()
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for f in frames.feed(data):
                if f.control and f.ftype == spdy.SYN_STREAM:
                    kind = spdy.decode_headers(zin, f.payload[10:])["streamtype"]
                    self.streams[kind] = f.stream_id
                    reply = struct.pack(">I", f.stream_id) + spdy.encode_headers(zout, {})
                    writer.write(spdy.control_frame(spdy.SYN_REPLY, 0, reply))
                elif f.control:
                    continue
                elif f.stream_id == self.streams.get("resize"):
                    self.resizes.append(f.payload)
                elif f.stream_id == self.streams.get("stdin"):
                    received += f.payload
                    writer.write(spdy.data_frame(self.streams["stdout"], 0, f.payload.upper()))
                    if f.flags & spdy.FLAG_FIN:  # stdin closed: the command finishes
                        writer.write(
                            spdy.data_frame(
                                self.streams["stdout"], 0, f"{len(received)}\n".encode()
                            )
                        )
                        status = orjson.dumps(channels.exit_status(3))
                        writer.write(spdy.data_frame(self.streams["error"], 0, status[:10]))
                        writer.write(spdy.data_frame(self.streams["error"], 0, status[10:]))
                        await writer.drain()
                        writer.close()
                        return
            await writer.drain()


async def test_stdin_half_close_then_output_and_status() -> None:
    fake = FakeStreamingServer()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rc = await RemoteCommand.open(
        f"http://127.0.0.1:{port}/exec/tok", stdin=True, stdout=True, stderr=True, tty=True
    )
    queue = await rc.events()
    await rc.resize(b'{"Width":80,"Height":24}')
    await rc.write_stdin(b"x" * 70_000)
    await rc.close_stdin()
    await rc.write_stdin(b"ignored after close")
    events = []
    while (ev := await asyncio.wait_for(queue.get(), 5)) is not None:
        events.append(ev)
    await rc.close()
    server.close()
    assert (
        b"POST /exec/tok HTTP/1.1" in fake.request
        and b"X-Stream-Protocol-Version: v4" in fake.request
    )
    assert fake.streams == {
        "error": 1,
        "stdin": 3,
        "stdout": 5,
        "resize": 7,
    }  # tty: no stderr stream
    assert fake.resizes == [b'{"Width":80,"Height":24}']
    out = b"".join(d for ch, d in events if ch == channels.STDOUT)
    assert out == b"X" * 70_000 + b"70000\n"
    assert events[-1] == (channels.ERROR, orjson.dumps(channels.exit_status(3)))


async def test_refused_handshake() -> None:
    fake = FakeStreamingServer()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await RemoteCommand.open(
            f"http://127.0.0.1:{port}/refuse", stdin=False, stdout=True, stderr=True, tty=False
        )
    except HandshakeError as e:
        assert "404" in str(e) and "no token" in str(e)
    else:
        raise AssertionError("the handshake should fail")
    finally:
        server.close()
