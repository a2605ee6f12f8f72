"""Request bodies in Kubernetes' protobuf encoding, decoded into the JSON the API speaks.

kubectl's typed clients (``create namespace``, ``create secret``, ``auth can-i``,
``drain``, ``create token``...) send ``application/vnd.kubernetes.protobuf``: the
magic ``k8s\\x00``, then a ``runtime.Unknown`` envelope (typeMeta, raw, contentEncoding,
contentType) whose ``raw`` is the gogo-protobuf (proto2) encoding of the typed object.

We hold no generated code.  ``protobuf_fields.json.gz`` is a table made from upstream's
``generated.proto`` files (field numbers and wire types) joined with the Go struct tags
of the same types (JSON names, ``omitempty``, pointer or value): for every message
reachable from a served kind, each field's number, JSON name, kind (scalar type,
message, map) and flags (repeated, omit when zero, inline).  Decoding walks the bytes
against that table and builds the dict Go's JSON encoder would have written for the
decoded struct:

* gogo writes every non-pointer scalar, zero or not; a zero is dropped only where
  the JSON tag says ``omitempty`` (``replicas: 0`` is a pointer, so it stays);
* absent fields are omitted; embedded ``json:",inline"`` structs merge into their parent;
  keys come out in Go struct order (``kind`` and ``apiVersion`` first);
* types with their own JSON form (Time, MicroTime, Duration, IntOrString, Quantity,
  RawExtension/FieldsV1/JSON, the JSONSchemaPropsOr* unions, ``[]string`` map values)
  are converted after their few fields are read; ``bytes`` become base64 strings;
* repeated scalars are accepted packed or not; a non-repeated message given twice
  is merged (proto semantics), a scalar given twice keeps the last value;
* unknown field numbers are skipped; anything malformed is a 400, and nesting is
  bounded (a message level costs two Python frames at most) so hostile bodies cannot
  exhaust the stack.

The wire primitives (``_varint``, ``_length``, ``_scalar``...) take ``(buf, pos, end)``
positionally: they run for every field of every body.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import gzip
import struct
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from k3py.server import errors
from k3py.server.registry import decode as body_decode

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAX_DEPTH = body_decode.MAX_DEPTH
"""Deepest message nesting accepted (the JSON path's object/array limit)."""

Obj = dict[str, Any]
GVK = tuple[str, str, str]

_GO_ZERO_UNIX = -62135596800  # time.Time{}.Unix(): Go writes the zero time this way
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)

# Field kinds.  Scalars first; their wire type is fixed by the kind.
_STRING, _BYTES, _BOOL, _INT32, _INT64, _UINT32, _UINT64, _DOUBLE, _FLOAT = range(9)
_MESSAGE, _MAP = 9, 10
_SCALARS = {
    "string": _STRING,
    "bytes": _BYTES,
    "bool": _BOOL,
    "int32": _INT32,
    "int64": _INT64,
    "uint32": _UINT32,
    "uint64": _UINT64,
    "double": _DOUBLE,
    "float": _FLOAT,
}
_VARINT_KINDS = frozenset({_BOOL, _INT32, _INT64, _UINT32, _UINT64})
_WIRE = {k: 0 for k in _VARINT_KINDS} | {_DOUBLE: 1, _FLOAT: 5, _STRING: 2, _BYTES: 2}
_WIRE |= {_MESSAGE: 2, _MAP: 2}
_ZERO: dict[int, Any] = {_STRING: "", _BYTES: b"", _BOOL: False, _DOUBLE: 0.0, _FLOAT: 0.0}

_FLAG_REPEATED, _FLAG_OMIT_ZERO, _FLAG_INLINE = 1, 2, 4


class ProtobufError(Exception):
    """A body that is not valid protobuf for the message being read."""


