"""The Swagger 2.0 document for ``/openapi/v2``, as JSON and as gnostic protobuf.

kubectl 1.32 asks for OpenAPI v2 only as protobuf (``Accept:
application/com.github.proto-openapi.spec.v2@v1.0+protobuf``) and only where
OpenAPI v3 cannot answer: client-side validation of a ``kind: List`` (its v3
field-validation check treats v1/List as unsupported and validates every item
against the v2 models), and some strategic-merge fallbacks.  Its reader
(``k8s.io/kube-openapi/pkg/util/proto``) reads ``definitions`` only; it maps
kinds to models through the ``x-kubernetes-group-version-kind`` vendor extension
(YAML text, ``group`` present even when empty) and refuses the whole document
when one model is malformed: a schema with several types, an array without a
single item schema, a ``$ref`` with a type or properties, a ``$ref`` to a missing
model, an unknown primitive type.  The conversion below keeps every node inside
those rules.  ``paths`` is left empty: it is used only by the v2 query-parameter
verifier, which kubectl consults after v3 fails, and an empty answer there means
"validate on the client", which is what we want.

Built-in models come from :mod:`schema` (JSON-schema form): nullable type lists
collapse to one type, ``#/$defs/X`` becomes ``#/definitions/X`` (siblings other
than ``description`` dropped), ``oneOf``/``anyOf``/``not`` dropped, IntOrString
becomes ``string``/``int-or-string`` and Quantity ``string`` as upstream publishes
them.  Custom resources publish their CRD's ``openAPIV3Schema`` the way
apiextensions' v2 conversion does: no ``allOf``/``oneOf``/``anyOf``/``not``,
nullable and ``x-kubernetes-preserve-unknown-fields`` nodes lose their
properties and items (and nullable ones their type), arrays without items lose
their type.

The protobuf encoder writes the ``openapi.v2`` messages of gnostic-models
(``openapiv2/OpenAPIv2.proto``) by field number; only what we emit is encoded.
Every built-in definition is encoded once per process (``NamedSchema`` entries
are concatenated into ``Definitions``), so a new CRD costs only its own models.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from k3py.server.registry import schema as schemas
from k3py.server.registry.openapi import (
    KUBE_VERSION,
    custom_definition_name,
)

if TYPE_CHECKING:
    from k3py.server.registry.openapi import ResourceSpec

Schema = dict[str, Any]

# kubectl asks with the "@" spelling, but Go's mime parser (client-go checks the answer's
# Content-Type) rejects "@" in a subtype: answer with the dotted spelling.
PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
PROTOBUF_TYPES = (PROTOBUF_TYPE, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")

_V2_PREFIX = "#/definitions/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_GVK = "x-kubernetes-group-version-kind"
_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean"})
# Keywords Swagger 2.0 lacks (or kubectl's reader rejects): dropped everywhere.
_DROPPED = frozenset(
    {"oneOf", "anyOf", "allOf", "not", "nullable", "patternProperties", "definitions", "$schema",
     "id", "dependencies", "additionalItems", "$defs"}
)  # fmt: skip


# ---- conversion: built-in definitions ---------------------------------------------


def _single_type(t: Any) -> str | None:
    if isinstance(t, str):
        return t if t in _TYPES else None
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if len(rest) == 1 and rest[0] in _TYPES else None
    return None


def _finish(out: Schema) -> Schema:
    """Keep one node inside what kube-openapi's proto reader accepts."""
    if "$ref" in out:
        kept = {"$ref": out["$ref"]}
        if isinstance(out.get("description"), str):
            kept["description"] = out["description"]
        return kept
    if out.get("type") == "array" and not isinstance(out.get("items"), dict):
        out.pop("type")
        out.pop("items", None)
    return out


