"""OpenAPI v3 documents for ``/openapi/v3``: what kubectl validates and explains with.

kubectl 1.32 reads ``GET /openapi/v3`` (an index of group-version documents, each
named by a ``serverRelativeURL`` carrying a content hash) and then one OpenAPI 3.0
document per group-version.  Two of its consumers decide the shape built here:

* ``resource.QueryParamVerifierV3`` walks ``paths`` and, for the first PATCH
  operation whose ``x-kubernetes-group-version-kind`` matches the kind it is about to
  send, looks for a ``fieldValidation`` parameter *inline* in that operation.  Path
  iteration order is random in Go, so *every* PATCH operation carrying a GVK (main
  resource, ``/status``, ``/scale``...) must carry the parameter, or kubectl falls
  back to client-side validation.  When found, kubectl sends ``fieldValidation=Strict``.
* ``kubectl explain`` (v2 templates) finds the GVK on an operation of
  ``/<prefix>/<version>[/namespaces/{namespace}]/<plural>[/{name}]`` and then the
  component schema whose ``x-kubernetes-group-version-kind`` list contains exactly
  that ``{"group","kind","version"}`` object; it follows ``$ref`` and single-element
  ``allOf`` wrappers.

Schemas of built-in kinds come from :mod:`schema` (JSON-schema form) and are
converted to the OpenAPI 3 form upstream publishes: nullable type lists collapse to
one type, ``#/$defs/X`` becomes ``#/components/schemas/X``, a ``$ref`` with sibling
keys (a description) is wrapped as ``allOf: [{$ref}]``, IntOrString becomes
``format: int-or-string`` with ``oneOf: [integer, string]`` and Quantity
``oneOf: [string, number]``.  Custom resources publish their CRD's
``openAPIV3Schema`` under the reversed-group name (``com.example.stable.v1.CronTab``)
with ``apiVersion``/``kind``/``metadata`` added, as the apiextensions builder does.

OpenAPI v2 (which kubectl reads, as protobuf, only to validate ``kind: List``
files) is built separately in :mod:`k3py.server.registry.openapi_v2`.

Documents are pure functions of (group-version, resources); :class:`DocumentCache`
keeps the encoded bytes and their hash per fingerprint of the inputs.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from k3py.server.registry import schema as schemas

if TYPE_CHECKING:
    from k3py.server.registry.catalog import ResourceInfo

Schema = dict[str, Any]

KUBE_VERSION = "v1.32.0"
_V3_PREFIX = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Subresources: (HTTP methods with their actions, (group, version, kind) or None for the parent's).
_SUBRESOURCES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, str, str] | None]] = {
    "status": ((("get", "get"), ("put", "put"), ("patch", "patch")), None),
    "scale": ((("get", "get"), ("put", "put"), ("patch", "patch")), ("autoscaling", "v1", "Scale")),
    "ephemeralcontainers": ((("get", "get"), ("put", "put"), ("patch", "patch")), None),
    "resize": ((("get", "get"), ("put", "put"), ("patch", "patch")), None),
    "approval": ((("get", "get"), ("put", "put"), ("patch", "patch")), None),
    "finalize": ((("put", "put"),), None),
    "binding": ((("post", "post"),), ("", "v1", "Binding")),
    "eviction": ((("post", "post"),), ("policy", "v1", "Eviction")),
    "token": ((("post", "post"),), ("authentication.k8s.io", "v1", "TokenRequest")),
    "log": ((("get", "get"),), None),
    "exec": ((("get", "connect"), ("post", "connect")), ("", "v1", "PodExecOptions")),
    "attach": ((("get", "connect"), ("post", "connect")), ("", "v1", "PodAttachOptions")),
    "portforward": ((("get", "connect"), ("post", "connect")), ("", "v1", "PodPortForwardOptions")),
    "proxy": (
        (
            ("get", "connect"),
            ("put", "connect"),
            ("post", "connect"),
            ("patch", "connect"),
            ("delete", "connect"),
        ),
        ("", "v1", "{Kind}ProxyOptions"),
    ),
}

_COMMON_DEFS = (
    _META + "DeleteOptions",
    _META + "Status",
    _META + "Patch",
    _META + "WatchEvent",
    _META + "APIResourceList",
)


@dataclass(frozen=True)
class ResourceSpec:
    """What one served resource contributes to its group-version document."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    # The CRD version's openAPIV3Schema (custom resources only).
    schema: Schema | None = field(default=None, compare=False, hash=False)
    # Upstream definition name (built-ins); looked up by GVK when None.
    definition_name: str | None = None
    list_kind: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subresources", tuple(self.subresources))
        object.__setattr__(self, "verbs", tuple(self.verbs))
        if not self.list_kind:
            object.__setattr__(self, "list_kind", self.kind + "List")

    @property
    def custom(self) -> bool:
        return self.schema is not None or (
            self.definition_name is None
            and schemas.definition_for(self.group, self.version, self.kind) is None
        )


