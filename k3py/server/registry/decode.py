"""Request bodies: parsing JSON/YAML safely, and the checks upstream's strict decoder makes.

Upstream decodes built-in kinds into Go structs.  That decoder (sigs.k8s.io/json in
strict mode) reports unknown fields (``unknown field "spec.foo"``) and duplicate
fields (``duplicate field "metadata.name"``) in document order, with paths made of
JSON names joined by ``.`` and array indexes as ``[i]``; it refuses values of the
wrong JSON type with Go's ``json: cannot unmarshal string into Go struct field
ContainerPort.spec.template.spec.containers.ports.containerPort of type int32`` (the
struct is the innermost one, the field path has no indexes).  We make the same checks
by walking the decoded value against the kind's schema (:mod:`schema`).

Parsing is defensive: orjson first (fast, depth-limited, UTF-8 checked), the standard
library only on the error path to word the message like Go.  YAML is first scanned as
an event stream (iterative, so deep nesting cannot exhaust the Python stack) to count
documents, bound nesting and bound alias expansion (billion laughs), then loaded and
copied into plain JSON values (string keys, no shared nodes, timestamps left as
strings).  Every walker here is iterative.

Messages a client sees:

* invalid syntax: ``couldn't get version/kind; json parse error: unexpected end of JSON
  input`` (prefixed with ``the object provided is unrecognized (must be of type Pod):``
  and a summary of the body when the caller names the kind), YAML: ``error converting
  YAML to JSON: yaml: line 3: ...``;
* strict errors: ``Pod in version "v1" cannot be handled as a Pod: strict decoding
  error: unknown field "spec.foo", duplicate field "metadata.name"`` (:func:`strict_error`);
* Warn mode: one ``Warning: 299 - "unknown field \\"spec.foo\\""`` header per problem
  (:func:`warning_headers`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import math
import re
from typing import Any

import orjson
import yaml

from k3py.server import errors
from k3py.server.registry import schema as schemas

Schema = dict[str, Any]

MAX_DEPTH = 200
"""Deepest nesting of objects/arrays accepted in a body (real CRDs stay far below)."""
MAX_YAML_NODES = 5_000_000
"""Largest number of YAML nodes after alias expansion."""

_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(QUANTITY_REGEX)
_QUANTITY_SUFFIXES = frozenset(
    ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
)
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


# ---- media types ---------------------------------------------------------------------


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def body_format(content_type: str) -> str:
    """``json`` or ``yaml`` for a Content-Type; 415 for anything else."""
    mt = media_type(content_type)
    if mt in ("application/json", "text/json") or mt.endswith("+json"):
        return "json"
    if mt in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml") or mt.endswith(
        "+yaml"
    ):
        return "yaml"
    raise errors.unsupported_media_type(content_type)


# ---- decoding --------------------------------------------------------------------------


class _BodyError(Exception):
    """A parse failure, worded like upstream (without the kind prefix)."""


def decode_body(body: bytes, content_type: str, *, kind: str = "") -> Any:
    """The JSON value of a request body, or a 400 worded like upstream's decoder."""
    fmt = body_format(content_type)
    try:
        if fmt == "json":
            value = _decode_json(body)
        else:
            value = _decode_yaml(body)
    except _BodyError as e:
        raise _syntax_error(str(e), body=body, kind=kind) from None
    if fmt == "json" and body.count(b"{") + body.count(b"[") <= MAX_DEPTH:
        return value  # each level of nesting opens a bracket: this one cannot be too deep
    if _too_deep(value, MAX_DEPTH):
        raise _syntax_error(_depth_message(fmt), body=body, kind=kind)
    return value


def _depth_message(fmt: str) -> str:
    if fmt == "json":
        return f"couldn't get version/kind; json parse error: exceeded max depth of {MAX_DEPTH}"
    return f"error converting YAML to JSON: yaml: exceeded max depth of {MAX_DEPTH}"


def _syntax_error(message: str, *, body: bytes, kind: str) -> errors.APIError:
    if kind:
        message = f"the object provided is unrecognized (must be of type {kind}): {message} ({summarize(body)})"
    return errors.bad_request(message)