def convert_builtin(node: Any) -> Schema:
    """One JSON-schema node of :func:`schema.definitions` in Swagger 2.0 form."""
    if not isinstance(node, dict):
        return {}
    out: Schema = {}
    for key, val in node.items():
        if key in _DROPPED:
            continue
        if key == "$ref":
            out["$ref"] = _V2_PREFIX + str(val).rsplit("/", 1)[-1]
        elif key == "type":
            t = _single_type(val)
            if t is not None:
                out["type"] = t
        elif key == "properties" and isinstance(val, dict):
            out[key] = {k: convert_builtin(v) for k, v in val.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = convert_builtin(val) if isinstance(val, dict) else val
        elif key == "enum" and isinstance(val, list):
            out[key] = [v for v in val if v is not None]
        else:
            out[key] = val
    return _finish(out)


def _gvk_obj(g: dict[str, Any]) -> dict[str, str]:
    return {"group": g.get("group", ""), "kind": g.get("kind", ""), "version": g.get("version", "")}


def builtin_definition(name: str) -> Schema:
    """The Swagger 2.0 form of one upstream definition."""
    raw = schemas.definitions()[name]
    desc = {"description": raw["description"]} if isinstance(raw.get("description"), str) else {}
    if name == _INT_OR_STRING:
        return {**desc, "format": "int-or-string", "type": "string"}
    if name == _QUANTITY:
        return {**desc, "type": "string"}
    out = convert_builtin(raw)
    if _GVK in out:
        out[_GVK] = [_gvk_obj(g) for g in out[_GVK]]
        props = out.get("properties") or {}
        for prop in ("apiVersion", "kind"):
            sub = props.get(prop)
            if isinstance(sub, dict):
                # The schema package adds enums to apiVersion/kind; upstream has none.
                props[prop] = {k: v for k, v in sub.items() if k != "enum"}
    return out


@functools.cache
def builtin_definitions() -> dict[str, Schema]:
    return {name: builtin_definition(name) for name in sorted(schemas.definitions())}


@functools.cache
def _builtin_entries() -> dict[str, bytes]:
    """Each built-in definition as an encoded ``NamedSchema`` (cached for the process)."""
    return {name: named_schema(name=name, sch=s) for name, s in builtin_definitions().items()}


# ---- conversion: custom resources ---------------------------------------------------


def convert_crd(node: Any) -> Schema:
    """One node of a CRD's ``openAPIV3Schema`` as apiextensions publishes it in v2."""
    if not isinstance(node, dict):
        return {}
    out: Schema = {}
    for key, val in node.items():
        if key in _DROPPED or key == "$ref":
            continue
        if key == "type":
            if val in _TYPES:
                out["type"] = val
        elif key == "properties" and isinstance(val, dict):
            out[key] = {k: convert_crd(v) for k, v in val.items()}
        elif key in ("items", "additionalProperties"):
            if isinstance(val, dict):
                out[key] = convert_crd(val)
            elif isinstance(val, bool) and key == "additionalProperties":
                out[key] = val
        else:
            out[key] = val
    if node.get("nullable") is True:
        for k in ("type", "items", "properties"):
            out.pop(k, None)
    if node.get("x-kubernetes-preserve-unknown-fields") is True:
        out.pop("items", None)
        out.pop("properties", None)
    props = node.get("properties")
    if isinstance(out.get("required"), list) and isinstance(props, dict):
        nullable = {k for k, v in props.items() if isinstance(v, dict) and v.get("nullable")}
        out["required"] = [r for r in out["required"] if r not in nullable]
        if not out["required"]:
            out.pop("required")
    return _finish(out)


_API_VERSION_DESC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DESC = (
    "Kind is a string value representing the REST resource this object represents. Servers may "
    "infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DESC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def custom_definitions(spec: ResourceSpec) -> dict[str, Schema]:
    """The item and list models of one custom resource version."""
    item_name = custom_definition_name(spec.group, spec.version, spec.kind)
    list_name = custom_definition_name(spec.group, spec.version, spec.list_kind)
    item = convert_crd(spec.schema or {"type": "object"})
    item.setdefault("type", "object")
    if not (spec.schema or {}).get("x-kubernetes-preserve-unknown-fields") or "properties" in item:
        props = dict(item.get("properties") or {})
        props["apiVersion"] = {"description": _API_VERSION_DESC, "type": "string"}
        props["kind"] = {"description": _KIND_DESC, "type": "string"}
        props["metadata"] = {
            "$ref": _V2_PREFIX + _META + "ObjectMeta",
            "description": _METADATA_DESC,
        }
        item["properties"] = dict(sorted(props.items()))
    item[_GVK] = [{"group": spec.group, "kind": spec.kind, "version": spec.version}]
    lst: Schema = {
        "description": f"{spec.kind}List is a list of {spec.kind}",
        "properties": {
            "apiVersion": {"description": _API_VERSION_DESC, "type": "string"},
            "items": {
                "description": f"List of {spec.plural}.",
                "items": {"$ref": _V2_PREFIX + item_name},
                "type": "array",
            },
            "kind": {"description": _KIND_DESC, "type": "string"},
            "metadata": {"$ref": _V2_PREFIX + _META + "ListMeta", "description": _METADATA_DESC},
        },
        "required": ["items"],
        "type": "object",
        _GVK: [{"group": spec.group, "kind": spec.list_kind, "version": spec.version}],
    }
    return {item_name: item, list_name: lst}


def _custom_specs(specs: Iterable[ResourceSpec]) -> list[ResourceSpec]:
    return sorted(
        (s for s in specs if s.schema is not None), key=lambda s: (s.group, s.version, s.kind)
    )


# ---- the document -----------------------------------------------------------------


def _head() -> Schema:
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION}, "paths": {}}


