"""The client side of Kubernetes remote command over SPDY/3.1, towards containerd's
streaming server (the URL returned by CRI Exec/Attach).

Why SPDY and not WebSocket: containerd 1.6's streaming server knows only the WebSocket
protocols up to ``v4.channel.k8s.io``, which cannot half-close stdin; SPDY can (a DATA
frame with FLAG_FIN on the stdin stream), which ``kubectl cp`` and ``exec -i`` with piped
input need, while the exit status still arrives afterwards.

Handshake: ``POST`` with ``Upgrade: SPDY/3.1`` and ``X-Stream-Protocol-Version:
v4.channel.k8s.io``; after the 101 we open one stream per channel (odd ids, header
``streamType`` = error, stdin, stdout, stderr, resize), exactly those the CRI request
asked for, since the server waits for that many.  The server writes the command's output
on stdout/stderr (each ends with FLAG_FIN), then a JSON ``metav1.Status`` on the error
stream, then closes the connection.  PINGs are answered; received data is granted back with WINDOW_UPDATE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from urllib.parse import urlsplit

import orjson

from k3py.agent import spdy
from k3py.agent.streams import channels
from k3py.agent.streams.channels import ERROR, STDERR, STDOUT

log = logging.getLogger("k3py.agent.streams.remotecommand")

PROTOCOL_VERSION = "v4.channel.k8s.io"
CHUNK = 32 * 1024
RESIZE_REPEAT = (0.3, 1.0)  # seconds after the first resize
Event = tuple[int, bytes]  # (channel, data): STDOUT, STDERR, or ERROR (the whole Status, once)


# containerd 1.6 copies stdin to the process in a goroutine that its exit status waits
# for; a command that exits without reading all of a large stdin leaves that copy blocked
# on a full FIFO, and the status never comes.  Once every output stream has ended we wait
# this long for the status, then end the session with this message.
STATUS_GRACE = 5.0
NO_STATUS = (
    "the command's output ended but the container runtime reported no exit status "
    "(the command did not read all of its standard input)"
)


class HandshakeError(Exception):
    pass


class RemoteCommand:
    """One exec/attach session; iterate ``events()`` until it ends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._frames = spdy.FrameReader()
        self._zout = spdy.new_compressor()
        self._zin = spdy.new_decompressor()
        self._lock = asyncio.Lock()
        self._ids: dict[str, int] = {}
        self._error = bytearray()
        self._stdin_closed = False
        self.status_grace = STATUS_GRACE
        self._last_size: bytes | None = None
        self._resend: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, url: str, *, stdin: bool, stdout: bool, stderr: bool, tty: bool, timeout: float = 10.0
    ) -> RemoteCommand:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", ""):
            raise HandshakeError(f"unsupported streaming URL scheme {parts.scheme!r}")
        tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            # a runtime's TLS streaming server uses a self-signed cert, as upstream's
            # kubelet accepts it: the URL's one-time token is the credential
            tls = ssl.create_default_context()
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            try:
                await _handshake(
                    reader=reader, writer=writer, host=parts.netloc, path=parts.path or "/"
                )
            except BaseException:
                writer.close()
                raise
        rc = cls(reader, writer)
        kinds = ["error"] + [
            k
            for k, on in (
                ("stdin", stdin),
                ("stdout", stdout),
                ("stderr", stderr and not tty),
                ("resize", tty),
            )
            if on
        ]
        for kind in kinds:
            await rc._open_stream(kind)
        return rc

    async def _send(self, frame: bytes) -> None:
        async with self._lock:
            self._writer.write(frame)
            await self._writer.drain()

    async def _send_quietly(self, frame: bytes) -> None:
        """Sends from the read loop: the peer may have closed its side after its last
        frames, which must still be read."""
        with contextlib.suppress(ConnectionError, OSError):
            await self._send(frame)

    async def _open_stream(self, kind: str) -> None:
        sid = 2 * len(self._ids) + 1
        self._ids[kind] = sid
        block = spdy.encode_headers(self._zout, {"streamType": kind})
        await self._send(
            spdy.control_frame(spdy.SYN_STREAM, 0, struct.pack(">IIBB", sid, 0, 0, 0) + block)
        )

    async def write_stdin(self, data: bytes) -> None:
        sid = self._ids.get("stdin")
        if sid is None or self._stdin_closed:
            return
        for i in range(0, len(data), CHUNK):
            await self._send(spdy.data_frame(sid, 0, data[i : i + CHUNK]))

    async def close_stdin(self) -> None:
        sid = self._ids.get("stdin")
        if sid is None or self._stdin_closed:
            return
        self._stdin_closed = True
        await self._send(spdy.data_frame(sid, spdy.FLAG_FIN, b""))

    async def resize(self, data: bytes) -> None:
        """Forwards a terminal size (JSON).  The first one is sent again shortly after:
        containerd drops a resize that reaches the shim before the exec's console exists."""
        sid = self._ids.get("resize")
        if sid is None or not data:
            return
        first = self._last_size is None
        self._last_size = data
        await self._send(spdy.data_frame(sid, 0, data))
        if first:
            self._resend = asyncio.create_task(self._resend_size(sid))

    async def _resend_size(self, sid: int) -> None:
        for delay in RESIZE_REPEAT:
            await asyncio.sleep(delay)
            if self._last_size is not None:
                await self._send_quietly(spdy.data_frame(sid, 0, self._last_size))

    async def events(self) -> asyncio.Queue[Event | None]:
        """A queue of output events, ending with None when the session is over; filled by
        a reader task that lives as long as the connection."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read_loop(queue))
        return queue

    async def _read_loop(self, queue: asyncio.Queue[Event | None]) -> None:
        channel_of = {
            sid: ch
            for sid, ch in ((self._ids.get("stdout"), STDOUT), (self._ids.get("stderr"), STDERR))
            if sid is not None
        }
        open_outputs = set(channel_of)
        error_id = self._ids["error"]
        try:
            while True:
                try:
                    async with asyncio.timeout(
                        self.status_grace if channel_of and not open_outputs else None
                    ):
                        data = await self._reader.read(65536)
                except TimeoutError:
                    if not self._error:
                        queue.put_nowait((ERROR, orjson.dumps(channels.failure(NO_STATUS))))
                    break
                if not data:
                    break
                for f in self._frames.feed(data):
                    if f.control:
                        await self._control(f)
                        continue
                    if f.payload:
                        await self._send_quietly(
                            spdy.control_frame(
                                spdy.WINDOW_UPDATE,
                                0,
                                struct.pack(">II", f.stream_id, len(f.payload)),
                            )
                        )
                    if f.stream_id == error_id:
                        self._error += f.payload
                        if f.flags & spdy.FLAG_FIN:
                            self._flush_error(queue)
                    elif f.stream_id in channel_of:
                        if f.payload:
                            queue.put_nowait((channel_of[f.stream_id], f.payload))
                        if f.flags & spdy.FLAG_FIN:
                            open_outputs.discard(f.stream_id)
        except (ConnectionError, spdy.ProtocolError) as e:
            log.debug("remote command session ended: %s", e)
        finally:
            self._flush_error(queue)
            queue.put_nowait(None)

    def _flush_error(self, queue: asyncio.Queue[Event | None]) -> None:
        if self._error:
            queue.put_nowait((ERROR, bytes(self._error)))
            self._error.clear()

    async def _control(self, f: spdy.Frame) -> None:
        if f.ftype == spdy.PING:
            await self._send_quietly(spdy.control_frame(spdy.PING, 0, f.payload[:4]))
        elif f.ftype in (spdy.SYN_REPLY, spdy.HEADERS):
            spdy.decode_headers(self._zin, f.payload[4:])  # keeps the zlib stream in step
        elif f.ftype == spdy.SYN_STREAM:
            spdy.decode_headers(self._zin, f.payload[10:])
            await self._send_quietly(
                spdy.control_frame(
                    spdy.RST_STREAM, 0, struct.pack(">II", f.stream_id, spdy.RST_PROTOCOL_ERROR)
                )
            )
        # RST_STREAM, SETTINGS, WINDOW_UPDATE, GOAWAY: the connection's end tells us enough

    async def close(self) -> None:
        if self._resend is not None:
            self._resend.cancel()
        task = getattr(self, "_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def _handshake(
    *, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str
) -> None:
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            f"X-Stream-Protocol-Version: {PROTOCOL_VERSION}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if code == 101:
        return
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)
    }
    body = b""
    with contextlib.suppress(ValueError, asyncio.IncompleteReadError):
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    raise HandshakeError(
        f"streaming server answered {code}: {body.decode(errors='replace').strip()}"
    )
