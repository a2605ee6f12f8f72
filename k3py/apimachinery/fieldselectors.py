"""Field selectors: ``?fieldSelector=`` parsing, the per-kind field sets and label checks.

Parsing follows apimachinery's ``fields.ParseSelector`` (terms split on unescaped commas,
sorted, operators ``!=``, ``==``, ``=``; values may escape ``\\,``, ``\\=`` and ``\\\\``).
Which labels a kind accepts, and how a label is renamed (``spec.host`` is an old name for
``spec.nodeName``; events.k8s.io speaks of ``regarding.*`` where the stored core Event
has ``involvedObject.*``), follows the scheme's field label conversion functions of
kube-apiserver 1.32.  :func:`fields_for` builds the same field set the registry
strategies build (``ToSelectableFields``), keyed by the converted labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from k3py.apimachinery.gofmt import go_quote
from k3py.server.errors import APIError


class FieldSelectorError(APIError):
    """A selector that does not parse or names an unsupported field: 400 BadRequest."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "BadRequest", message)


class Term(NamedTuple):
    field: str
    value: str
    negated: bool

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.negated else '='}{escape_value(self.value)}"


class FieldSelector:
    """AND of ``field=value`` / ``field!=value`` terms over a ``dict[str, str]`` field set."""

    __slots__ = ("terms",)

    def __init__(self, terms: tuple[Term, ...] = ()) -> None:
        self.terms = terms

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, fields: Mapping[str, str]) -> bool:
        for term in self.terms:
            if (fields.get(term.field, "") == term.value) == term.negated:
                return False
        return True

    def requires_exact_match(self, field: str) -> str | None:
        for term in self.terms:
            if term.field == field and not term.negated:
                return term.value
        return None

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSelector) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(self.terms)


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c not in "\\,=":
                raise FieldSelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            raise FieldSelectorError(
                f"invalid field selector: unescaped character in value: {ord(c)}"
            )
        else:
            out.append(c)
    if in_slash:
        raise FieldSelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, in_slash = [], 0, False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse(text: str) -> FieldSelector:
    """``fields.ParseSelector``; raises FieldSelectorError with upstream's message."""
    terms: list[Term] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise FieldSelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        terms.append(Term(lhs, unescape_value(rhs), op == "!="))
    return FieldSelector(tuple(terms))


def parse_selector(text: str | None) -> FieldSelector:
    """Parse a query parameter (None or empty: everything); errors are 400 BadRequest."""
    return parse(text or "")


# --- per-kind labels ----------------------------------------------------------------

_META = ("metadata.name", "metadata.namespace")
_EVENT_LABELS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    *_META,
)
_POD_LABELS = (
    *_META,
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
)


class _Conversion(NamedTuple):
    labels: Mapping[str, str]  # accepted label -> label in the field set
    error: str  # format with {label}