def build_document(specs: Iterable[ResourceSpec]) -> Schema:
    """The whole Swagger 2.0 document (JSON form) for these served resources."""
    defs = dict(builtin_definitions())
    for spec in _custom_specs(specs):
        defs.update(custom_definitions(spec))
    _drop_dangling(defs)
    return {**_head(), "definitions": dict(sorted(defs.items()))}


def _drop_dangling(defs: dict[str, Schema], *, only: Iterable[str] | None = None) -> None:
    """Replace ``$ref`` to missing models (kubectl refuses them) by an untyped schema."""

    def fix(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref[len(_V2_PREFIX) :] not in defs:
            return {k: v for k, v in node.items() if k != "$ref"}
        out = dict(node)
        if isinstance(out.get("properties"), dict):
            out["properties"] = {k: fix(v) for k, v in out["properties"].items()}
        for key in ("items", "additionalProperties"):
            if isinstance(out.get(key), dict):
                out[key] = fix(out[key])
        return out

    for name in list(defs if only is None else only):
        defs[name] = fix(defs[name])


# ---- protobuf encoding (gnostic openapi.v2) ---------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _str_field(num: int, s: str) -> bytes:
    return _len_field(num, s.encode()) if s else b""


def _bool_field(num: int, b: Any) -> bytes:
    return _varint(num << 3) + b"\x01" if b is True else b""


def _int_field(num: int, n: Any) -> bytes:
    if isinstance(n, bool) or not isinstance(n, int | float) or not n:
        return b""
    return _varint(num << 3) + _varint(int(n))


def _double_field(num: int, x: Any) -> bytes:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return b""
    return _varint(num << 3 | 1) + struct.pack("<d", float(x))


def _any(value: Any) -> bytes:
    """An ``Any`` message: the value as YAML text (JSON is valid YAML)."""
    return _str_field(2, orjson.dumps(value).decode() + "\n")


def _named_any(name: str, value: Any) -> bytes:
    return _str_field(1, name) + _len_field(2, _any(value))


# Schema message field numbers.
_S_STRINGS = {"format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_S_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_S_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_S_INTS = {
    "maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15,
    "maxProperties": 17, "minProperties": 18,
}  # fmt: skip


def encode_schema(sch: Schema) -> bytes:
    """A Swagger 2.0 schema (JSON form) as an ``openapi.v2.Schema`` message."""
    parts: list[bytes] = []
    if isinstance(sch.get("$ref"), str):
        parts.append(_str_field(1, sch["$ref"]))
    parts.extend(_scalars(sch))
    if "default" in sch:
        parts.append(_len_field(5, _any(sch["default"])))
    for r in sch.get("required") or ():
        parts.append(_len_field(19, str(r).encode()))
    for e in sch.get("enum") or ():
        parts.append(_len_field(20, _any(e)))
    ap = sch.get("additionalProperties")
    if isinstance(ap, dict):
        parts.append(_len_field(21, _len_field(1, encode_schema(ap))))
    elif isinstance(ap, bool):
        parts.append(_len_field(21, _varint(2 << 3) + (b"\x01" if ap else b"\x00")))
    if isinstance(sch.get("type"), str):
        parts.append(_len_field(22, _str_field(1, sch["type"])))
    if isinstance(sch.get("items"), dict):
        parts.append(_len_field(23, _len_field(1, encode_schema(sch["items"]))))
    if isinstance(sch.get("properties"), dict):
        parts.append(_len_field(25, _properties(sch["properties"])))
    if "example" in sch:
        parts.append(_len_field(30, _any(sch["example"])))
    for key, val in sch.items():
        if key.startswith("x-"):
            parts.append(_len_field(31, _named_any(key, val)))
    return b"".join(parts)


def _scalars(sch: Schema) -> list[bytes]:
    parts = []
    for key, num in _S_STRINGS.items():
        if isinstance(sch.get(key), str):
            parts.append(_str_field(num, sch[key]))
    for key, num in _S_DOUBLES.items():
        if key in sch:
            parts.append(_double_field(num, sch[key]))
    for key, num in _S_BOOLS.items():
        parts.append(_bool_field(num, sch.get(key)))
    for key, num in _S_INTS.items():
        parts.append(_int_field(num, sch.get(key)))
    return parts


def _properties(props: dict[str, Schema]) -> bytes:
    return b"".join(_len_field(1, named_schema(name=k, sch=v)) for k, v in props.items())


def named_schema(*, name: str, sch: Schema) -> bytes:
    """A ``NamedSchema`` message (without its enclosing field key)."""
    return _str_field(1, name) + _len_field(2, encode_schema(sch))


def _head_pb() -> bytes:
    info = _str_field(1, "Kubernetes") + _str_field(2, KUBE_VERSION)
    return _str_field(1, "2.0") + _len_field(2, info) + _len_field(8, b"")


def encode_protobuf(specs: Iterable[ResourceSpec]) -> bytes:
    """The ``openapi.v2.Document`` for these served resources."""
    entries = dict(_builtin_entries())
    custom: dict[str, Schema] = {}
    for spec in _custom_specs(specs):
        custom.update(custom_definitions(spec))
    if custom:
        known = {**builtin_definitions(), **custom}
        _drop_dangling(known, only=list(custom))
        for name in custom:
            entries[name] = named_schema(name=name, sch=known[name])
    body = b"".join(_len_field(1, entries[name]) for name in sorted(entries))
    return _head_pb() + _len_field(9, body)


# ---- cache --------------------------------------------------------------------------


def _fingerprint(specs: Iterable[ResourceSpec]) -> tuple[Any, ...]:
    return tuple(
        (
            s.group,
            s.version,
            s.kind,
            s.list_kind,
            s.plural,
            orjson.dumps(s.schema, option=orjson.OPT_SORT_KEYS),
        )
        for s in _custom_specs(specs)
    )


@dataclass
class V2Document:
    """The encoded forms of one document; each is built on first use."""

    specs: list[ResourceSpec]
    _pb: bytes | None = field(default=None, repr=False)
    _json: bytes | None = field(default=None, repr=False)

    @property
    def protobuf(self) -> bytes:
        if self._pb is None:
            self._pb = encode_protobuf(self.specs)
        return self._pb

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = orjson.dumps(build_document(self.specs))
        return self._json


_CACHE: dict[tuple[Any, ...], V2Document] = {}


def document(specs: Iterable[ResourceSpec]) -> V2Document:
    """The (cached) document for the custom resources among ``specs``."""
    custom = _custom_specs(specs)
    key = _fingerprint(custom)
    doc = _CACHE.get(key)
    if doc is None:
        if len(_CACHE) >= 16:
            _CACHE.clear()
        doc = _CACHE[key] = V2Document(specs=custom)
    return doc