def resource_spec(info: ResourceInfo) -> ResourceSpec:
    """The spec of a catalogue entry (built-in or custom)."""
    crd_schema: Schema | None = None
    if info.crd is not None:
        sch = (info.crd.get("schema") or {}).get("openAPIV3Schema")
        crd_schema = (
            sch
            if isinstance(sch, dict)
            else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
    return ResourceSpec(
        group=info.group,
        version=info.version,
        kind=info.kind,
        plural=info.plural,
        namespaced=info.namespaced,
        subresources=tuple(info.subresources),
        verbs=tuple(info.verbs),
        schema=crd_schema,
    )


# ---- index -------------------------------------------------------------------


def path_key(gv: str) -> str:
    """``v1`` -> ``api/v1``, ``apps/v1`` -> ``apis/apps/v1``; path keys pass through."""
    if gv in ("api", "apis", "version") or gv.startswith(("api/", "apis/")):
        return gv
    return f"apis/{gv}" if "/" in gv else f"api/{gv}"


def split_gv(gv: str) -> tuple[str, str]:
    """(group, version) of a group-version given as ``apps/v1`` or a path key."""
    key = path_key(gv)
    parts = key.split("/")
    if parts[0] == "api":
        return "", parts[1] if len(parts) > 1 else ""
    return (parts[1] if len(parts) > 1 else ""), (parts[2] if len(parts) > 2 else "")


def document_hash(body: bytes) -> str:
    """Upstream's hash: upper-case hex SHA-512 of the encoded document."""
    return hashlib.sha512(body).hexdigest().upper()


def group_versions_index(gvs: Iterable[str], *, hash_of: Callable[[str], str]) -> dict[str, Any]:
    """The ``/openapi/v3`` document: one entry per group-version path key."""
    paths: dict[str, Any] = {}
    for gv in sorted({path_key(g) for g in gvs}):
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={hash_of(gv)}"}
    return {"paths": paths}


# ---- schema conversion (JSON-schema form -> OpenAPI 3) ----------------------------


def _single_type(t: Any) -> str | None:
    if isinstance(t, str):
        return None if t == "null" else t
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if len(rest) == 1 else None
    return None


_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "additionalItems")