def summarize(data: bytes, max_length: int = 30) -> str:
    """Upstream's short rendering of a body for error messages."""
    if not data:
        return "<empty>"
    if data[:1] == b"{":
        text = data[:max_length].decode("utf-8", "replace")
        return text + " ..." if len(data) > max_length else text
    hexed = data[:max_length].hex()
    return hexed + " ..." if len(data) > max_length else hexed


def _decode_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        detail = str(e)
    if "depth" in detail or "ecursion" in detail:
        raise _BodyError(_depth_message("json"))
    if body.startswith(b"\xef\xbb\xbf"):
        raise _BodyError(
            "couldn't get version/kind; json parse error: invalid character 'ï' looking for beginning of value"
        )
    if "UTF-8" in detail:
        raise _BodyError("couldn't get version/kind; json parse error: invalid UTF-8 in JSON input")
    return _decode_json_slow(body)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _parse_float(text: str) -> float:
    f = float(text)
    if math.isinf(f):
        raise OverflowError(text)
    return f


def _decode_json_slow(body: bytes) -> Any:
    """Inputs orjson refuses: word Go's error, or accept what Go accepts."""
    prefix = "couldn't get version/kind; json parse error: "
    text = body.decode("utf-8")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except json.JSONDecodeError as e:
        raise _BodyError(prefix + go_json_error(e, text)) from None
    except OverflowError as e:
        raise _BodyError(
            f"{prefix}json: cannot unmarshal number {e} into Go value of type float64"
        ) from None
    except ValueError as e:  # NaN / Infinity literals
        raise _BodyError(
            prefix + f"invalid character {_go_char(str(e)[0])} looking for beginning of value"
        ) from None
    except RecursionError:
        raise _BodyError(_depth_message("json")) from None
    return _replace_surrogates(value)