@dataclass(frozen=True, slots=True)
class _Field:
    number: int
    name: str
    kind: int
    message: int = -1  # message index (kind _MESSAGE, or a _MAP whose values are messages)
    key: int = _STRING  # map key kind
    value: int = _STRING  # map value kind
    repeated: bool = False
    omit_zero: bool = False
    inline: bool = False


@dataclass(frozen=True, slots=True)
class _Message:
    name: str
    fields: dict[int, _Field]
    order: tuple[int, ...]  # field numbers in Go struct order
    special: str = ""  # how to turn the decoded fields into JSON ("" = an object)
    short: str = ""  # "Namespace", for messages


# ---- the table -----------------------------------------------------------------------


def _special_fields(special: str, *, arg: Any) -> list[_Field]:
    """The few fields of the types with their own JSON form."""
    if special in ("time", "microtime"):
        return [_Field(1, "seconds", _INT64), _Field(2, "nanos", _INT32)]
    if special == "duration":
        return [_Field(1, "duration", _INT64)]
    if special == "intorstring":
        return [
            _Field(1, "type", _INT64),
            _Field(2, "intVal", _INT32),
            _Field(3, "strVal", _STRING),
        ]
    if special == "quantity":
        return [_Field(1, "string", _STRING)]
    if special == "json":
        return [_Field(1, "raw", _BYTES)]
    if special == "list":
        kind, msg = _kind_of(arg)
        return [_Field(1, "items", kind, message=msg, repeated=True)]
    if special == "orarray":
        return [
            _Field(1, "schema", _MESSAGE, message=arg),
            _Field(2, "schemas", _MESSAGE, message=arg, repeated=True),
        ]
    if special == "orbool":
        return [_Field(1, "allows", _BOOL), _Field(2, "schema", _MESSAGE, message=arg)]
    if special == "orstrings":
        return [
            _Field(1, "schema", _MESSAGE, message=arg),
            _Field(2, "property", _STRING, repeated=True),
        ]
    raise ValueError(f"unknown special message kind {special!r}")


def _kind_of(code: Any) -> tuple[int, int]:
    """(kind, message index) of a scalar type name or a message index."""
    if isinstance(code, int):
        return _MESSAGE, code
    return _SCALARS[code], -1


def _field(row: list[Any]) -> _Field:
    number, name, code, flags = row
    rep, omit, inline = (bool(flags & f) for f in (_FLAG_REPEATED, _FLAG_OMIT_ZERO, _FLAG_INLINE))
    if isinstance(code, list):  # ["map", key type, value kind]
        vkind, vmsg = _kind_of(code[2])
        return _Field(number, name, _MAP, message=vmsg, key=_SCALARS[code[1]], value=vkind)
    kind, msg = _kind_of(code)
    return _Field(number, name, kind, message=msg, repeated=rep, omit_zero=omit, inline=inline)


def _message(name: str, *, spec: Any) -> _Message:
    short = name.rsplit(".", 1)[-1]
    if isinstance(spec, str):
        fields, special = _special_fields(spec, arg=None), spec
    elif spec and isinstance(spec[0], str):
        fields, special = _special_fields(spec[0], arg=spec[1]), spec[0]
    else:
        fields, special = [_field(row) for row in spec], ""
    return _Message(
        name=name,
        fields={f.number: f for f in fields},
        order=tuple(f.number for f in fields),
        special=special,
        short=short,
    )


@dataclass(frozen=True)
class _Table:
    messages: tuple[_Message, ...]
    by_name: dict[str, int]
    kinds: dict[str, int]  # "apps/v1/Deployment" -> message index


@functools.cache
def _table() -> _Table:
    raw = resources.files("k3py.server.registry").joinpath("protobuf_fields.json.gz").read_bytes()
    data = orjson.loads(gzip.decompress(raw))
    messages = tuple(_message(name, spec=spec) for name, spec in data["messages"])
    return _Table(
        messages=messages,
        by_name={m.name: i for i, m in enumerate(messages)},
        kinds=data["kinds"],
    )