def convert_schema(node: Any) -> Any:
    """One JSON-schema node (and everything below it) in OpenAPI 3 form."""
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    ref = node.get("$ref")
    for key, val in node.items():
        if key == "$ref":
            continue
        if key == "type":
            t = _single_type(val)
            if t is not None:
                out["type"] = t
        elif key in _SUBSCHEMA_MAPS and isinstance(val, dict):
            out[key] = {k: convert_schema(v) for k, v in val.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(val, list):
            out[key] = [convert_schema(v) for v in val]
        elif key in _SUBSCHEMA_ONE:
            out[key] = convert_schema(val)
        else:
            out[key] = copy.deepcopy(val)
    if isinstance(ref, str):
        target = {"$ref": _v3_ref(ref)}
        if not out:
            return target
        out = {"allOf": [target], **out}
    return out


def _v3_ref(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    return _V3_PREFIX + name


_INT_OR_STRING_V3: Schema = {
    "description": (
        "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
        "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you "
        "to have, for example, a JSON field that can accept a name or number."
    ),
    "format": "int-or-string",
    "oneOf": [{"type": "integer"}, {"type": "string"}],
}
_QUANTITY_V3: Schema = {
    "description": (
        "Quantity is a fixed-point representation of a number. It provides convenient "
        "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
        "accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= "
        '<signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the "" case in '
        "<decimalSI>.)\n\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | "
        "<digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | "
        '.<digits> <sign>            ::= "+" | "-" <signedNumber>    ::= <number> | '
        "<sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> "
        '<binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n<decimalSI>       ::= m | "" | k | '
        'M | G | T | P | E\n\n<decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber> '
        "```\n\nNo matter which of the three exponent forms is used, no quantity may represent "
        "a number greater than 2^63-1 in magnitude, nor may it have more than 3 decimal places."
    ),
    "oneOf": [{"type": "string"}, {"type": "number"}],
}


def convert_definition(name: str) -> Schema:
    """The OpenAPI 3 form of one upstream definition."""
    if name == _INT_OR_STRING:
        return copy.deepcopy(_INT_OR_STRING_V3)
    if name == _QUANTITY:
        return copy.deepcopy(_QUANTITY_V3)
    out: Schema = convert_schema(schemas.definitions()[name])
    if "x-kubernetes-group-version-kind" in out:
        out["x-kubernetes-group-version-kind"] = [
            _gvk_obj(g) for g in out["x-kubernetes-group-version-kind"]
        ]
        # The schema package adds enums to apiVersion/kind; upstream documents have none.
        for prop in ("apiVersion", "kind"):
            sub = (out.get("properties") or {}).get(prop)
            if isinstance(sub, dict):
                sub.pop("enum", None)
    return out


def _gvk_obj(g: dict[str, Any]) -> dict[str, str]:
    return {"group": g.get("group", ""), "kind": g.get("kind", ""), "version": g.get("version", "")}


def _refs_in(node: Any, out: set[str]) -> None:
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            ref = cur.get("$ref")
            if isinstance(ref, str) and ref.startswith(_V3_PREFIX):
                out.add(ref[len(_V3_PREFIX) :])
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)


def _closure(roots: Iterable[str], components: dict[str, Schema]) -> None:
    """Add every definition reachable from ``roots`` (and from ``components``) to it."""
    pending = [r for r in roots if r not in components]
    for sch in list(components.values()):
        found: set[str] = set()
        _refs_in(sch, found)
        pending.extend(found)
    defs = schemas.definitions()
    while pending:
        name = pending.pop()
        if name in components or name not in defs:
            continue
        converted = convert_definition(name)
        components[name] = converted
        found = set()
        _refs_in(converted, found)
        pending.extend(f for f in found if f not in components)


# ---- custom resource schemas ---------------------------------------------------------


def custom_definition_name(group: str, version: str, kind: str) -> str:
    """``stable.example.com/v1.CronTab`` -> ``com.example.stable.v1.CronTab``."""
    rev = ".".join(reversed(group.split("."))) if group else ""
    return f"{rev}.{version}.{kind}" if rev else f"{version}.{kind}"


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


def _custom_schema(spec: ResourceSpec) -> Schema:
    raw = spec.schema or {}
    out: Schema = convert_schema(copy.deepcopy(raw)) if raw else {"type": "object"}
    out.setdefault("type", "object")
    props = dict(out.get("properties") or {})
    props["apiVersion"] = {"description": _API_VERSION_DESC, "type": "string"}
    props["kind"] = {"description": _KIND_DESC, "type": "string"}
    props["metadata"] = {
        "allOf": [{"$ref": _V3_PREFIX + _META + "ObjectMeta"}],
        "description": _METADATA_DESC,
    }
    out["properties"] = dict(sorted(props.items()))
    out["x-kubernetes-group-version-kind"] = [
        {"group": spec.group, "kind": spec.kind, "version": spec.version}
    ]
    return out


def _custom_list_schema(spec: ResourceSpec, item_name: str) -> Schema:
    return {
        "description": f"{spec.kind}List is a list of {spec.kind}",
        "properties": {
            "apiVersion": {"description": _API_VERSION_DESC, "type": "string"},
            "items": {
                "description": f"List of {spec.plural}. More info: "
                "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                "items": {"$ref": _V3_PREFIX + item_name},
                "type": "array",
            },
            "kind": {"description": _KIND_DESC, "type": "string"},
            "metadata": {
                "allOf": [{"$ref": _V3_PREFIX + _META + "ListMeta"}],
                "description": _METADATA_DESC,
            },
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [
            {"group": spec.group, "kind": spec.list_kind, "version": spec.version}
        ],
    }


# ---- paths -------------------------------------------------------------------------

_P = dict[str, Any]


def _param(name: str, where: str, typ: str, desc: str, *, required: bool = False) -> _P:
    p: _P = {"description": desc, "in": where, "name": name}
    if required:
        p["required"] = True
    p["schema"] = {"type": typ, "uniqueItems": True}
    return p


_Q = {
    "allowWatchBookmarks": (
        "boolean",
        'allowWatchBookmarks requests watch events with type "BOOKMARK". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server\'s discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.',
    ),
    "continue": (
        "string",
        "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize.",
    ),
    "dryRun": (
        "string",
        "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
    ),
    "fieldManager": (
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
    ),
    "fieldSelector": (
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    "fieldValidation": (
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
    ),
    "force": (
        "boolean",
        'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.',
    ),
    "gracePeriodSeconds": (
        "integer",
        "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
    ),
    "labelSelector": (
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    "limit": (
        "integer",
        "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
    ),
    "orphanDependents": (
        "boolean",
        'Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the "orphan" finalizer will be added to/removed from the object\'s finalizers list. Either this field or PropagationPolicy may be set, but not both.',
    ),
    "propagationPolicy": (
        "string",
        "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
    ),
    "resourceVersion": (
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
    ),
    "resourceVersionMatch": (
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
    ),
    "sendInitialEvents": (
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.",
    ),
    "timeoutSeconds": (
        "integer",
        "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
    ),
    "watch": (
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
    ),
}

_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_OP_PARAMS: dict[str, tuple[str, ...]] = {
    "list": _LIST_PARAMS,
    "post": ("dryRun", "fieldManager", "fieldValidation"),
    "put": ("dryRun", "fieldManager", "fieldValidation"),
    "patch": ("dryRun", "fieldManager", "fieldValidation", "force"),
    "delete": ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"),
    "deletecollection": (
        "continue",
        "dryRun",
        "fieldSelector",
        "gracePeriodSeconds",
        "labelSelector",
        "limit",
        "orphanDependents",
        "propagationPolicy",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeoutSeconds",
    ),
}
_PRETTY = _param(
    "pretty",
    "query",
    "string",
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
)
_NAMESPACE = _param(
    "namespace",
    "path",
    "string",
    "object name and auth scope, such as for teams and projects",
    required=True,
)
_PATCH_TYPES_BUILTIN = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_PATCH_TYPES_CUSTOM = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)


def _camel_group(group: str) -> str:
    if not group:
        return "Core"
    g = group[: -len(".k8s.io")] if group.endswith(".k8s.io") else group
    return "".join(p[:1].upper() + p[1:] for p in g.replace("-", ".").split(".") if p)


def _op_id(
    verb: str,
    spec: ResourceSpec,
    *,
    namespaced: bool,
    sub: str = "",
    suffix: str = "",
    infix: str = "",
) -> str:
    """Upstream's operation ids: ``listCoreV1NamespacedPod``, ``deleteAppsV1CollectionNamespacedDeployment``."""
    ns = "Namespaced" if namespaced else ""
    ver = spec.version[:1].upper() + spec.version[1:]
    subc = sub[:1].upper() + sub[1:]
    return f"{verb}{_camel_group(spec.group)}{ver}{infix}{ns}{spec.kind}{subc}{suffix}"


def _content(ref: str, *, watch: bool = False) -> dict[str, Any]:
    sch = {"schema": {"$ref": _V3_PREFIX + ref}}
    types = ["application/json", "application/yaml"]
    if watch:
        types.insert(1, "application/json;stream=watch")
    return {t: copy.deepcopy(sch) for t in types}


def _operation(
    *,
    desc: str,
    op_id: str,
    action: str,
    gvk: dict[str, str] | None,
    params: tuple[str, ...],
    responses: dict[str, tuple[str, str | None]],
    body: tuple[tuple[str, ...], str] | None = None,
    tag: str,
    watch: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {"description": desc, "operationId": op_id}
    if params:
        op["parameters"] = [_param(p, "query", _Q[p][0], _Q[p][1]) for p in params]
    if body is not None:
        types, ref = body
        op["requestBody"] = {
            "content": {t: {"schema": {"$ref": _V3_PREFIX + ref}} for t in types},
            "required": True,
        }
    resp: dict[str, Any] = {}
    for code, (text, out_ref) in responses.items():
        resp[code] = (
            {"content": _content(out_ref, watch=watch), "description": text}
            if out_ref
            else {"description": text}
        )
    resp["401"] = {"description": "Unauthorized"}
    op["responses"] = resp
    op["tags"] = [tag]
    op["x-kubernetes-action"] = action
    if gvk is not None:
        op["x-kubernetes-group-version-kind"] = dict(gvk)
    return op


def _article(kind: str) -> str:
    return "an " if kind[:1].lower() in "aeiou" else "a "


class _PathBuilder:
    """Paths of one resource; names of the definitions the operations refer to."""

    def __init__(self, spec: ResourceSpec, *, item_def: str, list_def: str) -> None:
        self.spec = spec
        self.item_def = item_def
        self.list_def = list_def
        self.gvk = {"group": spec.group, "kind": spec.kind, "version": spec.version}
        self.tag = (
            f"{_camel_group(spec.group)[:1].lower()}{_camel_group(spec.group)[1:]}_{spec.version}"
        )
        prefix = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
        self.prefix = prefix
        if spec.namespaced:
            self.collection = f"{prefix}/namespaces/{{namespace}}/{spec.plural}"
        else:
            self.collection = f"{prefix}/{spec.plural}"
        self.patch_types = _PATCH_TYPES_CUSTOM if spec.custom else _PATCH_TYPES_BUILTIN
        self.paths: dict[str, Any] = {}

    def can(self, verb: str) -> bool:
        return verb in self.spec.verbs

    def build(self) -> dict[str, Any]:
        self._collection()
        self._item()
        for sub in self.spec.subresources:
            self._subresource(sub)
        if self.spec.namespaced and self.can("list"):
            self._all_namespaces()
        return self.paths

    def _ns_params(self) -> list[_P]:
        return [copy.deepcopy(_NAMESPACE)] if self.spec.namespaced else []

    def _collection(self) -> None:
        s = self.spec
        ns = s.namespaced
        item: dict[str, Any] = {}
        if self.can("list"):
            item["get"] = _operation(
                desc=f"list or watch objects of kind {s.kind}",
                op_id=_op_id("list", s, namespaced=ns),
                action="list",
                gvk=self.gvk,
                params=_OP_PARAMS["list"],
                responses={"200": ("OK", self.list_def)},
                tag=self.tag,
                watch=True,
            )
        if self.can("create"):
            created = ("Created", self.item_def)
            item["post"] = _operation(
                desc=f"create {_article(s.kind)}{s.kind}",
                op_id=_op_id("create", s, namespaced=ns),
                action="post",
                gvk=self.gvk,
                params=_OP_PARAMS["post"],
                responses={
                    "200": ("OK", self.item_def),
                    "201": created,
                    "202": ("Accepted", self.item_def),
                },
                body=(("*/*",), self.item_def),
                tag=self.tag,
            )
        if self.can("deletecollection"):
            item["delete"] = _operation(
                desc=f"delete collection of {s.kind}",
                op_id=_op_id("delete", s, namespaced=ns, infix="Collection"),
                action="deletecollection",
                gvk=self.gvk,
                params=_OP_PARAMS["deletecollection"],
                responses={"200": ("OK", _META + "Status")},
                body=(("*/*",), _META + "DeleteOptions"),
                tag=self.tag,
            )
        if item:
            item["parameters"] = self._ns_params() + [copy.deepcopy(_PRETTY)]
            self.paths[self.collection] = item

    def _item(self) -> None:
        s = self.spec
        ns = s.namespaced
        item: dict[str, Any] = {}
        if self.can("get"):
            item["get"] = _operation(
                desc=f"read the specified {s.kind}",
                op_id=_op_id("read", s, namespaced=ns),
                action="get",
                gvk=self.gvk,
                params=(),
                responses={"200": ("OK", self.item_def)},
                tag=self.tag,
            )
        if self.can("update"):
            item["put"] = _operation(
                desc=f"replace the specified {s.kind}",
                op_id=_op_id("replace", s, namespaced=ns),
                action="put",
                gvk=self.gvk,
                params=_OP_PARAMS["put"],
                responses={"200": ("OK", self.item_def), "201": ("Created", self.item_def)},
                body=(("*/*",), self.item_def),
                tag=self.tag,
            )
        if self.can("patch"):
            item["patch"] = _operation(
                desc=f"partially update the specified {s.kind}",
                op_id=_op_id("patch", s, namespaced=ns),
                action="patch",
                gvk=self.gvk,
                params=_OP_PARAMS["patch"],
                responses={"200": ("OK", self.item_def), "201": ("Created", self.item_def)},
                body=(self.patch_types, _META + "Patch"),
                tag=self.tag,
            )
        if self.can("delete"):
            item["delete"] = _operation(
                desc=f"delete {_article(s.kind)}{s.kind}",
                op_id=_op_id("delete", s, namespaced=ns),
                action="delete",
                gvk=self.gvk,
                params=_OP_PARAMS["delete"],
                responses={"200": ("OK", _META + "Status"), "202": ("Accepted", _META + "Status")},
                body=(("*/*",), _META + "DeleteOptions"),
                tag=self.tag,
            )
        if item:
            name = _param("name", "path", "string", f"name of the {s.kind}", required=True)
            item["parameters"] = [name] + self._ns_params() + [copy.deepcopy(_PRETTY)]
            self.paths[f"{self.collection}/{{name}}"] = item

    def sub_kind(self, sub: str) -> tuple[dict[str, str], str]:
        """(GVK, definition name) a subresource speaks."""
        override = _SUBRESOURCES.get(sub, ((), None))[1]
        if override is None:
            return self.gvk, self.item_def
        group, version, kind = override
        kind = kind.replace("{Kind}", self.spec.kind)
        name = schemas.definition_for(group, version, kind) or ""
        return {"group": group, "kind": kind, "version": version}, name

    def _subresource(self, sub: str) -> None:
        methods = _SUBRESOURCES.get(sub, ((("get", "get"),), None))[0]
        gvk, ref = self.sub_kind(sub)
        item: dict[str, Any] = {}
        for method, action in methods:
            item[method] = self._sub_op(sub, method, action, gvk, ref)
        name = _param("name", "path", "string", f"name of the {gvk['kind']}", required=True)
        item["parameters"] = [name] + self._ns_params() + [copy.deepcopy(_PRETTY)]
        self.paths[f"{self.collection}/{{name}}/{sub}"] = item

    def _sub_op(
        self, sub: str, method: str, action: str, gvk: dict[str, str], ref: str
    ) -> dict[str, Any]:
        s = self.spec
        ns = s.namespaced
        verb = {
            "get": "read",
            "put": "replace",
            "patch": "patch",
            "post": "create",
            "delete": "delete",
        }[method]
        if action == "connect":
            verb = "connect" + method.capitalize()
        of = f" {sub} of" if action != "connect" else f" {sub} requests to"
        desc = {
            "read": f"read{of} the specified {s.kind}",
            "replace": f"replace{of} the specified {s.kind}",
            "patch": f"partially update{of} the specified {s.kind}",
            "create": f"create {sub} of {_article(s.kind)}{s.kind}",
        }.get(verb, f"connect {method.upper()}{of} {s.kind}")
        op_id = _op_id(verb, s, namespaced=ns, sub=sub)
        if action == "connect" or not ref:
            return _operation(
                desc=desc,
                op_id=op_id,
                action=action,
                gvk=gvk,
                params=(),
                responses={"200": ("OK", None)},
                tag=self.tag,
            )
        params = {
            "get": (),
            "put": _OP_PARAMS["put"],
            "patch": _OP_PARAMS["patch"],
            "post": _OP_PARAMS["post"],
        }[method]
        body: tuple[tuple[str, ...], str] | None = None
        if method in ("put", "post"):
            body = (("*/*",), ref)
        elif method == "patch":
            body = (self.patch_types, _META + "Patch")
        responses: dict[str, tuple[str, str | None]] = {"200": ("OK", ref)}
        if method in ("put", "patch", "post"):
            responses["201"] = ("Created", ref)
        if method == "post":
            responses["202"] = ("Accepted", ref)
        return _operation(
            desc=desc,
            op_id=op_id,
            action=action,
            gvk=gvk,
            params=params,
            responses=responses,
            body=body,
            tag=self.tag,
        )

    def _all_namespaces(self) -> None:
        s = self.spec
        op = _operation(
            desc=f"list or watch objects of kind {s.kind}",
            op_id=_op_id("list", s, namespaced=False, suffix="ForAllNamespaces"),
            action="list",
            gvk=self.gvk,
            params=(),
            responses={"200": ("OK", self.list_def)},
            tag=self.tag,
            watch=True,
        )
        params = [_param(p, "query", _Q[p][0], _Q[p][1]) for p in _LIST_PARAMS] + [
            copy.deepcopy(_PRETTY)
        ]
        params.sort(key=lambda p: p["name"])
        self.paths[f"{self.prefix}/{s.plural}"] = {"get": op, "parameters": params}


# ---- documents ---------------------------------------------------------------------


def group_version_document(gv: str, resources: list[ResourceSpec]) -> dict[str, Any]:
    """The OpenAPI 3 document of one group-version (``apps/v1`` or ``apis/apps/v1``).

    Resources of other group-versions are ignored.
    """
    want = split_gv(gv)
    resources = [r for r in resources if (r.group, r.version) == want]
    components: dict[str, Schema] = {}
    roots: list[str] = list(_COMMON_DEFS)
    paths: dict[str, Any] = {}
    for spec in sorted(resources, key=lambda r: r.plural):
        item_def, list_def = _definitions_for(spec, components)
        roots += [item_def, list_def]
        builder = _PathBuilder(spec, item_def=item_def, list_def=list_def)
        paths.update(builder.build())
        for sub in spec.subresources:
            ref = builder.sub_kind(sub)[1]
            if ref:
                roots.append(ref)
    _closure(roots, components)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


def _definitions_for(spec: ResourceSpec, components: dict[str, Schema]) -> tuple[str, str]:
    """Names of the item and list definitions of ``spec`` (adding custom ones)."""
    if spec.schema is None:
        item = spec.definition_name or schemas.definition_for(spec.group, spec.version, spec.kind)
        if item is not None:
            lst = schemas.definition_for(spec.group, spec.version, spec.list_kind) or ""
            return item, lst
    item = custom_definition_name(spec.group, spec.version, spec.kind)
    lst = custom_definition_name(spec.group, spec.version, spec.list_kind)
    components[item] = _custom_schema(spec)
    components[lst] = _custom_list_schema(spec, item)
    return item, lst


def encode_document(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


# ---- cache -------------------------------------------------------------------------


def _fingerprint(gv: str, resources: Iterable[ResourceSpec]) -> tuple[Any, ...]:
    parts = []
    for r in sorted(resources, key=lambda x: (x.plural, x.kind)):
        sch = orjson.dumps(r.schema, option=orjson.OPT_SORT_KEYS) if r.schema is not None else b""
        parts.append(
            (
                r.group,
                r.version,
                r.kind,
                r.plural,
                r.namespaced,
                r.subresources,
                r.verbs,
                r.definition_name,
                r.list_kind,
                sch,
            )
        )
    return (path_key(gv), tuple(parts))


@dataclass
class CachedDocument:
    body: bytes
    hash: str


class DocumentCache:
    """Encoded documents and hashes, computed once per group-version and resource set."""

    def __init__(self, *, max_entries: int = 256) -> None:
        self._docs: dict[tuple[Any, ...], CachedDocument] = {}
        self._max = max_entries

    def get(self, gv: str, resources: list[ResourceSpec]) -> CachedDocument:
        key = _fingerprint(gv, resources)
        hit = self._docs.get(key)
        if hit is not None:
            return hit
        body = encode_document(group_version_document(gv, resources))
        doc = CachedDocument(body=body, hash=document_hash(body))
        if len(self._docs) >= self._max:
            self._docs.clear()
        self._docs[key] = doc
        return doc

    def index(self, by_gv: dict[str, list[ResourceSpec]]) -> dict[str, Any]:
        """The ``/openapi/v3`` index for these group-versions (documents built as needed)."""
        keyed = {path_key(gv): res for gv, res in by_gv.items()}
        return group_versions_index(keyed, hash_of=lambda k: self.get(k, keyed[k]).hash)