def _go_char(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    return "'" + json.dumps(ch)[1:-1] + "'"


def go_json_error(e: json.JSONDecodeError, doc: str) -> str:
    """Go's encoding/json syntax error for the failure Python's decoder reports."""
    pos, msg = e.pos, e.msg
    if pos >= len(doc.rstrip()) or msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"
    ch = doc[pos]
    if msg.startswith("Expecting value"):
        return f"invalid character {_go_char(ch)} looking for beginning of value"
    if msg.startswith("Expecting property name"):
        return f"invalid character {_go_char(ch)} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {_go_char(ch)} after object key"
    if msg.startswith("Expecting ','"):
        where = (
            "after array element" if _enclosing(doc, pos) == "[" else "after object key:value pair"
        )
        return f"invalid character {_go_char(ch)} {where}"
    if msg.startswith("Extra data"):
        return f"invalid character {_go_char(ch)} after top-level value"
    if msg.startswith("Invalid control character"):
        return f"invalid character {_go_char(ch)} in string literal"
    if msg.startswith("Invalid \\uXXXX"):
        return f"invalid character {_go_char(ch)} in \\u hexadecimal character escape"
    if msg.startswith("Invalid \\escape"):
        bad = doc[pos + 1] if ch == "\\" and pos + 1 < len(doc) else ch
        return f"invalid character {_go_char(bad)} in string escape code"
    return f"invalid character {_go_char(ch)} looking for beginning of value"


def _enclosing(doc: str, pos: int) -> str:
    """The innermost unclosed bracket before ``pos`` (error path only)."""
    stack: list[str] = []
    in_str = esc = False
    for ch in doc[:pos]:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_surrogates(value: Any) -> Any:
    """Go replaces lone surrogate escapes with U+FFFD; orjson cannot encode them."""

    def fix(s: str) -> str:
        return _SURROGATE.sub("\ufffd", s)

    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        v = parent[key]
        if isinstance(v, str):
            parent[key] = fix(v)
        elif isinstance(v, list):
            stack.extend((v, i) for i in range(len(v)))
        elif isinstance(v, dict):
            for k in list(v):
                if isinstance(k, str) and _SURROGATE.search(k):
                    v[fix(k)] = v.pop(k)
            stack.extend((v, k) for k in v)
    return root[0]


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth + 1 > limit:
                return True
            stack.extend((c, depth + 1) for c in v.values() if isinstance(c, (dict, list)))
        elif isinstance(v, list):
            if depth + 1 > limit:
                return True
            stack.extend((c, depth + 1) for c in v if isinstance(c, (dict, list)))
    return False


# ---- YAML ------------------------------------------------------------------------------

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that leaves timestamps as strings (as YAML-to-JSON conversion does)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    line = f"line {mark.line + 1}: " if mark is not None else ""
    return f"error converting YAML to JSON: yaml: {line}{problem}"


def _decode_yaml(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _BodyError(
            "error converting YAML to JSON: yaml: invalid UTF-8 in YAML input"
        ) from None
    head = text.lstrip()[:1]
    if head in ("{", "["):
        # JSON is YAML; kubectl's apply-patch bodies are JSON.  Fast path.
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        _scan_yaml(text)
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as e:
        raise _BodyError(_yaml_problem(e)) from None
    except RecursionError:
        raise _BodyError(_depth_message("yaml")) from None
    return _jsonify(docs[0]) if docs else None


def _scan_yaml(text: str) -> None:
    """Count documents, bound nesting and alias expansion, without building anything."""
    depth = 0
    non_empty_docs = 0
    doc_root_seen = False
    sizes: list[list[Any]] = []  # per open collection: [anchor, expanded node count]
    anchors: dict[str, int] = {}
    expanded = 0

    def count(n: int, *, nested: bool = True) -> None:
        nonlocal expanded
        if sizes and nested:
            sizes[-1][1] += n
        expanded += n
        if expanded > MAX_YAML_NODES:
            raise _BodyError(
                "error converting YAML to JSON: yaml: document contains excessive aliasing"
            )

    for ev in yaml.parse(text, Loader=_Loader):
        if isinstance(ev, yaml.DocumentStartEvent):
            doc_root_seen = False
            continue
        if not doc_root_seen and isinstance(ev, yaml.NodeEvent):
            doc_root_seen = True
            if not _empty_root(ev):
                non_empty_docs += 1
                if non_empty_docs > 1:
                    raise _BodyError(
                        "error converting YAML to JSON: yaml: a request body must hold a single document"
                    )
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _BodyError(_depth_message("yaml"))
            count(1, nested=False)
            sizes.append([ev.anchor, 1])
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1
            anchor, size = sizes.pop()
            if anchor:
                anchors[anchor] = size
            if sizes:
                sizes[-1][1] += size
        elif isinstance(ev, yaml.ScalarEvent):
            if ev.anchor:
                anchors[ev.anchor] = 1
            count(1)
        elif isinstance(ev, yaml.AliasEvent):
            if any(open_[0] == ev.anchor for open_ in sizes):
                # `a: &a [*a]` would load as a cycle (go-yaml refuses it the same way).
                raise _BodyError(
                    f"error converting YAML to JSON: yaml: anchor '{ev.anchor}' value contains itself"
                )
            count(anchors.get(ev.anchor or "", 1))


def _empty_root(ev: Any) -> bool:
    return (
        isinstance(ev, yaml.ScalarEvent)
        and ev.value == ""
        and ev.tag is None
        and bool(ev.implicit and ev.implicit[0])
    )


def _yaml_key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    if isinstance(k, float):
        return _go_float(k)
    return str(k)


def _go_float(f: float) -> str:
    if f.is_integer() and abs(f) < 1e21:
        return str(int(f))
    return repr(f)


def _scalar(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise _BodyError(f"error converting YAML to JSON: json: unsupported value: {v}")
    if isinstance(v, (_dt.datetime, _dt.date)):
        return v.isoformat()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode("ascii")
    return v


def _jsonify(value: Any) -> Any:
    """A fresh JSON value for a loaded YAML value (no shared nodes, string keys)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        v, parent, key = stack.pop()
        if isinstance(v, dict):
            out: dict[str, Any] = {}
            parent[key] = out
            for k, sub in v.items():
                sk = _yaml_key(k)
                out[sk] = None
                stack.append((sub, out, sk))
        elif isinstance(v, (list, tuple)):
            arr: list[Any] = [None] * len(v)
            parent[key] = arr
            stack.extend((sub, arr, i) for i, sub in enumerate(v))
        elif isinstance(v, (set, frozenset)):
            sdict: dict[str, Any] = {}
            parent[key] = sdict
            for k in v:
                sdict[_yaml_key(k)] = None
        else:
            parent[key] = _scalar(v)
    return root[0]


# ---- duplicate fields --------------------------------------------------------------------


class _Pairs(dict):  # type: ignore[type-arg]
    """An object that remembers its keys in order, duplicates included."""

    order: list[tuple[str, bool]]  # (key, is a repeat)


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs()
    out.order = []
    for k, v in pairs:
        out.order.append((k, k in out))
        out[k] = v
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_DUP = object()


def find_duplicate_fields(body: bytes, content_type: str) -> list[str]:
    """Paths of keys given twice in one object (``metadata.name``), in document order.

    Only worth calling when fieldValidation is Strict or Warn; call after
    :func:`decode_body` succeeded (invalid bodies give an empty list).
    """
    fmt = body_format(content_type)
    text = body.decode("utf-8", "replace")
    if fmt == "json" or text.lstrip()[:1] in ("{", "["):
        if _no_repeated_keys(body, text):
            return []
        try:
            value = json.loads(text, object_pairs_hook=_pairs_hook)
        except (ValueError, RecursionError):
            value = None
        if value is not None or fmt == "json":
            return _in_order(value, _json_children)
    return _yaml_dups(text)


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?')


def _key_tokens(data: bytes) -> int | None:
    """Keys written in a JSON text without backslashes, or None if it has any.

    Without escapes every ``"`` delimits a string, so every other piece between quotes
    is structure, and a colon in the structure separates a key from its value."""
    if b"\\" in data:
        return None
    return b"".join(data.split(b'"')[0::2]).count(b":")


def _no_repeated_keys(body: bytes, text: str) -> bool:
    """Fast path: as many key tokens in the text as keys in the parsed objects."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    written = _key_tokens(body)
    if written is not None:
        # orjson keeps one key of a repeated pair; its re-encoding has no escapes either.
        try:
            kept = _key_tokens(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):
            kept = None
        if kept is not None:
            return written == kept
    parsed = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            parsed += len(v)
            stack.extend(c for c in v.values() if isinstance(c, (dict, list)))
        elif isinstance(v, list):
            stack.extend(c for c in v if isinstance(c, (dict, list)))
    tokens = sum(1 for colon in _JSON_STRING.findall(text) if colon)
    return tokens == parsed


def _json_children(node: Any, path: str) -> list[tuple[Any, str]]:
    if isinstance(node, _Pairs):
        return [(_DUP if dup else node[k], _join(path, k)) for k, dup in node.order]
    if isinstance(node, list):
        return [(sub, f"{path}[{i}]") for i, sub in enumerate(node)]
    return []


def _yaml_children(node: Any, path: str) -> list[tuple[Any, str]]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        out: list[tuple[Any, str]] = []
        for knode, vnode in node.value:
            key = str(getattr(knode, "value", ""))
            out.append((_DUP if key in seen else vnode, _join(path, key)))
            seen.add(key)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [(sub, f"{path}[{i}]") for i, sub in enumerate(node.value)]
    return []


def _in_order(root: Any, children: Any) -> list[str]:
    """Paths of the duplicate markers, in document order (iterative pre-order walk)."""
    out: list[str] = []
    stack = [iter([(root, "")])]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        node, path = item
        if node is _DUP:
            if path not in out:
                out.append(path)
            continue
        kids = children(node, path)
        if kids:
            stack.append(iter(kids))
    return out


def _yaml_dups(text: str) -> list[str]:
    try:
        _scan_yaml(text)
        nodes = [n for n in yaml.compose_all(text, Loader=_Loader) if n is not None]
    except (yaml.YAMLError, _BodyError, RecursionError):
        return []
    out: list[str] = []
    for n in nodes:
        out += _in_order(n, _yaml_children)
    return out


# ---- unknown fields ----------------------------------------------------------------------


def _ref_of(prop: Schema) -> str | None:
    name = schemas.ref_name(prop)
    if name is None and isinstance(prop.get("allOf"), list) and len(prop["allOf"]) == 1:
        name = schemas.ref_name(prop["allOf"][0])
    return name


def unknown_fields(obj: Any, schema: Schema, *, path: str = "", drop: bool = False) -> list[str]:
    """Paths of fields the built-in kind's schema does not know (``spec.containers[0].imagePulPolicy``).

    Paths have no leading dot, like upstream's strict errors.  Maps and
    ``x-kubernetes-preserve-unknown-fields`` accept any key; schemaless objects
    (RawExtension, FieldsV1, apiextensions JSON) accept anything.  With ``drop`` the
    unknown fields are removed from ``obj`` (what decoding into a Go struct does).
    """
    out: list[str] = []
    stack: list[tuple[Any, Schema, str]] = [(obj, schema, path)]
    while stack:
        val, sch, p = stack.pop()
        sch = schemas.resolve(sch)
        if sch.get("x-kubernetes-preserve-unknown-fields"):
            continue
        children: list[tuple[Any, Schema, str]] = []
        if isinstance(val, dict):
            props = sch.get("properties")
            addl = sch.get("additionalProperties")
            if isinstance(props, dict):
                gone = []
                for k, v in val.items():
                    sub = props.get(k)
                    if sub is None:
                        out.append(_join(p, k))
                        gone.append(k)
                    else:
                        children.append((v, sub, _join(p, k)))
                if drop:
                    for k in gone:
                        del val[k]
            elif isinstance(addl, dict):
                children = [(v, addl, _join(p, k)) for k, v in val.items()]
        elif isinstance(val, list):
            it = sch.get("items")
            if isinstance(it, dict):
                children = [(v, it, f"{p}[{i}]") for i, v in enumerate(val)]
        stack.extend(reversed(children))
    return out


def drop_unknown(obj: Any, schema: Schema) -> list[str]:
    """Remove unknown fields from a built-in object; their paths."""
    return unknown_fields(obj, schema, drop=True)


_NO_ZERO = object()


def _zero_value(sch: Schema) -> Any:
    """Go's zero value for an array item or map value of this schema (structs: ``{}``)."""
    sch = schemas.resolve(sch)
    if isinstance(sch.get("properties"), dict):
        return {}
    if sch.get("format") or sch.get("x-kubernetes-int-or-string"):
        return _NO_ZERO  # quantities, int-or-string, dates: left as they are
    types = schemas.types_of(sch)
    zeros = {"string": "", "integer": 0, "number": 0, "boolean": False}
    return zeros[next(iter(types))] if len(types) == 1 and next(iter(types)) in zeros else _NO_ZERO


def zero_null_items(obj: Any, schema: Schema) -> None:
    """Replace ``null`` array items and map values by their zero value, as decoding into
    Go structs does (``ports: [null]`` is one empty ServicePort), so that later stages
    never meet a ``None`` where an object or a string belongs."""
    stack: list[tuple[Any, Schema]] = [(obj, schema)]
    while stack:
        val, sch = stack.pop()
        sch = schemas.resolve(sch)
        if sch.get("x-kubernetes-preserve-unknown-fields"):
            continue
        if isinstance(val, dict):
            props = sch.get("properties")
            addl = sch.get("additionalProperties")
            if isinstance(props, dict):
                stack.extend((v, props[k]) for k, v in val.items() if k in props and v is not None)
                continue
            if not isinstance(addl, dict):
                continue
            slots: list[Any] = list(val)
            sub: Schema = addl
        elif isinstance(val, list) and isinstance(sch.get("items"), dict):
            slots, sub = list(range(len(val))), sch["items"]
        else:
            continue
        for slot in slots:
            if val[slot] is None:
                zero = _zero_value(sub)
                if zero is not _NO_ZERO:
                    val[slot] = zero
            if isinstance(val[slot], (dict, list)):
                stack.append((val[slot], sub))


_Shape = tuple[bool, "Schema | None", "Schema | None", "Schema | None"]
_shapes: dict[int, tuple[Schema, _Shape]] = {}


def _shape(sch: Schema) -> _Shape:
    """(preserves unknown fields, properties, additionalProperties, items) of a schema
    node, resolved; cached per node (schemas are long-lived)."""
    hit = _shapes.get(id(sch))
    if hit is not None and hit[0] is sch:
        return hit[1]
    r = schemas.resolve(sch)
    props, addl, items = r.get("properties"), r.get("additionalProperties"), r.get("items")
    shape: _Shape = (
        bool(r.get("x-kubernetes-preserve-unknown-fields")),
        props if isinstance(props, dict) else None,
        addl if isinstance(addl, dict) else None,
        items if isinstance(items, dict) else None,
    )
    if len(_shapes) > 65536:
        _shapes.clear()
    _shapes[id(sch)] = (sch, shape)
    return shape


def drop_unknown_zero_nulls(obj: Any, schema: Schema) -> list[str]:
    """:func:`drop_unknown` then :func:`zero_null_items`, in one walk; the dropped paths."""
    out: list[str] = []
    # (value, schema, parent node path, key or index): paths are rendered only when needed.
    stack: list[tuple[Any, Schema, Any]] = [(obj, schema, None)]
    while stack:
        val, sch, where = stack.pop()
        preserve, props, addl, items = _shape(sch)
        if preserve:
            continue
        children: list[tuple[Any, Schema, Any]] = []
        if isinstance(val, dict):
            if props is not None:
                gone = None
                for k, v in val.items():
                    sub = props.get(k)
                    if sub is None:
                        out.append(_join(_render(where), k))
                        gone = gone or []
                        gone.append(k)
                    elif isinstance(v, (dict, list)):
                        children.append((v, sub, (where, k)))
                for k in gone or ():
                    del val[k]
            elif addl is not None:
                for k, v in val.items():
                    if v is None:
                        v = _zero_value(addl)
                        if v is not _NO_ZERO:
                            val[k] = v
                    if isinstance(v, (dict, list)):
                        children.append((v, addl, (where, k)))
        elif isinstance(val, list) and items is not None:
            for i, v in enumerate(val):
                if v is None:
                    v = _zero_value(items)
                    if v is not _NO_ZERO:
                        val[i] = v
                if isinstance(v, (dict, list)):
                    children.append((v, items, (where, i)))
        stack.extend(reversed(children))
    return out


def _render(where: Any) -> str:
    """``spec.containers[0]`` from the (parent, key or index) chain."""
    parts: list[Any] = []
    while where is not None:
        where, step = where
        parts.append(step)
    path = ""
    for step in reversed(parts):
        path = f"{path}[{step}]" if isinstance(step, int) else _join(path, step)
    return path


# ---- type errors -------------------------------------------------------------------------


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, list):
        return "array"
    return "object"


def go_type(prop: Schema) -> str:
    """The Go type upstream declares for a property schema."""
    ref = _ref_of(prop)
    if ref is not None:
        parts = ref.split(".")
        return f"{parts[-2]}.{parts[-1]}" if len(parts) >= 2 else ref
    t = _single_type(prop)
    fmt = prop.get("format")
    if t == "string":
        return "[]uint8" if fmt == "byte" else "string"
    if t == "integer":
        return fmt if fmt in ("int32", "int64") else "int"
    if t == "number":
        return "float32" if fmt == "float" else "float64"
    if t == "boolean":
        return "bool"
    if t == "array":
        it = prop.get("items")
        return "[]" + (go_type(it) if isinstance(it, dict) else "interface {}")
    if t == "object":
        ap = prop.get("additionalProperties")
        return "map[string]" + (go_type(ap) if isinstance(ap, dict) else "interface {}")
    return "interface {}"


def _single_type(sch: Schema) -> str | None:
    t = sch.get("type")
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if len(rest) == 1 else None
    return None


def _struct_name(definition: str | None, fallback: str) -> str:
    return definition.rsplit(".", 1)[-1] if definition else fallback


def _unmarshal(v: Any, *, struct: str, fld: str, typ: str, number: bool = False) -> str:
    what = _json_kind(v)
    if number and what == "number":
        what = f"number {_go_number(v)}"
    if struct:
        return f"json: cannot unmarshal {what} into Go struct field {struct}.{fld} of type {typ}"
    return f"json: cannot unmarshal {what} into Go value of type {typ}"


def _go_number(v: Any) -> str:
    if isinstance(v, float):
        return _go_float(v) if not v.is_integer() else repr(v).replace("+", "")
    return str(v)


def _check_string_format(v: str, fmt: str | None) -> str | None:
    if fmt == "date-time" and not _RFC3339_RE.match(v):
        return f'parsing time "{v}" as "2006-01-02T15:04:05Z07:00": cannot parse "{v}" as "2006"'
    if fmt == "byte":
        return _base64_error(v)
    return None


def _base64_error(v: str) -> str | None:
    try:
        base64.b64decode(v, validate=True)
        return None
    except (binascii.Error, ValueError):
        pass
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(v):
        if ch == "=":
            return f"illegal base64 data at input byte {i if len(v) % 4 else max(i - 1, 0)}"
        if ch not in alphabet and ch not in "\r\n":
            return f"illegal base64 data at input byte {i}"
    return f"illegal base64 data at input byte {len(v) - len(v) % 4}"


def quantity_error(v: Any) -> str | None:
    """Upstream's parse error for a resource.Quantity value, or None."""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        return f"quantities must match the regular expression '{QUANTITY_REGEX}'"
    if not isinstance(v, str):
        return None
    m = _QUANTITY_RE.match(v.strip())
    if m is None or m.group(1).count(".") > 1 or m.group(1) in (".", "+.", "-."):
        return f"quantities must match the regular expression '{QUANTITY_REGEX}'"
    suffix = m.group(2)
    if suffix in _QUANTITY_SUFFIXES or re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        return None
    return "unable to parse quantity's suffix"


def type_errors(obj: Any, schema: Schema, *, path: str = "") -> list[str]:
    """Values of the wrong JSON type for a built-in kind, worded like Go's decoder.

    Upstream stops at (and reports) the first; callers raise a 400 with ``[0]``.
    """
    out: list[str] = []
    top = _struct_name(_definition_name_of(schema), "")
    stack: list[tuple[Any, Schema, str, str]] = [(obj, schema, top, path)]
    while stack:
        val, sch, struct, fld = stack.pop()
        children = _type_check_object(val, sch, struct=struct, fld=fld, out=out)
        stack.extend(reversed(children))
    return out


def _definition_name_of(schema: Schema) -> str | None:
    for gvk in schema.get("x-kubernetes-group-version-kind") or ():
        name = schemas.definition_for(
            gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")
        )
        if name:
            return name
    return None


def _type_check_object(
    val: Any, sch: Schema, *, struct: str, fld: str, out: list[str]
) -> list[tuple[Any, Schema, str, str]]:
    """Check the properties of one struct value; the nested structs to visit next."""
    sch = schemas.resolve(sch)
    if not isinstance(val, dict):
        return []
    props = sch.get("properties")
    if not isinstance(props, dict):
        return []
    nxt: list[tuple[Any, Schema, str, str]] = []
    for k, v in val.items():
        prop = props.get(k)
        if prop is None or v is None or type(v) is _prop_info(prop)[4]:
            continue
        _check_value(v, prop, struct=struct, fld=_join(fld, k), out=out, nxt=nxt)
    return nxt


# (definition referred to, resolved schema, JSON type, Go type, the Python type whose
# values need no check at all: plain strings and booleans; else None)
_PropInfo = tuple[str | None, Schema, str | None, str, type | None]
_prop_cache: dict[int, tuple[Schema, _PropInfo]] = {}


def _prop_info(prop: Schema) -> _PropInfo:
    """(definition referred to, resolved schema, JSON type, Go type) of a property, cached."""
    hit = _prop_cache.get(id(prop))
    if hit is not None and hit[0] is prop:
        return hit[1]
    target = schemas.resolve(prop)
    ref, t = _ref_of(prop), _single_type(target)
    plain: type | None = None
    if ref not in (_INT_OR_STRING, _QUANTITY):
        if t == "string" and target.get("format") not in ("date-time", "byte"):
            plain = str
        elif t == "boolean":
            plain = bool
    info = (ref, target, t, go_type(prop), plain)
    if len(_prop_cache) > 65536:
        _prop_cache.clear()
    _prop_cache[id(prop)] = (prop, info)
    return info


def _check_value(
    v: Any,
    prop: Schema,
    *,
    struct: str,
    fld: str,
    out: list[str],
    nxt: list[tuple[Any, Schema, str, str]],
) -> None:
    """Check one value against its (unresolved) property schema."""
    ref, target, t, gt, _ = _prop_info(prop)
    if ref == _INT_OR_STRING:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            out.append(_unmarshal(v, struct=struct, fld=fld, typ="int32", number=True))
        return
    if ref == _QUANTITY:
        err = quantity_error(v)
        if err:
            out.append(err)
        return
    if t == "string":
        if not isinstance(v, str):
            out.append(_unmarshal(v, struct=struct, fld=fld, typ="string" if ref else gt))
        else:
            err = _check_string_format(v, target.get("format"))
            if err:
                out.append(err)
    elif t == "integer":
        _check_integer(v, target, struct=struct, fld=fld, out=out)
    elif t == "number":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            out.append(_unmarshal(v, struct=struct, fld=fld, typ=gt))
    elif t == "boolean":
        if not isinstance(v, bool):
            out.append(_unmarshal(v, struct=struct, fld=fld, typ=gt))
    elif t == "array":
        _check_array(v, target, struct=struct, fld=fld, gt=gt, out=out, nxt=nxt)
    elif t == "object":
        _check_obj(v, target, ref=ref, struct=struct, fld=fld, gt=gt, out=out, nxt=nxt)


def _check_integer(v: Any, target: Schema, *, struct: str, fld: str, out: list[str]) -> None:
    fmt = target.get("format")
    typ = fmt if fmt in ("int32", "int64") else "int64"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        out.append(_unmarshal(v, struct=struct, fld=fld, typ=typ))
        return
    lo, hi = _INT_RANGES[typ]
    if isinstance(v, float) or not lo <= v <= hi:
        out.append(_unmarshal(v, struct=struct, fld=fld, typ=typ, number=True))


def _check_array(
    v: Any,
    target: Schema,
    *,
    struct: str,
    fld: str,
    gt: str,
    out: list[str],
    nxt: list[tuple[Any, Schema, str, str]],
) -> None:
    if not isinstance(v, list):
        out.append(_unmarshal(v, struct=struct, fld=fld, typ=gt))
        return
    it = target.get("items")
    if isinstance(it, dict):
        plain = _prop_info(it)[4]
        for elem in v:
            if elem is not None and type(elem) is not plain:
                _check_value(elem, it, struct=struct, fld=fld, out=out, nxt=nxt)


def _check_obj(
    v: Any,
    target: Schema,
    *,
    ref: str | None,
    struct: str,
    fld: str,
    gt: str,
    out: list[str],
    nxt: list[tuple[Any, Schema, str, str]],
) -> None:
    props = target.get("properties")
    ap = target.get("additionalProperties")
    if not isinstance(props, dict) and not isinstance(ap, dict):
        return  # RawExtension, FieldsV1 and friends take any JSON
    if not isinstance(v, dict):
        out.append(_unmarshal(v, struct=struct, fld=fld, typ=gt))
        return
    if isinstance(props, dict):
        nxt.append((v, target, _struct_name(ref, struct), fld))
    elif isinstance(ap, dict):
        plain = _prop_info(ap)[4]
        for elem in v.values():
            if elem is not None and type(elem) is not plain:
                _check_value(elem, ap, struct=struct, fld=fld, out=out, nxt=nxt)


# ---- strict errors and warnings -------------------------------------------------------------


def strict_problems(*, unknown: list[str], duplicate: list[str]) -> list[str]:
    """``unknown field "spec.foo"`` / ``duplicate field "metadata.name"`` messages."""
    return [f'unknown field "{p.lstrip(".")}"' for p in unknown] + [
        f'duplicate field "{p.lstrip(".")}"' for p in duplicate
    ]


def decode_error(*, kind: str, version: str, message: str) -> errors.APIError:
    """400 for a body that does not decode into ``kind`` (strict or type errors)."""
    return errors.bad_request(
        f'{kind} in version "{version}" cannot be handled as a {kind}: {message}'
    )


def strict_error(*, kind: str, version: str, problems: list[str]) -> errors.APIError:
    """400 BadRequest for fieldValidation=Strict, worded as upstream."""
    return decode_error(
        kind=kind, version=version, message="strict decoding error: " + ", ".join(problems)
    )


def warning_headers(problems: list[str]) -> list[str]:
    """Values of the ``Warning`` headers for fieldValidation=Warn (one per problem)."""
    return ['299 - "' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in problems]