def _same(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


_NOT_SUPPORTED = "field label not supported: {label}"
_CONVERSIONS: dict[tuple[str, str], _Conversion] = {
    ("", "Pod"): _Conversion({**_same(*_POD_LABELS), "spec.host": "spec.nodeName"}, _NOT_SUPPORTED),
    ("", "Node"): _Conversion(_same("metadata.name", "spec.unschedulable"), _NOT_SUPPORTED),
    ("", "ReplicationController"): _Conversion(_same(*_META, "status.replicas"), _NOT_SUPPORTED),
    ("", "Event"): _Conversion(_same(*_EVENT_LABELS), _NOT_SUPPORTED),
    ("", "Namespace"): _Conversion(_same("status.phase", "metadata.name"), _NOT_SUPPORTED),
    ("", "Secret"): _Conversion(_same("type", *_META), _NOT_SUPPORTED),
    ("", "Service"): _Conversion(_same(*_META, "spec.clusterIP", "spec.type"), _NOT_SUPPORTED),
    ("events.k8s.io", "Event"): _Conversion(
        {
            "reason": "reason",
            "regarding.kind": "involvedObject.kind",
            "regarding.namespace": "involvedObject.namespace",
            "regarding.name": "involvedObject.name",
            "regarding.uid": "involvedObject.uid",
            "regarding.apiVersion": "involvedObject.apiVersion",
            "regarding.resourceVersion": "involvedObject.resourceVersion",
            "regarding.fieldPath": "involvedObject.fieldPath",
            "reportingController": "reportingComponent",
            "type": "type",
            **_same(*_META),
        },
        _NOT_SUPPORTED,
    ),
    ("batch", "Job"): _Conversion(
        _same(*_META, "status.successful"), "field label {quoted} not supported for batchv1.Job"
    ),
    ("apps", "ReplicaSet"): _Conversion(_same(*_META, "status.replicas"), _NOT_SUPPORTED),
    ("certificates.k8s.io", "CertificateSigningRequest"): _Conversion(
        _same("metadata.name", "spec.signerName"), "field label not supported: {label}"
    ),
}
_DEFAULT_ERROR = (
    '{quoted} is not a known field selector: only "metadata.name", "metadata.namespace"'
)


def supported_labels(group: str, kind: str) -> tuple[str, ...]:
    conv = _CONVERSIONS.get((group, kind))
    return tuple(conv.labels) if conv else _META


def convert_label(group: str, kind: str, label: str, *, extra: tuple[str, ...] = ()) -> str:
    """The field-set label a selector label stands for; FieldSelectorError when unsupported.

    ``extra`` lists additional accepted labels (a CRD's ``selectableFields``).
    """
    if label in extra:
        return label
    conv = _CONVERSIONS.get((group, kind))
    if conv is None:
        if label in _META:
            return label
        raise FieldSelectorError(_DEFAULT_ERROR.format(quoted=go_quote(label)))
    if label in conv.labels:
        return conv.labels[label]
    raise FieldSelectorError(conv.error.format(label=label, quoted=go_quote(label)))


def convert(
    group: str, kind: str, selector: FieldSelector, *, extra: tuple[str, ...] = ()
) -> FieldSelector:
    """Validate every label for the kind and rename it to its field-set name."""
    terms = tuple(
        Term(convert_label(group, kind, t.field, extra=extra), t.value, t.negated)
        for t in selector.terms
    )
    return FieldSelector(terms)


def check_supported(
    group: str, kind: str, selector: FieldSelector, *, extra: tuple[str, ...] = ()
) -> FieldSelector:
    """400 ``field label not supported: X`` for a label the kind does not accept.

    Returns the selector with labels renamed to field-set names; :func:`fields_for`
    also answers to the accepted aliases, so matching with the unconverted selector
    works too.
    """
    return convert(group, kind, selector, extra=extra)


# --- field sets ---------------------------------------------------------------------


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _s(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _bool(value: Any) -> str:
    return "true" if value is True else "false"


def _int(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _pod_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    ips = _get(obj, "status", "podIPs") or []
    pod_ip = _s(ips[0].get("ip")) if ips and isinstance(ips[0], Mapping) else ""
    if not pod_ip:
        pod_ip = _s(_get(obj, "status", "podIP"))
    return {
        "spec.nodeName": _s(_get(obj, "spec", "nodeName")),
        "spec.restartPolicy": _s(_get(obj, "spec", "restartPolicy")),
        "spec.schedulerName": _s(_get(obj, "spec", "schedulerName")),
        "spec.serviceAccountName": _s(_get(obj, "spec", "serviceAccountName")),
        "spec.hostNetwork": _bool(_get(obj, "spec", "hostNetwork")),
        "status.phase": _s(_get(obj, "status", "phase")),
        "status.podIP": pod_ip,
        "status.nominatedNodeName": _s(_get(obj, "status", "nominatedNodeName")),
    }


def _core_event_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    source = _s(_get(obj, "source", "component")) or _s(obj.get("reportingComponent"))
    fields = {
        f"involvedObject.{f}": _s(_get(obj, "involvedObject", f))
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    fields.update(
        reason=_s(obj.get("reason")),
        reportingComponent=_s(obj.get("reportingComponent")),
        source=source,
        type=_s(obj.get("type")),
    )
    return fields


def _events_v1_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    source = _s(_get(obj, "deprecatedSource", "component")) or _s(obj.get("reportingController"))
    fields = {
        f"involvedObject.{f}": _s(_get(obj, "regarding", f))
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    fields.update(
        reason=_s(obj.get("reason")),
        reportingComponent=_s(obj.get("reportingController")),
        source=source,
        type=_s(obj.get("type")),
    )
    return fields


def _specific_fields(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    match (group, kind):
        case ("", "Pod"):
            return _pod_fields(obj)
        case ("", "Event"):
            return _core_event_fields(obj)
        case ("events.k8s.io", "Event"):
            return _events_v1_fields(obj)
        case ("", "Secret"):
            return {"type": _s(obj.get("type"))}
        case ("", "Node"):
            return {"spec.unschedulable": _bool(_get(obj, "spec", "unschedulable"))}
        case ("", "Namespace"):
            return {"status.phase": _s(_get(obj, "status", "phase"))}
        case ("", "Service"):
            return {
                "spec.clusterIP": _s(_get(obj, "spec", "clusterIP")),
                "spec.type": _s(_get(obj, "spec", "type")),
            }
        case ("", "ReplicationController") | ("apps", "ReplicaSet"):
            return {"status.replicas": _int(_get(obj, "status", "replicas"))}
        case ("batch", "Job"):
            return {"status.successful": _int(_get(obj, "status", "succeeded"))}
        case ("certificates.k8s.io", "CertificateSigningRequest"):
            return {"spec.signerName": _s(_get(obj, "spec", "signerName"))}
    return {}


def fields_for(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable field set of an object, keyed by field label.

    Keys are the field-set labels (``involvedObject.name``) plus every accepted alias
    (``regarding.name`` on events.k8s.io, ``spec.host`` on pods).
    """
    meta = obj.get("metadata") or {}
    fields = _specific_fields(group, kind, obj)
    fields["metadata.name"] = _s(meta.get("name"))
    fields["metadata.namespace"] = _s(meta.get("namespace"))
    conv = _CONVERSIONS.get((group, kind))
    if conv is not None:
        for alias, target in conv.labels.items():
            if alias != target and target in fields:
                fields[alias] = fields[target]
    return fields


def fields_from_paths(obj: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, str]:
    """Values at dotted JSON paths (CRD ``selectableFields``), rendered as upstream does."""
    out: dict[str, str] = {}
    for path in paths:
        value = _get(obj, *path.split("."))
        if value is None or isinstance(value, (dict, list)):
            continue
        out[path] = _bool(value) if isinstance(value, bool) else _s(value)
    return out
