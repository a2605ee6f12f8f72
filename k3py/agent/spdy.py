"""SPDY/3.1 framing and the server side of Kubernetes port-forwarding over it.

kubectl 1.32 port-forwards with SPDY/3.1 tunnelled in WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``; every binary message carries a slice of the SPDY byte
stream).  Per forwarded connection the client opens two streams, ``streamType: error``
then ``streamType: data``, both carrying ``port`` and ``requestID`` headers; we answer
each SYN_STREAM with a SYN_REPLY, pipe the data stream to the port inside the pod and
report failures on the error stream.  Header blocks are zlib streams primed with the
SPDY/3 dictionary (one stream per direction, sync-flushed).  We grant the peer window
back as we consume data (WINDOW_UPDATE) and answer PINGs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("k3py.agent.spdy")

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
PROTOCOL = "SPDY/3.1+portforward.k8s.io"

_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date etag "
    "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
    "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
    "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
    "method get status 200_OK version HTTP/1.1 url public set-cookie keep-alive origin"
).split()
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header-compression dictionary: length-prefixed words, then a run of text.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.replace("_", " ").encode() for w in _DICT_WORDS) \
    + _DICT_TAIL.encode()
assert len(DICTIONARY) == 1423, len(DICTIONARY)


class ProtocolError(Exception):
    pass


def encode_headers(compressor: zlib._Compress, headers: dict[str, str]) -> bytes:  # type: ignore[name-defined]
    raw = struct.pack(">I", len(headers))
    for k, v in headers.items():
        kb, vb = k.lower().encode(), v.encode()
        raw += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def decode_headers(decompressor: zlib._Decompress, block: bytes) -> dict[str, str]:  # type: ignore[name-defined]
    raw = decompressor.decompress(block)
    if decompressor.unconsumed_tail:
        raise ProtocolError("header block too large")
    if not raw and block:
        raw = b""
    (n,) = struct.unpack_from(">I", raw, 0)
    pos, out = 4, {}
    for _ in range(n):
        (kl,) = struct.unpack_from(">I", raw, pos)
        k = raw[pos + 4:pos + 4 + kl].decode()
        pos += 4 + kl
        (vl,) = struct.unpack_from(">I", raw, pos)
        v = raw[pos + 4:pos + 4 + vl].decode()
        pos += 4 + vl
        out[k.lower()] = v
    return out


def new_compressor() -> zlib._Compress:  # type: ignore[name-defined]
    return zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)


def new_decompressor() -> zlib._Decompress:  # type: ignore[name-defined]
    return zlib.decompressobj(15, zdict=DICTIONARY)


def control_frame(ftype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


@dataclass
class Frame:
    control: bool
    ftype: int  # control type, or 0 for data
    flags: int
    stream_id: int
    payload: bytes


class FrameReader:
    """Reassembles frames from arbitrary slices of the byte stream."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out: list[Frame] = []
        while len(self.buf) >= 8:
            first, second = struct.unpack_from(">II", self.buf, 0)
            length = second & 0xFFFFFF
            if len(self.buf) < 8 + length:
                break
            payload = bytes(self.buf[8:8 + length])
            flags = second >> 24
            del self.buf[:8 + length]
            if first & 0x80000000:
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                ftype = first & 0xFFFF
                sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
                out.append(Frame(True, ftype, flags, sid, payload))
            else:
                out.append(Frame(False, 0, flags, first & 0x7FFFFFFF, payload))
        return out


Dialer = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class _Pair:
    port: int
    error_stream: int = 0
    data_stream: int = 0
    writer: asyncio.StreamWriter | None = None
    pump: asyncio.Task[None] | None = None
    pending: list[bytes] = field(default_factory=list)
    closed: bool = False


class PortForwardSession:
    """One SPDY session serving port-forward streams; ``send`` writes bytes to the peer."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], dial: Dialer) -> None:
        self.send = send
        self.dial = dial
        self.reader = FrameReader()
        self.zout = new_compressor()
        self.zin = new_decompressor()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}
        self._lock = asyncio.Lock()

    async def _write(self, frame: bytes) -> None:
        async with self._lock:
            await self.send(frame)

    async def feed(self, data: bytes) -> None:
        for f in self.reader.feed(data):
            await self._handle(f)

    async def close(self) -> None:
        for p in list(self.pairs.values()):
            await self._close_pair(p)

    async def _handle(self, f: Frame) -> None:
        if not f.control:
            pair = self.by_stream.get(f.stream_id)
            if pair is not None and f.stream_id == pair.data_stream:
                if f.payload:
                    if pair.writer is None:
                        pair.pending.append(f.payload)
                    else:
                        pair.writer.write(f.payload)
                        await pair.writer.drain()
                    await self._write(control_frame(WINDOW_UPDATE, 0, struct.pack(">II", f.stream_id, len(f.payload))))
                if f.flags & FLAG_FIN and pair.writer is not None and pair.writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        pair.writer.write_eof()
            return
        if f.ftype == SYN_STREAM:
            sid = f.stream_id
            headers = decode_headers(self.zin, f.payload[10:])
            await self._write(control_frame(SYN_REPLY, 0, struct.pack(">I", sid) + encode_headers(self.zout, {})))
            await self._syn(sid, headers)
        elif f.ftype == PING:
            await self._write(control_frame(PING, 0, f.payload[:4]))
        elif f.ftype == RST_STREAM:
            pair = self.by_stream.get(f.stream_id)
            if pair is not None:
                await self._close_pair(pair)
        elif f.ftype == GOAWAY:
            await self.close()
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do for us

    async def _syn(self, sid: int, headers: dict[str, str]) -> None:
        stype = headers.get("streamtype", "")
        request = headers.get("requestid", "") or headers.get("port", "")
        try:
            port = int(headers.get("port", "0"))
        except ValueError:
            port = 0
        pair = self.pairs.setdefault(request, _Pair(port=port))
        self.by_stream[sid] = pair
        if stype == "error":
            pair.error_stream = sid
        elif stype == "data":
            pair.data_stream = sid
            try:
                reader, writer = await self.dial(port)
            except OSError as e:
                await self._error(pair, f"error forwarding port {port} to pod: {e}")
                return
            pair.writer = writer
            for chunk in pair.pending:
                writer.write(chunk)
            pair.pending.clear()
            pair.pump = asyncio.create_task(self._pump(pair, reader))
        else:
            await self._write(control_frame(RST_STREAM, 0, struct.pack(">II", sid, RST_PROTOCOL_ERROR)))

    async def _error(self, pair: _Pair, message: str) -> None:
        if pair.error_stream:
            await self._write(data_frame(pair.error_stream, FLAG_FIN, message.encode()))
        if pair.data_stream:
            await self._write(data_frame(pair.data_stream, FLAG_FIN, b""))

    async def _pump(self, pair: _Pair, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                chunk = await reader.read(32 * 1024)
                if not chunk:
                    break
                await self._write(data_frame(pair.data_stream, 0, chunk))
            await self._write(data_frame(pair.data_stream, FLAG_FIN, b""))
            if pair.error_stream:
                await self._write(data_frame(pair.error_stream, FLAG_FIN, b""))
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def _close_pair(self, pair: _Pair) -> None:
        if pair.closed:
            return
        pair.closed = True
        if pair.pump is not None:
            pair.pump.cancel()
        if pair.writer is not None:
            pair.writer.close()