def message_for(group: str, version: str, kind: str) -> str | None:
    """The protobuf message (``k8s.io.api.apps.v1.Deployment``) of a kind, if we know it."""
    t = _table()
    gv = f"{group}/{version}" if group else version
    idx = t.kinds.get(f"{gv}/{kind}")
    if idx is None and kind == "DeleteOptions":  # registered in every group version
        idx = t.kinds.get("meta.k8s.io/v1/DeleteOptions")
    return t.messages[idx].name if idx is not None else None


# ---- wire reading ----------------------------------------------------------------------


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end and buf[pos] < 0x80:  # one byte: most tags and lengths
        return buf[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtobufError("unexpected EOF")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("integer overflow")


def _length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """(start, stop) of a length-delimited value starting at ``pos``."""
    n, pos = _varint(buf, pos, end)
    if n > end - pos:
        raise ProtobufError("unexpected EOF")
    return pos, pos + n


def _skip(buf: bytes, pos: int, end: int, wire: int) -> int:
    """Position after an unknown field's value (groups included)."""
    groups = 0
    while True:
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            _, pos = _length(buf, pos, end)
        elif wire == 5:
            pos += 4
        elif wire == 3:
            groups += 1
        elif wire == 4 and groups:
            groups -= 1
        else:
            raise ProtobufError(f"illegal wireType {wire}")
        if pos > end:
            raise ProtobufError("unexpected EOF")
        if not groups:
            return pos
        tag, pos = _varint(buf, pos, end)
        wire = tag & 7


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _convert_varint(kind: int, v: int) -> Any:
    if kind == _INT32:
        return _signed(v, 32)
    if kind == _INT64:
        return _signed(v, 64)
    if kind == _BOOL:
        return v != 0
    if kind == _UINT32:
        return v & 0xFFFFFFFF
    return v & 0xFFFFFFFFFFFFFFFF


def _float(kind: int, buf: bytes, pos: int) -> float:
    (v,) = struct.unpack_from("<d" if kind == _DOUBLE else "<f", buf, pos)
    if v != v or v in (float("inf"), float("-inf")):
        raise ProtobufError("unsupported value: NaN or Inf cannot be written as JSON")
    return float(v)


def _scalar(kind: int, buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    """One scalar value at ``pos`` (wire type already checked)."""
    if kind == _STRING:
        s, e = _length(buf, pos, end)
        return str(buf[s:e], "utf-8", "replace"), e
    if kind == _BYTES:
        s, e = _length(buf, pos, end)
        return buf[s:e], e
    if kind in _VARINT_KINDS:
        v, pos = _varint(buf, pos, end)
        return _convert_varint(kind, v), pos
    size = 8 if kind == _DOUBLE else 4
    if pos + size > end:
        raise ProtobufError("unexpected EOF")
    return _float(kind, buf, pos), pos + size


def _packed(kind: int, buf: bytes, start: int, stop: int) -> list[Any]:
    out = []
    pos = start
    while pos < stop:
        v, pos = _scalar(kind, buf, pos, stop)
        out.append(v)
    return out


# ---- messages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reader:
    table: _Table
    buf: bytes


def _decode(r: _Reader, *, start: int, stop: int, index: int, depth: int) -> Any:
    """The JSON value of message ``index`` held in ``buf[start:stop]``."""
    if depth > MAX_DEPTH:
        raise ProtobufError(f"exceeded max depth of {MAX_DEPTH}")
    msg = r.table.messages[index]
    values: dict[int, Any] = {}
    chunks: dict[int, list[tuple[int, int]]] = {}  # non-repeated messages, merged at the end
    buf, pos = r.buf, start
    while pos < stop:
        tag, pos = _varint(buf, pos, stop)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ProtobufError(f"illegal tag 0 (wire type {wire}) in {msg.name}")
        f = msg.fields.get(number)
        if f is None:
            pos = _skip(buf, pos, stop, wire)
            continue
        want = _WIRE[f.kind]
        if wire == want:
            pos = _read_one(r, f, values, chunks, pos=pos, stop=stop, depth=depth)
        elif wire == 2 and f.repeated and want != 2:
            s, pos = _length(buf, pos, stop)
            values.setdefault(number, []).extend(_packed(f.kind, buf, s, pos))
        else:
            raise ProtobufError(f"wrong wireType = {wire} for field {f.name} in {msg.name}")
    for number, spans in chunks.items():
        values[number] = _merged(r, spans, f=msg.fields[number], depth=depth)
    if msg.special:
        return _special(msg, values, depth=depth)
    return _to_json(msg, values=values)


def _read_one(
    r: _Reader,
    f: _Field,
    values: dict[int, Any],
    chunks: dict[int, list[tuple[int, int]]],
    *,
    pos: int,
    stop: int,
    depth: int,
) -> int:
    """Read one occurrence of a known field with the expected wire type."""
    if f.kind == _MESSAGE:
        s, e = _length(r.buf, pos, stop)
        if f.repeated:  # an array level, then an object level
            values.setdefault(f.number, []).append(
                _decode(r, start=s, stop=e, index=f.message, depth=depth + 2)
            )
        else:
            chunks.setdefault(f.number, []).append((s, e))
        return e
    if f.kind == _MAP:
        s, e = _length(r.buf, pos, stop)
        key, value = _map_entry(r, f, start=s, stop=e, depth=depth)
        values.setdefault(f.number, {})[key] = value
        return e
    v, pos = _scalar(f.kind, r.buf, pos, stop)
    if f.repeated:
        values.setdefault(f.number, []).append(v)
    else:
        values[f.number] = v
    return pos


def _merged(r: _Reader, spans: list[tuple[int, int]], *, f: _Field, depth: int) -> Any:
    if len(spans) == 1:
        return _decode(r, start=spans[0][0], stop=spans[0][1], index=f.message, depth=depth + 1)
    joined = b"".join(r.buf[s:e] for s, e in spans)
    r = _Reader(r.table, joined)
    return _decode(r, start=0, stop=len(joined), index=f.message, depth=depth + 1)


def _map_entry(r: _Reader, f: _Field, *, start: int, stop: int, depth: int) -> tuple[Any, Any]:
    key: Any = _ZERO.get(f.key, 0)
    value_span: tuple[int, int] | None = None
    value: Any = _ZERO.get(f.value, 0)
    buf, pos = r.buf, start
    while pos < stop:
        tag, pos = _varint(buf, pos, stop)
        number, wire = tag >> 3, tag & 7
        kind = f.key if number == 1 else f.value if number == 2 else -1
        if kind < 0:
            pos = _skip(buf, pos, stop, wire)
        elif wire != _WIRE[kind]:
            raise ProtobufError(f"wrong wireType = {wire} in a map entry of {f.name}")
        elif number == 2 and kind == _MESSAGE:
            value_span = _length(buf, pos, stop)
            pos = value_span[1]
        elif number == 1:
            key, pos = _scalar(kind, buf, pos, stop)
        else:
            value, pos = _scalar(kind, buf, pos, stop)
    if f.value == _MESSAGE:
        s, e = value_span if value_span is not None else (stop, stop)
        # the map's level, then the value's
        value = _decode(r, start=s, stop=e, index=f.message, depth=depth + 2)
    elif f.value == _BYTES:
        value = base64.b64encode(value).decode("ascii")
    return key, value


def _to_json(msg: _Message, *, values: dict[int, Any]) -> Obj:
    """Go's JSON of the decoded struct: Go field order, omitempty, inline structs."""
    out: Obj = {}
    for number in msg.order:
        if number not in values:
            continue
        f = msg.fields[number]
        v = values[number]
        if f.inline:
            if isinstance(v, dict):
                out.update(v)
            continue
        if f.kind == _BYTES:
            v = [_b64(x) for x in v] if f.repeated else _b64(v)
        if f.omit_zero and not v:
            continue
        out[f.name] = v
    return out


def _b64(v: bytes) -> str:
    return base64.b64encode(v).decode("ascii")


# ---- types with their own JSON form ------------------------------------------------------


def _special(msg: _Message, values: dict[int, Any], *, depth: int) -> Any:
    kind = msg.special
    if kind == "time":
        return _rfc3339(values.get(1), 0, micro=False)
    if kind == "microtime":
        return _rfc3339(values.get(1), values.get(2, 0), micro=True)
    if kind == "duration":
        return go_duration(values.get(1, 0))
    if kind == "quantity":
        return values.get(1, "0")
    if kind == "intorstring":
        return _int_or_string(values)
    if kind == "json":
        return _embedded_json(values.get(1), budget=MAX_DEPTH - depth)
    if kind == "list":
        return values.get(1, [])
    return _schema_union(kind, values=values)


def _rfc3339(seconds: int | None, nanos: int, *, micro: bool) -> str | None:
    if seconds is None or seconds == _GO_ZERO_UNIX and (nanos == 0 or not micro):
        return None  # the zero time: Go writes null
    try:
        t = _EPOCH + _dt.timedelta(seconds=seconds, microseconds=nanos // 1000 if micro else 0)
    except OverflowError:
        raise ProtobufError(f"time out of range: {seconds} seconds") from None
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(values: dict[int, Any]) -> int | str:
    t = values.get(1, 0)
    if t == 0:
        return int(values.get(2, 0))
    if t == 1:
        return str(values.get(3, ""))
    raise ProtobufError(f"impossible IntOrString.Type {t}")


def _embedded_json(raw: bytes | None, *, budget: int) -> Any:
    """RawExtension, FieldsV1 and apiextensions JSON carry JSON text."""
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ProtobufError(f"embedded JSON does not parse: {e}") from None
    if _too_deep(value, limit=budget):
        raise ProtobufError(f"exceeded max depth of {MAX_DEPTH}")
    return value


def _schema_union(kind: str, *, values: dict[int, Any]) -> Any:
    """The JSONSchemaPropsOr{Array,Bool,StringArray} forms, as their MarshalJSON writes them."""
    if kind == "orarray":
        return values[2] if values.get(2) else values.get(1)
    if kind == "orbool":
        if values.get(2) is not None:
            return values[2]
        return bool(values.get(1, False))
    if values.get(2):  # orstrings
        return values[2]
    return values.get(1)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_fraction(u, 6)}ms"
    secs = _fraction(u % 60_000_000_000, 9) + "s"
    minutes = u // 60_000_000_000
    if not minutes:
        return sign + secs
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h{minutes}m{secs}" if hours else f"{sign}{minutes}m{secs}"


def _fraction(v: int, digits: int) -> str:
    whole, frac = divmod(v, 10**digits)
    tail = str(frac).rjust(digits, "0").rstrip("0")
    return f"{whole}.{tail}" if tail else str(whole)


# ---- the envelope ------------------------------------------------------------------------


def _envelope(body: bytes) -> tuple[str, str, bytes, str]:
    """(apiVersion, kind, raw, contentEncoding) of a ``runtime.Unknown`` after the magic."""
    if not body:
        raise ProtobufError("empty data")
    if not body.startswith(MAGIC):
        raise ProtobufError(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    if len(body) == len(MAGIC):
        raise ProtobufError("empty body")
    api_version = kind = encoding = ""
    raw = b""
    pos, end = len(MAGIC), len(body)
    while pos < end:
        tag, pos = _varint(body, pos, end)
        number, wire = tag >> 3, tag & 7
        if number in (1, 2, 3, 4) and wire != 2:
            raise ProtobufError(f"wrong wireType = {wire} for field {number} of runtime.Unknown")
        if number == 1:
            s, pos = _length(body, pos, end)
            api_version, kind = _type_meta(body, s, pos)
        elif number == 2:
            s, pos = _length(body, pos, end)
            raw = body[s:pos]
        elif number == 3:
            s, pos = _length(body, pos, end)
            encoding = body[s:pos].decode("utf-8", "replace")
        else:
            pos = _skip(body, pos, end, wire)
    return api_version, kind, raw, encoding


def _type_meta(buf: bytes, start: int, stop: int) -> tuple[str, str]:
    got = {1: "", 2: ""}
    pos = start
    while pos < stop:
        tag, pos = _varint(buf, pos, stop)
        number, wire = tag >> 3, tag & 7
        if number in got and wire == 2:
            s, pos = _length(buf, pos, stop)
            got[number] = buf[s:pos].decode("utf-8", "replace")
        elif number in got:
            raise ProtobufError(f"wrong wireType = {wire} for field {number} of runtime.TypeMeta")
        else:
            pos = _skip(buf, pos, stop, wire)
    return got[1], got[2]


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _fill_gvk(api_version: str, kind: str, *, expected: GVK | None) -> tuple[str, str, str]:
    """upstream's copyKindDefaults: missing parts of the body's GVK come from the caller's."""
    group, version = _split_api_version(api_version)
    if expected is not None:
        eg, ev, ek = expected
        kind = kind or ek
        if not version:
            group, version = eg, ev
    return group, version, kind


def _summary(body: bytes) -> str:
    return body_decode.summarize(body)


def _unrecognized(message: str, *, body: bytes, expected: GVK | None) -> errors.APIError:
    if expected is not None:
        message = f"the object provided is unrecognized (must be of type {expected[2]}): {message}"
    return errors.bad_request(f"{message} ({_summary(body)})")


def decode_object(body: bytes, *, expected_gvk: GVK | None = None) -> Obj:
    """The JSON-API object of a protobuf request body (magic, Unknown envelope, typed raw).

    ``expected_gvk`` (group, version, kind) fills what the envelope leaves out; the
    decoded object's ``kind``/``apiVersion`` say what the body claimed, so the caller's
    usual type checks apply.  Anything malformed or unknown is a 400.
    """
    try:
        api_version, kind, raw, encoding = _envelope(body)
    except ProtobufError as e:
        raise _unrecognized(str(e), body=body, expected=expected_gvk) from None
    if encoding:
        raise _unrecognized(
            f"unsupported content encoding {encoding!r}", body=body, expected=expected_gvk
        )
    group, version, kind = _fill_gvk(api_version, kind, expected=expected_gvk)
    if not kind:
        raise errors.bad_request(f"Object 'Kind' is missing in '{_summary(body)}'")
    if not version:
        raise errors.bad_request(f"Object 'apiVersion' is missing in '{_summary(body)}'")
    name = message_for(group, version, kind)
    gv = f"{group}/{version}" if group else version
    if name is None:
        raise errors.bad_request(f'no kind "{kind}" is registered for version "{gv}" in scheme')
    try:
        obj = decode_message(raw, message=name)
    except errors.APIError as e:
        raise _unrecognized(e.message, body=body, expected=expected_gvk) from None
    out: Obj = {"kind": kind, "apiVersion": gv}
    out.update(obj)
    return out


def decode_message(raw: bytes, *, message: str) -> Any:
    """The JSON value of one protobuf message (``k8s.io.api.core.v1.Pod``) without envelope."""
    t = _table()
    index = t.by_name.get(message)
    if index is None:
        raise errors.bad_request(f"no protobuf message {message} is known")
    try:
        value = _decode(_Reader(t, raw), start=0, stop=len(raw), index=index, depth=0)
    except ProtobufError as e:
        raise errors.bad_request(f"proto: {e}") from None
    except RecursionError:
        raise errors.bad_request(f"proto: exceeded max depth of {MAX_DEPTH}") from None
    return value


def _too_deep(value: Any, *, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth + 1 > limit:
                return True
            children = v.values() if isinstance(v, dict) else v
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False
