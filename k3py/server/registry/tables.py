"""Server-side ``meta.k8s.io/v1`` Tables: the columns ``kubectl get`` prints.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints
whatever columns and cells the server sends, so every built-in kind needs the
printer kube-apiserver 1.32 has (``pkg/printers/internalversion/printers.go``),
with the same column names, types, formats, priorities and cell strings.
Facts carried over from upstream, each visible to users:

* The server always prints the *wide* variant (``GenerateOptions{Wide: true}``):
  every column, priority 1 included; kubectl hides priority > 0 unless
  ``-o wide``.  Hence load-balancer addresses are never clipped here.
* Column names are title case ("Name", "Nominated Node"); kubectl upper-cases.
* Kinds without a printer (Role, ClusterRole, LimitRange,
  CustomResourceDefinition, CSIStorageCapacity, anything unknown) get the
  default convertor: ``Name`` and ``Created At`` (type ``date``, cell an
  RFC 3339 UTC timestamp).
* Custom resources use the CRD version's ``additionalPrinterColumns``
  evaluated with client-go JSONPath semantics (first value of the first match;
  ``date`` columns become ages on the server); a version without columns gets
  one ``Age`` column.  ``Name`` is always first; no ``Age`` is appended to
  columns the CRD defines.
* Ages are apimachinery's ``HumanDuration`` of ``now - timestamp``;
  ``<unknown>`` for a missing timestamp.
* Objects are read in their served (v1) JSON form; where upstream reads a
  field that defaulting always fills we apply the same default, so an object
  stored without it prints as upstream would print the defaulted object.

Everything here is a pure function of the object and ``now``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from k3py.apimachinery import quantity
from k3py.server import errors
from k3py.server.registry import jsonpath, schema

Obj = dict[str, Any]
Cells = list[Any]

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_VALUES = ("Metadata", "None", "Object")

# ---------------------------------------------------------------------------
# Small accessors


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    """``obj[p0][p1]…`` or ``default`` when any step is missing or null."""
    cur = obj
    for key in path:
        if not isinstance(cur, dict):
            return default
        cur = cur.get(key)
        if cur is None:
            return default
    return cur


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return value if isinstance(value, list) else []


def _map(obj: Any, *path: str) -> dict[str, Any]:
    value = _get(obj, *path)
    return value if isinstance(value, dict) else {}


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name", default=""))


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------------------
# Time


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (metav1.Time or MicroTime), or None when absent/zero."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year <= 1:
        return None  # Go's zero time
    return parsed


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _nanoseconds(delta_seconds: int, delta_micro: int) -> int:
    return delta_seconds * 1_000_000_000 + delta_micro * 1000


def human_duration_ns(ns: int) -> str:
    """apimachinery ``duration.HumanDuration`` of a duration in nanoseconds."""
    seconds = int(ns / 1_000_000_000) if ns < 0 else ns // 1_000_000_000
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = ns // 60_000_000_000
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = ns // 3_600_000_000_000
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def human_duration(seconds: float) -> str:
    """``HumanDuration`` of a duration given in (possibly fractional) seconds."""
    return human_duration_ns(round(seconds * 1_000_000_000))


def _between(start: datetime, end: datetime) -> str:
    delta = end - start
    return human_duration_ns(_nanoseconds(delta.days * 86400 + delta.seconds, delta.microseconds))


def translate_timestamp_since(value: Any, *, now: datetime) -> str:
    """Age of a timestamp field as printed in tables (``<unknown>`` if unset)."""
    parsed = parse_time(value)
    if parsed is None:
        return "<unknown>"
    return _between(parsed, _aware(now))


def _age(obj: Obj, now: datetime) -> str:
    return translate_timestamp_since(_get(obj, "metadata", "creationTimestamp"), now=now)


def rfc3339(value: Any) -> str:
    """``Time.UTC().Format(time.RFC3339)``; Go's zero time when unset."""
    parsed = parse_time(value)
    if parsed is None:
        return "0001-01-01T00:00:00Z"
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------
# Labels and selectors


def format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, ``<none>`` when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))


_SELECTOR_OPS = {"In": " in ", "NotIn": " notin ", "Exists": "", "DoesNotExist": ""}


def selector_string(selector: Any) -> str | None:
    """``LabelSelectorAsSelector(sel).String()``, or None when it does not convert."""
    if not isinstance(selector, dict):
        return ""  # nil selector: labels.Nothing()
    reqs: list[tuple[str, str]] = []
    for key, value in _map(selector, "matchLabels").items():
        reqs.append((key, f"{key}={value}"))
    for expr in _list(selector, "matchExpressions"):
        key, op = str(_get(expr, "key", default="")), _get(expr, "operator")
        if op not in _SELECTOR_OPS:
            return None
        if op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, "!" + key))
        else:
            values = sorted(str(v) for v in _list(expr, "values"))
            reqs.append((key, f"{key}{_SELECTOR_OPS[op]}({','.join(values)})"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` for empty, ``<error>`` for invalid."""
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _go_label_selector_struct(selector: Any) -> str:
    """The protobuf ``String()`` of a ``*metav1.LabelSelector`` (used for ParamRef)."""
    if not isinstance(selector, dict):
        return "nil"
    labels = _map(selector, "matchLabels")
    label_text = "".join(f"{k}: {labels[k]}," for k in sorted(labels))
    exprs = "".join(
        "LabelSelectorRequirement{"
        f"Key:{_get(e, 'key', default='')},"
        f"Operator:{_get(e, 'operator', default='')},"
        f"Values:[{' '.join(str(v) for v in _list(e, 'values'))}],"
        "},"
        for e in _list(selector, "matchExpressions")
    )
    return (
        "&LabelSelector{"
        f"MatchLabels:map[string]string{{{label_text}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},"
        "}"
    )


# ---------------------------------------------------------------------------
# Quantities


def format_quantity(raw: Any) -> str:
    """``resource.Quantity.String()``: the canonical form (``1024Mi`` → ``1Gi``).

    A missing quantity prints as Go's zero Quantity, ``0``; one that does not parse
    (validation would have refused it) is shown as given.
    """
    if raw is None:
        return "0"
    try:
        return quantity.canonicalize(raw)
    except (quantity.QuantityError, TypeError):
        return raw if isinstance(raw, str) else jsonpath.go_json(raw)


def _quantity_ptr(raw: Any) -> str:
    """``(*Quantity).String()`` of a possibly-nil pointer."""
    return "<nil>" if raw is None else format_quantity(raw)


def _int_or_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# ---------------------------------------------------------------------------
# Column definitions

_META = "meta.v1.ObjectMeta"
DocRef = str | tuple[str, str]


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    doc: DocRef
    priority: int = 0
    format: str = ""


def _definition_name(short: str) -> str:
    if short.startswith("meta."):
        return "io.k8s.apimachinery.pkg.apis." + short
    return "io.k8s.api." + short


def _doc(ref: DocRef) -> str:
    """A literal description, or the OpenAPI description of (definition, field)."""
    if isinstance(ref, str):
        return ref
    definition, field_name = ref
    props = schema.definitions().get(_definition_name(definition), {}).get("properties", {})
    desc = props.get(field_name, {}).get("description", "")
    return str(desc)


def _column_dict(col: Col) -> dict[str, Any]:
    return {
        "name": col.name,
        "type": col.type,
        "format": col.format,
        "description": _doc(col.doc),
        "priority": col.priority,
    }


NAME = Col("Name", "string", (_META, "name"), format="name")
AGE = Col("Age", "string", (_META, "creationTimestamp"))
CONTAINERS = Col("Containers", "string", "Names of each container in the template.", 1)
IMAGES = Col("Images", "string", "Images referenced by each container in the template.", 1)


def _selector(ref: DocRef) -> Col:
    return Col("Selector", "string", ref, 1)


def _layout_containers(containers: list[Any]) -> tuple[str, str]:
    names = ",".join(str(_get(c, "name", default="")) for c in containers)
    images = ",".join(str(_get(c, "image", default="")) for c in containers)
    return names, images


CellsFn = Callable[[Obj, datetime], Cells]
CondFn = Callable[[Obj], list[dict[str, Any]]]


@dataclass(frozen=True)
class Printer:
    columns: tuple[Col, ...]
    cells: CellsFn
    conditions: CondFn | None = None


_PRINTERS: dict[tuple[str, str], Printer] = {}


def _printer(
    groups: str | tuple[str, ...],
    kind: str,
    columns: Sequence[Col],
    *,
    conditions: CondFn | None = None,
) -> Callable[[CellsFn], CellsFn]:
    def register(fn: CellsFn) -> CellsFn:
        for group in (groups,) if isinstance(groups, str) else groups:
            _PRINTERS[(group, kind)] = Printer(tuple(columns), fn, conditions)
        return fn

    return register


# ---------------------------------------------------------------------------
# Pods

POD_COLUMNS = (
    NAME,
    Col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Col("Status", "string", "The aggregate status of the containers in this pod."),
    Col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    AGE,
    Col("IP", "string", ("core.v1.PodStatus", "podIP"), 1),
    Col("Node", "string", ("core.v1.PodSpec", "nodeName"), 1),
    Col("Nominated Node", "string", ("core.v1.PodStatus", "nominatedNodeName"), 1),
    Col("Readiness Gates", "string", ("core.v1.PodSpec", "readinessGates"), 1),
)


@dataclass
class _PodTally:
    reason: str
    ready: int = 0
    total: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None


def _later(current: datetime | None, status: Any) -> datetime | None:
    finished = parse_time(_get(status, "lastState", "terminated", "finishedAt"))
    if _get(status, "lastState", "terminated") is None or finished is None:
        return current
    return finished if current is None or current < finished else current


def _is_restartable(container: Any) -> bool:
    return _get(container, "restartPolicy") == "Always"


def _terminated_reason(term: dict[str, Any], prefix: str) -> str:
    if _get(term, "reason"):
        return prefix + str(term["reason"])
    signal = _int(_get(term, "signal"))
    if signal != 0:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(_get(term, 'exitCode'))}"


def _tally_init_containers(pod: Obj, tally: _PodTally) -> bool:
    """Walk init container statuses as upstream does; True while initializing."""
    init_specs = _list(pod, "spec", "initContainers")
    by_name = {_get(c, "name"): c for c in init_specs}
    for i, status in enumerate(_list(pod, "status", "initContainerStatuses")):
        count = _int(_get(status, "restartCount"))
        tally.restarts += count
        tally.last_restart = _later(tally.last_restart, status)
        restartable = _is_restartable(by_name.get(_get(status, "name")))
        if restartable:
            tally.sidecar_restarts += count
            tally.sidecar_last_restart = _later(tally.sidecar_last_restart, status)
        term = _get(status, "state", "terminated")
        waiting = _get(status, "state", "waiting")
        if term is not None and _int(_get(term, "exitCode")) == 0:
            continue
        if restartable and _get(status, "started") is True:
            tally.ready += 1 if _get(status, "ready") is True else 0
            continue
        if term is not None:
            tally.reason = _terminated_reason(term, "Init:")
        elif waiting is not None and _get(waiting, "reason") not in (None, "", "PodInitializing"):
            tally.reason = "Init:" + str(waiting["reason"])
        else:
            tally.reason = f"Init:{i}/{len(init_specs)}"
        return True
    return False


def _has_condition(obj: Obj, cond_type: str) -> bool:
    """The status of the first condition of that type is True."""
    for cond in _list(obj, "status", "conditions"):
        if _get(cond, "type") == cond_type:
            return _get(cond, "status") == "True"
    return False


def _has_true_condition(pod: Obj, cond_type: str) -> bool:
    return any(
        _get(c, "type") == cond_type and _get(c, "status") == "True"
        for c in _list(pod, "status", "conditions")
    )


def _tally_containers(pod: Obj, tally: _PodTally) -> None:
    tally.restarts = tally.sidecar_restarts
    tally.last_restart = tally.sidecar_last_restart
    has_running = False
    for status in reversed(_list(pod, "status", "containerStatuses")):
        tally.restarts += _int(_get(status, "restartCount"))
        tally.last_restart = _later(tally.last_restart, status)
        waiting = _get(status, "state", "waiting")
        term = _get(status, "state", "terminated")
        if waiting is not None and _get(waiting, "reason"):
            tally.reason = str(waiting["reason"])
        elif term is not None:
            tally.reason = _terminated_reason(term, "")
        elif _get(status, "ready") is True and _get(status, "state", "running") is not None:
            has_running = True
            tally.ready += 1
    if tally.reason == "Completed" and has_running:
        tally.reason = "Running" if _has_true_condition(pod, "Ready") else "NotReady"


def pod_status(pod: Obj) -> _PodTally:
    """READY counts, STATUS reason and restarts of a pod, computed as ``printPod``."""
    phase = str(_get(pod, "status", "phase", default="Pending"))
    tally = _PodTally(reason=str(_get(pod, "status", "reason") or phase))
    for cond in _list(pod, "status", "conditions"):
        if _get(cond, "type") == "PodScheduled" and _get(cond, "reason") == "SchedulingGated":
            tally.reason = "SchedulingGated"
    init_specs = _list(pod, "spec", "initContainers")
    tally.total = len(_list(pod, "spec", "containers")) + sum(
        1 for c in init_specs if _is_restartable(c)
    )
    initializing = _tally_init_containers(pod, tally)
    if not initializing or _has_condition(pod, "Initialized"):
        _tally_containers(pod, tally)
    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and _get(pod, "status", "reason") == "NodeLost":
        tally.reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        tally.reason = "Terminating"
    return tally


def _pod_ip(pod: Obj) -> str:
    ip = _get(pod, "status", "podIP")
    if not ip:
        ips = _list(pod, "status", "podIPs")
        ip = _get(ips[0], "ip") if ips else ""
    return str(ip) if ip else "<none>"


def _readiness_gates(pod: Obj) -> str:
    gates = _list(pod, "spec", "readinessGates")
    if not gates:
        return "<none>"
    conditions = _list(pod, "status", "conditions")
    true_count = 0
    for gate in gates:
        for cond in conditions:
            if _get(cond, "type") == _get(gate, "conditionType"):
                true_count += 1 if _get(cond, "status") == "True" else 0
                break
    return f"{true_count}/{len(gates)}"


def _pod_conditions(pod: Obj) -> list[dict[str, Any]]:
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


@_printer("", "Pod", POD_COLUMNS, conditions=_pod_conditions)
def _pod(obj: Obj, now: datetime) -> Cells:
    tally = pod_status(obj)
    restarts = str(tally.restarts)
    if tally.restarts != 0 and tally.last_restart is not None:
        restarts = f"{tally.restarts} ({_between(tally.last_restart, _aware(now))} ago)"
    return [
        _name(obj),
        f"{tally.ready}/{tally.total}",
        tally.reason,
        restarts,
        _age(obj, now),
        _pod_ip(obj),
        _get(obj, "spec", "nodeName") or "<none>",
        _get(obj, "status", "nominatedNodeName") or "<none>",
        _readiness_gates(obj),
    ]


@_printer(
    "",
    "PodTemplate",
    (
        NAME,
        Col("Containers", "string", "Names of each container in the template."),
        Col("Images", "string", "Images referenced by each container in the template."),
        Col("Pod Labels", "string", "The labels for the pod template."),
    ),
)
def _pod_template(obj: Obj, now: datetime) -> Cells:
    names, images = _layout_containers(_list(obj, "template", "spec", "containers"))
    return [_name(obj), names, images, format_labels(_get(obj, "template", "metadata", "labels"))]


# ---------------------------------------------------------------------------
# Workloads


@_printer(
    "",
    "ReplicationController",
    (
        NAME,
        Col("Desired", "integer", ("core.v1.ReplicationControllerSpec", "replicas")),
        Col("Current", "integer", ("core.v1.ReplicationControllerStatus", "replicas")),
        Col("Ready", "integer", ("core.v1.ReplicationControllerStatus", "readyReplicas")),
        AGE,
        CONTAINERS,
        IMAGES,
        _selector(("core.v1.ReplicationControllerSpec", "selector")),
    ),
)
def _replication_controller(obj: Obj, now: datetime) -> Cells:
    names, images = _layout_containers(_list(obj, "spec", "template", "spec", "containers"))
    return [
        _name(obj),
        _int(_get(obj, "spec", "replicas"), 1),
        _int(_get(obj, "status", "replicas")),
        _int(_get(obj, "status", "readyReplicas")),
        _age(obj, now),
        names,
        images,
        format_labels(_get(obj, "spec", "selector")),
    ]


@_printer(
    "apps",
    "ReplicaSet",
    (
        NAME,
        Col("Desired", "integer", ("apps.v1.ReplicaSetSpec", "replicas")),
        Col("Current", "integer", ("apps.v1.ReplicaSetStatus", "replicas")),
        Col("Ready", "integer", ("apps.v1.ReplicaSetStatus", "readyReplicas")),
        AGE,
        CONTAINERS,
        IMAGES,
        _selector(("apps.v1.ReplicaSetSpec", "selector")),
    ),
)
def _replica_set(obj: Obj, now: datetime) -> Cells:
    names, images = _layout_containers(_list(obj, "spec", "template", "spec", "containers"))
    return [
        _name(obj),
        _int(_get(obj, "spec", "replicas"), 1),
        _int(_get(obj, "status", "replicas")),
        _int(_get(obj, "status", "readyReplicas")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


@_printer(
    "apps",
    "Deployment",
    (
        NAME,
        Col("Ready", "string", "Number of the pod with ready state"),
        Col("Up-to-date", "string", ("apps.v1.DeploymentStatus", "updatedReplicas")),
        Col("Available", "string", ("apps.v1.DeploymentStatus", "availableReplicas")),
        AGE,
        CONTAINERS,
        IMAGES,
        _selector(("apps.v1.DeploymentSpec", "selector")),
    ),
)
def _deployment(obj: Obj, now: datetime) -> Cells:
    names, images = _layout_containers(_list(obj, "spec", "template", "spec", "containers"))
    selector = selector_string(_get(obj, "spec", "selector"))
    ready = _int(_get(obj, "status", "readyReplicas"))
    return [
        _name(obj),
        f"{ready}/{_int(_get(obj, 'spec', 'replicas'), 1)}",
        _int(_get(obj, "status", "updatedReplicas")),
        _int(_get(obj, "status", "availableReplicas")),
        _age(obj, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


@_printer(
    "apps",
    "StatefulSet",
    (
        NAME,
        Col("Ready", "string", "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ),
)
def _stateful_set(obj: Obj, now: datetime) -> Cells:
    names, images = _layout_containers(_list(obj, "spec", "template", "spec", "containers"))
    ready = _int(_get(obj, "status", "readyReplicas"))
    desired = _int(_get(obj, "spec", "replicas"), 1)
    return [_name(obj), f"{ready}/{desired}", _age(obj, now), names, images]


@_printer(
    "apps",
    "DaemonSet",
    (
        NAME,
        Col("Desired", "integer", ("apps.v1.DaemonSetStatus", "desiredNumberScheduled")),
        Col("Current", "integer", ("apps.v1.DaemonSetStatus", "currentNumberScheduled")),
        Col("Ready", "integer", ("apps.v1.DaemonSetStatus", "numberReady")),
        Col("Up-to-date", "integer", ("apps.v1.DaemonSetStatus", "updatedNumberScheduled")),
        Col("Available", "integer", ("apps.v1.DaemonSetStatus", "numberAvailable")),
        Col("Node Selector", "string", ("core.v1.PodSpec", "nodeSelector")),
        AGE,
        CONTAINERS,
        IMAGES,
        _selector(("apps.v1.DaemonSetSpec", "selector")),
    ),
)
def _daemon_set(obj: Obj, now: datetime) -> Cells:
    names, images = _layout_containers(_list(obj, "spec", "template", "spec", "containers"))
    status = _map(obj, "status")
    return [
        _name(obj),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        format_labels(_get(obj, "spec", "template", "spec", "nodeSelector")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


def _controller_of(obj: Obj) -> Obj | None:
    for ref in _list(obj, "metadata", "ownerReferences"):
        if _get(ref, "controller") is True:
            return dict(ref)
    return None


@_printer(
    "apps",
    "ControllerRevision",
    (
        NAME,
        Col("Controller", "string", "Controller of the object"),
        Col("Revision", "string", ("apps.v1.ControllerRevision", "revision")),
        AGE,
    ),
)
def _controller_revision(obj: Obj, now: datetime) -> Cells:
    controller = "<none>"
    ref = _controller_of(obj)
    if ref is not None:
        api_version = str(ref.get("apiVersion") or "")
        group = api_version.split("/")[0] if "/" in api_version else ""
        kind = str(ref.get("kind") or "")
        name = str(ref.get("name") or "")
        if kind or group:
            group_kind = f"{kind}.{group}" if group else kind
            controller = f"{group_kind.lower()}/{name}"
        else:
            controller = name
    return [_name(obj), controller, _int(_get(obj, "revision")), _age(obj, now)]


def _job_status(obj: Obj) -> str:
    if _has_condition(obj, "Complete"):
        return "Complete"
    if _has_condition(obj, "Failed"):
        return "Failed"
    if _get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    if _has_condition(obj, "Suspended"):
        return "Suspended"
    if _has_condition(obj, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_completions(obj: Obj) -> str:
    succeeded = _int(_get(obj, "status", "succeeded"))
    completions = _get(obj, "spec", "completions")
    if completions is not None:
        return f"{succeeded}/{_int(completions)}"
    parallelism = _int(_get(obj, "spec", "parallelism"))
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def _job_duration(obj: Obj, now: datetime) -> str:
    start = parse_time(_get(obj, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(_get(obj, "status", "completionTime"))
    return _between(start, end if end is not None else _aware(now))


@_printer(
    "batch",
    "Job",
    (
        NAME,
        Col("Status", "string", "Status of the job."),
        Col("Completions", "string", ("batch.v1.JobStatus", "succeeded")),
        Col("Duration", "string", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        _selector(("batch.v1.JobSpec", "selector")),
    ),
)
def _job(obj: Obj, now: datetime) -> Cells:
    names, images = _layout_containers(_list(obj, "spec", "template", "spec", "containers"))
    return [
        _name(obj),
        _job_status(obj),
        _job_completions(obj),
        _job_duration(obj, now),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


def _print_bool(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


@_printer(
    "batch",
    "CronJob",
    (
        NAME,
        Col("Schedule", "string", ("batch.v1.CronJobSpec", "schedule")),
        Col("Timezone", "string", ("batch.v1.CronJobSpec", "timeZone")),
        Col("Suspend", "boolean", ("batch.v1.CronJobSpec", "suspend")),
        Col("Active", "integer", ("batch.v1.CronJobStatus", "active")),
        Col("Last Schedule", "string", ("batch.v1.CronJobStatus", "lastScheduleTime")),
        AGE,
        CONTAINERS,
        IMAGES,
        _selector(("batch.v1.JobSpec", "selector")),
    ),
)
def _cron_job(obj: Obj, now: datetime) -> Cells:
    job_spec = _map(obj, "spec", "jobTemplate", "spec")
    names, images = _layout_containers(_list(job_spec, "template", "spec", "containers"))
    last = _get(obj, "status", "lastScheduleTime")
    return [
        _name(obj),
        str(_get(obj, "spec", "schedule", default="")),
        _get(obj, "spec", "timeZone") or "<none>",
        _print_bool(_get(obj, "spec", "suspend", default=False)),
        len(_list(obj, "status", "active")),
        "<none>" if last is None else translate_timestamp_since(last, now=now),
        _age(obj, now),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]


# ---------------------------------------------------------------------------
# Services and networking


def _lb_ingress_string(ingress: list[Any]) -> str:
    values = set()
    for entry in ingress:
        if _get(entry, "ip"):
            values.add(str(entry["ip"]))
        elif _get(entry, "hostname"):
            values.add(str(entry["hostname"]))
    return ",".join(sorted(values))


def _service_external_ip(svc: Obj) -> str:
    svc_type = _get(svc, "spec", "type", default="ClusterIP")
    external_ips = [str(ip) for ip in _list(svc, "spec", "externalIPs")]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if svc_type == "LoadBalancer":
        lb_ips = _lb_ingress_string(_list(svc, "status", "loadBalancer", "ingress"))
        if external_ips:
            return ",".join((lb_ips.split(",") if lb_ips else []) + external_ips)
        return lb_ips or "<pending>"
    if svc_type == "ExternalName":
        return str(_get(svc, "spec", "externalName", default=""))
    return "<unknown>"


def service_ports(ports: list[Any]) -> str:
    """``makePortString``: ``80/TCP``, or ``80:30080/TCP`` with a node port."""
    pieces = []
    for port in ports:
        number = _int(_get(port, "port"))
        protocol = _get(port, "protocol", default="TCP")
        node_port = _int(_get(port, "nodePort"))
        pieces.append(
            f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}"
        )
    return ",".join(pieces)


def _cluster_ip(svc: Obj) -> str:
    ip = _get(svc, "spec", "clusterIP")
    if not ip:
        ips = _list(svc, "spec", "clusterIPs")
        ip = ips[0] if ips else ""
    return str(ip) if ip else "<none>"


@_printer(
    "",
    "Service",
    (
        NAME,
        Col("Type", "string", ("core.v1.ServiceSpec", "type")),
        Col("Cluster-IP", "string", ("core.v1.ServiceSpec", "clusterIP")),
        Col("External-IP", "string", ("core.v1.ServiceSpec", "externalIPs")),
        Col("Port(s)", "string", ("core.v1.ServiceSpec", "ports")),
        AGE,
        _selector(("core.v1.ServiceSpec", "selector")),
    ),
)
def _service(obj: Obj, now: datetime) -> Cells:
    return [
        _name(obj),
        str(_get(obj, "spec", "type", default="ClusterIP")),
        _cluster_ip(obj),
        _service_external_ip(obj),
        service_ports(_list(obj, "spec", "ports")) or "<none>",
        _age(obj, now),
        format_labels(_get(obj, "spec", "selector")),
    ]


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_endpoints(endpoints: Obj) -> str:
    """``formatEndpoints``: up to three ``ip:port`` entries, then ``+ N more...``."""
    subsets = _list(endpoints, "subsets")
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for subset in subsets:
        addresses = [str(_get(a, "ip", default="")) for a in _list(subset, "addresses")]
        ports = _list(subset, "ports")
        targets = [(None,)] if not ports else [(_int(_get(p, "port")),) for p in ports]
        for (port,) in targets:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(ip if port is None else _join_host_port(ip, port))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


@_printer(
    "",
    "Endpoints",
    (NAME, Col("Endpoints", "string", ("core.v1.Endpoints", "subsets")), AGE),
)
def _endpoints(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), format_endpoints(obj), _age(obj, now)]


def _list_with_more(items: Iterable[str], *, limit: int = 3) -> str:
    values = list(items)
    text = ",".join(values[:limit])
    if len(values) > limit:
        return f"{text} + {len(values) - limit} more..."
    return text or "<unset>"


def _slice_port(port: Any) -> str:
    if _get(port, "port") is not None:
        return str(_int(port["port"]))
    if _get(port, "name") is not None:
        return str(port["name"])
    return "*"


@_printer(
    "discovery.k8s.io",
    "EndpointSlice",
    (
        NAME,
        Col("AddressType", "string", ("discovery.v1.EndpointSlice", "addressType")),
        Col("Ports", "string", ("discovery.v1.EndpointSlice", "ports")),
        Col("Endpoints", "string", ("discovery.v1.EndpointSlice", "endpoints")),
        AGE,
    ),
)
def _endpoint_slice(obj: Obj, now: datetime) -> Cells:
    addresses = [str(a) for ep in _list(obj, "endpoints") for a in _list(ep, "addresses")]
    return [
        _name(obj),
        str(_get(obj, "addressType", default="")),
        _list_with_more(_slice_port(p) for p in _list(obj, "ports")),
        _list_with_more(addresses),
        _age(obj, now),
    ]


def _ingress_hosts(rules: list[Any]) -> str:
    hosts: list[str] = []
    limit, more = 3, False
    for rule in rules:
        if len(hosts) == limit:
            more = True
        if not more and _get(rule, "host"):
            hosts.append(str(rule["host"]))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - limit} more..." if more else text


@_printer(
    ("networking.k8s.io", "extensions"),
    "Ingress",
    (
        NAME,
        Col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        Col(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        Col(
            "Address", "string", "Address is a list containing ingress points for the load-balancer"
        ),
        Col("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ),
)
def _ingress(obj: Obj, now: datetime) -> Cells:
    return [
        _name(obj),
        _get(obj, "spec", "ingressClassName") or "<none>",
        _ingress_hosts(_list(obj, "spec", "rules")),
        _lb_ingress_string(_list(obj, "status", "loadBalancer", "ingress")),
        "80, 443" if _list(obj, "spec", "tls") else "80",
        _age(obj, now),
    ]


@_printer(
    "networking.k8s.io",
    "IngressClass",
    (
        NAME,
        Col("Controller", "string", "Controller that is responsible for handling this class"),
        Col("Parameters", "string", "A reference to a resource with additional parameters"),
        AGE,
    ),
)
def _ingress_class(obj: Obj, now: datetime) -> Cells:
    params = _get(obj, "spec", "parameters")
    text = "<none>"
    if isinstance(params, dict):
        text = str(params.get("kind") or "")
        if params.get("apiGroup") is not None:
            text += "." + str(params["apiGroup"])
        text += "/" + str(params.get("name") or "")
    controller = str(_get(obj, "spec", "controller", default=""))
    return [_name(obj), controller, text, _age(obj, now)]


@_printer(
    "networking.k8s.io",
    "NetworkPolicy",
    (NAME, Col("Pod-Selector", "string", ("networking.v1.NetworkPolicySpec", "podSelector")), AGE),
)
def _network_policy(obj: Obj, now: datetime) -> Cells:
    selector = _get(obj, "spec", "podSelector", default={})
    return [_name(obj), format_label_selector(selector), _age(obj, now)]


@_printer(
    "networking.k8s.io",
    "ServiceCIDR",
    (NAME, Col("CIDRs", "string", ("networking.v1beta1.ServiceCIDRSpec", "cidrs")), AGE),
)
def _service_cidr(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), ",".join(str(c) for c in _list(obj, "spec", "cidrs")), _age(obj, now)]


@_printer(
    "networking.k8s.io",
    "IPAddress",
    (NAME, Col("ParentRef", "string", ("networking.v1beta1.IPAddressSpec", "parentRef"))),
)
def _ip_address(obj: Obj, now: datetime) -> Cells:
    ref = _get(obj, "spec", "parentRef")
    text = "<none>"
    if isinstance(ref, dict):
        group, resource = str(ref.get("group") or ""), str(ref.get("resource") or "")
        text = (f"{resource}.{group}" if group else resource).lower()
        if ref.get("namespace"):
            text += "/" + str(ref["namespace"])
        text += "/" + str(ref.get("name") or "")
    # Upstream appends an age cell although the columns stop at ParentRef.
    return [_name(obj), text, _age(obj, now)]


# ---------------------------------------------------------------------------
# Nodes, namespaces, config


def _node_roles(node: Obj) -> list[str]:
    roles = set()
    for key, value in _map(node, "metadata", "labels").items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return sorted(roles)


def _node_status(node: Obj) -> str:
    status: list[str] = []
    ready = None
    for cond in _list(node, "status", "conditions"):
        if _get(cond, "type") == "Ready":
            ready = cond  # the last Ready condition wins, as in upstream's map
    if ready is not None:
        status.append("Ready" if _get(ready, "status") == "True" else "NotReady")
    else:
        status.append("Unknown")
    if _get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_address(node: Obj, address_type: str) -> str:
    for address in _list(node, "status", "addresses"):
        if _get(address, "type") == address_type:
            return str(_get(address, "address", default=""))
    return "<none>"


@_printer(
    "",
    "Node",
    (
        NAME,
        Col("Status", "string", "The status of the node"),
        Col("Roles", "string", "The roles of the node"),
        AGE,
        Col("Version", "string", ("core.v1.NodeSystemInfo", "kubeletVersion")),
        Col("Internal-IP", "string", ("core.v1.NodeStatus", "addresses"), 1),
        Col("External-IP", "string", ("core.v1.NodeStatus", "addresses"), 1),
        Col("OS-Image", "string", ("core.v1.NodeSystemInfo", "osImage"), 1),
        Col("Kernel-Version", "string", ("core.v1.NodeSystemInfo", "kernelVersion"), 1),
        Col(
            "Container-Runtime", "string", ("core.v1.NodeSystemInfo", "containerRuntimeVersion"), 1
        ),
    ),
)
def _node(obj: Obj, now: datetime) -> Cells:
    info = _map(obj, "status", "nodeInfo")
    return [
        _name(obj),
        _node_status(obj),
        ",".join(_node_roles(obj)) or "<none>",
        _age(obj, now),
        str(info.get("kubeletVersion") or ""),
        _node_address(obj, "InternalIP"),
        _node_address(obj, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


@_printer("", "Namespace", (NAME, Col("Status", "string", "The status of the namespace"), AGE))
def _namespace(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), str(_get(obj, "status", "phase", default="Active")), _age(obj, now)]


@_printer("", "ConfigMap", (NAME, Col("Data", "string", ("core.v1.ConfigMap", "data")), AGE))
def _config_map(obj: Obj, now: datetime) -> Cells:
    count = len(_map(obj, "data")) + len(_map(obj, "binaryData"))
    return [_name(obj), count, _age(obj, now)]


@_printer(
    "",
    "Secret",
    (
        NAME,
        Col("Type", "string", ("core.v1.Secret", "type")),
        Col("Data", "string", ("core.v1.Secret", "data")),
        AGE,
    ),
)
def _secret(obj: Obj, now: datetime) -> Cells:
    data = _map(obj, "data")
    keys = set(data) | set(_map(obj, "stringData"))
    return [_name(obj), str(_get(obj, "type", default="Opaque")), len(keys), _age(obj, now)]


@_printer(
    "",
    "ServiceAccount",
    (NAME, Col("Secrets", "string", ("core.v1.ServiceAccount", "secrets")), AGE),
)
def _service_account(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), len(_list(obj, "secrets")), _age(obj, now)]


# ---------------------------------------------------------------------------
# Events (core/v1 and events.k8s.io/v1 share one printer upstream)

EVENT_COLUMNS = (
    Col("Last Seen", "string", ("core.v1.Event", "lastTimestamp")),
    Col("Type", "string", ("core.v1.Event", "type")),
    Col("Reason", "string", ("core.v1.Event", "reason")),
    Col("Object", "string", ("core.v1.Event", "involvedObject")),
    Col("Subobject", "string", ("core.v1.ObjectReference", "fieldPath"), 1),
    Col("Source", "string", ("core.v1.Event", "source"), 1),
    Col("Message", "string", ("core.v1.Event", "message")),
    Col("First Seen", "string", ("core.v1.Event", "firstTimestamp"), 1),
    Col("Count", "string", ("core.v1.Event", "count"), 1),
    Col("Name", "string", (_META, "name"), 1, "name"),
)

# events.k8s.io/v1 field → core/v1 field, as the internal conversion maps them.
_EVENTS_V1_FIELDS = {
    "note": "message",
    "regarding": "involvedObject",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}


def _core_event(obj: Obj) -> Obj:
    """The core/v1 shape of an event given in either API's shape."""
    if not any(k in obj for k in ("note", "regarding", "deprecatedSource", "reportingController")):
        return obj
    out = dict(obj)
    for new, old in _EVENTS_V1_FIELDS.items():
        if new in obj:
            out[old] = obj[new]
    return out


def _event_source(event: Obj) -> str:
    component = _get(event, "source", "component") or _get(event, "reportingComponent") or ""
    host = _get(event, "source", "host") or _get(event, "reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def _event_target(event: Obj) -> str:
    kind = str(_get(event, "involvedObject", "kind", default="")).lower()
    name = _get(event, "involvedObject", "name")
    return f"{kind}/{name}" if name else kind


@_printer(("", "events.k8s.io"), "Event", EVENT_COLUMNS)
def _event(obj: Obj, now: datetime) -> Cells:
    event = _core_event(obj)
    first = translate_timestamp_since(event.get("firstTimestamp"), now=now)
    if parse_time(event.get("firstTimestamp")) is None:
        first = translate_timestamp_since(event.get("eventTime"), now=now)
    last = translate_timestamp_since(event.get("lastTimestamp"), now=now)
    if parse_time(event.get("lastTimestamp")) is None:
        last = first
    count = _int(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last = translate_timestamp_since(series.get("lastObservedTime"), now=now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    return [
        last,
        str(event.get("type") or ""),
        str(event.get("reason") or ""),
        _event_target(event),
        str(_get(event, "involvedObject", "fieldPath", default="")),
        _event_source(event),
        str(event.get("message") or "").strip(),
        first,
        count,
        _name(event),
    ]


# ---------------------------------------------------------------------------
# Storage

_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)
_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def access_modes(modes: list[Any]) -> str:
    """``GetAccessModesAsString``: ``RWO,ROX,RWX,RWOP`` in that fixed order."""
    present = set(modes)
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _storage_class_of(obj: Obj) -> str:
    annotations = _map(obj, "metadata", "annotations")
    if _BETA_STORAGE_CLASS in annotations:
        return str(annotations[_BETA_STORAGE_CLASS])
    return str(_get(obj, "spec", "storageClassName", default=""))


def _phase(obj: Obj, default: str) -> str:
    if _get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    return str(_get(obj, "status", "phase", default=default))


@_printer(
    "",
    "PersistentVolume",
    (
        NAME,
        Col("Capacity", "string", ("core.v1.PersistentVolumeSpec", "capacity")),
        Col("Access Modes", "string", ("core.v1.PersistentVolumeSpec", "accessModes")),
        Col(
            "Reclaim Policy",
            "string",
            ("core.v1.PersistentVolumeSpec", "persistentVolumeReclaimPolicy"),
        ),
        Col("Status", "string", ("core.v1.PersistentVolumeStatus", "phase")),
        Col("Claim", "string", ("core.v1.PersistentVolumeSpec", "claimRef")),
        Col("StorageClass", "string", "StorageClass of the pv"),
        Col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        Col("Reason", "string", ("core.v1.PersistentVolumeStatus", "reason")),
        AGE,
        Col("VolumeMode", "string", ("core.v1.PersistentVolumeSpec", "volumeMode"), 1),
    ),
)
def _persistent_volume(obj: Obj, now: datetime) -> Cells:
    claim = _get(obj, "spec", "claimRef")
    claim_text = ""
    if isinstance(claim, dict):
        claim_text = f"{claim.get('namespace') or ''}/{claim.get('name') or ''}"
    return [
        _name(obj),
        format_quantity(_get(obj, "spec", "capacity", "storage")),
        access_modes(_list(obj, "spec", "accessModes")),
        str(_get(obj, "spec", "persistentVolumeReclaimPolicy", default="Retain")),
        _phase(obj, "Pending"),
        claim_text,
        _storage_class_of(obj),
        _get(obj, "spec", "volumeAttributesClassName") or "<unset>",
        str(_get(obj, "status", "reason", default="")),
        _age(obj, now),
        str(_get(obj, "spec", "volumeMode", default="Filesystem")),
    ]


@_printer(
    "",
    "PersistentVolumeClaim",
    (
        NAME,
        Col("Status", "string", ("core.v1.PersistentVolumeClaimStatus", "phase")),
        Col("Volume", "string", ("core.v1.PersistentVolumeClaimSpec", "volumeName")),
        Col("Capacity", "string", ("core.v1.PersistentVolumeClaimStatus", "capacity")),
        Col("Access Modes", "string", ("core.v1.PersistentVolumeClaimStatus", "accessModes")),
        Col("StorageClass", "string", "StorageClass of the pvc"),
        Col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        AGE,
        Col("VolumeMode", "string", ("core.v1.PersistentVolumeClaimSpec", "volumeMode"), 1),
    ),
)
def _persistent_volume_claim(obj: Obj, now: datetime) -> Cells:
    volume = str(_get(obj, "spec", "volumeName", default=""))
    capacity = modes = ""
    if volume:
        modes = access_modes(_list(obj, "status", "accessModes"))
        capacity = format_quantity(_get(obj, "status", "capacity", "storage"))
    return [
        _name(obj),
        _phase(obj, "Pending"),
        volume,
        capacity,
        modes,
        _storage_class_of(obj),
        _get(obj, "spec", "volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        str(_get(obj, "spec", "volumeMode", default="Filesystem")),
    ]


def _is_default_class(obj: Obj) -> bool:
    annotations = _map(obj, "metadata", "annotations")
    return (
        annotations.get("storageclass.kubernetes.io/is-default-class") == "true"
        or annotations.get("storageclass.beta.kubernetes.io/is-default-class") == "true"
    )


@_printer(
    "storage.k8s.io",
    "StorageClass",
    (
        NAME,
        Col("Provisioner", "string", ("storage.v1.StorageClass", "provisioner")),
        Col("ReclaimPolicy", "string", ("storage.v1.StorageClass", "reclaimPolicy")),
        Col("VolumeBindingMode", "string", ("storage.v1.StorageClass", "volumeBindingMode")),
        Col("AllowVolumeExpansion", "string", ("storage.v1.StorageClass", "allowVolumeExpansion")),
        AGE,
    ),
)
def _storage_class(obj: Obj, now: datetime) -> Cells:
    name = _name(obj) + (" (default)" if _is_default_class(obj) else "")
    return [
        name,
        str(obj.get("provisioner") or ""),
        str(obj.get("reclaimPolicy") or "Delete"),
        str(obj.get("volumeBindingMode") or "Immediate"),
        bool(obj.get("allowVolumeExpansion") or False),
        _age(obj, now),
    ]


@_printer(
    "storage.k8s.io",
    "CSIDriver",
    (
        NAME,
        Col("AttachRequired", "boolean", ("storage.v1.CSIDriverSpec", "attachRequired")),
        Col("PodInfoOnMount", "boolean", ("storage.v1.CSIDriverSpec", "podInfoOnMount")),
        Col("StorageCapacity", "boolean", ("storage.v1.CSIDriverSpec", "storageCapacity")),
        Col("TokenRequests", "string", ("storage.v1.CSIDriverSpec", "tokenRequests")),
        Col("RequiresRepublish", "boolean", ("storage.v1.CSIDriverSpec", "requiresRepublish")),
        Col("Modes", "string", ("storage.v1.CSIDriverSpec", "volumeLifecycleModes")),
        AGE,
    ),
)
def _csi_driver(obj: Obj, now: datetime) -> Cells:
    spec = _map(obj, "spec")
    tokens = spec.get("tokenRequests")
    token_text = "<unset>"
    if isinstance(tokens, list):
        token_text = ",".join(str(_get(t, "audience", default="")) for t in tokens)
    modes = [str(m) for m in (spec.get("volumeLifecycleModes") or ["Persistent"])]
    return [
        _name(obj),
        spec.get("attachRequired") is not False,
        spec.get("podInfoOnMount") is True,
        spec.get("storageCapacity") is True,
        token_text,
        spec.get("requiresRepublish") is True,
        ",".join(modes) or "<none>",
        _age(obj, now),
    ]


@_printer(
    "storage.k8s.io",
    "CSINode",
    (
        NAME,
        Col(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        AGE,
    ),
)
def _csi_node(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), len(_list(obj, "spec", "drivers")), _age(obj, now)]


@_printer(
    "storage.k8s.io",
    "VolumeAttachment",
    (
        NAME,
        Col("Attacher", "string", ("storage.v1.VolumeAttachmentSpec", "attacher"), format="name"),
        Col("PV", "string", ("storage.v1.VolumeAttachmentSource", "persistentVolumeName")),
        Col("Node", "string", ("storage.v1.VolumeAttachmentSpec", "nodeName")),
        Col("Attached", "boolean", ("storage.v1.VolumeAttachmentStatus", "attached")),
        AGE,
    ),
)
def _volume_attachment(obj: Obj, now: datetime) -> Cells:
    return [
        _name(obj),
        str(_get(obj, "spec", "attacher", default="")),
        str(_get(obj, "spec", "source", "persistentVolumeName", default="")),
        str(_get(obj, "spec", "nodeName", default="")),
        _get(obj, "status", "attached") is True,
        _age(obj, now),
    ]


# ---------------------------------------------------------------------------
# Policy, quota, autoscaling


@_printer(
    "policy",
    "PodDisruptionBudget",
    (
        NAME,
        Col("Min Available", "string", "The minimum number of pods that must be available."),
        Col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        Col(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ),
)
def _pdb(obj: Obj, now: datetime) -> Cells:
    min_available = _get(obj, "spec", "minAvailable")
    max_unavailable = _get(obj, "spec", "maxUnavailable")
    return [
        _name(obj),
        "N/A" if min_available is None else _int_or_string(min_available),
        "N/A" if max_unavailable is None else _int_or_string(max_unavailable),
        _int(_get(obj, "status", "disruptionsAllowed")),
        _age(obj, now),
    ]


@_printer(
    "",
    "ResourceQuota",
    (
        NAME,
        Col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        Col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent "
            "of contention on the node.",
        ),
        AGE,
    ),
)
def _resource_quota(obj: Obj, now: datetime) -> Cells:
    hard, used = _map(obj, "status", "hard"), _map(obj, "status", "used")
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        text = (
            f"{resource}: {format_quantity(used.get(resource))}/{format_quantity(hard[resource])}"
        )
        pieces = resource.split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(text)
    return [_name(obj), ", ".join(requests), ", ".join(limits), _age(obj, now)]


def _hpa_v2_shape(obj: Obj) -> tuple[list[Any], list[Any]]:
    """Spec and status metrics, converting the autoscaling/v1 CPU fields if present."""
    spec, status = _map(obj, "spec"), _map(obj, "status")
    metrics = _list(spec, "metrics")
    current = _list(status, "currentMetrics")
    target_cpu = spec.get("targetCPUUtilizationPercentage")
    if not metrics and target_cpu is not None:
        metrics = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": target_cpu},
                },
            }
        ]
    current_cpu = status.get("currentCPUUtilizationPercentage")
    if not current and current_cpu is not None:
        current = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": current_cpu}},
            }
        ]
    return metrics, current


def _hpa_value_metric(spec: Any, status: Any, key: str) -> str:
    """External and Object metrics: a value or an average-value target."""
    target = _map(spec, key, "target")
    if target.get("averageValue") is not None:
        current = "<unknown>"
        if _get(status, key, "current", "averageValue") is not None:
            current = format_quantity(status[key]["current"]["averageValue"])
        return f"{current}/{format_quantity(target['averageValue'])} (avg)"
    current = "<unknown>"
    if _get(status, key) is not None:
        current = _quantity_ptr(_get(status, key, "current", "value"))
    return f"{current}/{_quantity_ptr(target.get('value'))}"


def _hpa_resource_metric(spec: Any, status: Any, key: str) -> str:
    """Resource and ContainerResource metrics: utilization or average-value target."""
    name = str(_get(spec, key, "name", default=""))
    target = _map(spec, key, "target")
    if target.get("averageValue") is not None:
        current = "<unknown>"
        if _get(status, key) is not None:
            current = _quantity_ptr(_get(status, key, "current", "averageValue"))
        return f"{name}: {current}/{format_quantity(target['averageValue'])}"
    current = "<unknown>"
    utilization = _get(status, key, "current", "averageUtilization")
    if utilization is not None:
        current = f"{_int(utilization)}%"
    goal = "<auto>"
    if target.get("averageUtilization") is not None:
        goal = f"{_int(target['averageUtilization'])}%"
    return f"{name}: {current}/{goal}"


def _hpa_metric(spec: Any, status: Any) -> str:
    metric_type = _get(spec, "type")
    if metric_type == "External":
        return _hpa_value_metric(spec, status, "external")
    if metric_type == "Object":
        return _hpa_value_metric(spec, status, "object")
    if metric_type == "Pods":
        current = "<unknown>"
        if _get(status, "pods") is not None:
            current = _quantity_ptr(_get(status, "pods", "current", "averageValue"))
        return f"{current}/{_quantity_ptr(_get(spec, 'pods', 'target', 'averageValue'))}"
    if metric_type == "Resource":
        return _hpa_resource_metric(spec, status, "resource")
    if metric_type == "ContainerResource":
        return _hpa_resource_metric(spec, status, "containerResource")
    return "<unknown type>"


def format_hpa_metrics(specs: list[Any], statuses: list[Any]) -> str:
    """``formatHPAMetrics``: two targets at most, then ``+ N more...``."""
    if not specs:
        return "<none>"
    items = [
        _hpa_metric(spec, statuses[i] if i < len(statuses) else None)
        for i, spec in enumerate(specs)
    ]
    text = ", ".join(items[:2])
    return f"{text} + {len(items) - 2} more..." if len(items) > 2 else text


@_printer(
    "autoscaling",
    "HorizontalPodAutoscaler",
    (
        NAME,
        Col(
            "Reference", "string", ("autoscaling.v2.HorizontalPodAutoscalerSpec", "scaleTargetRef")
        ),
        Col("Targets", "string", ("autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics")),
        Col("MinPods", "string", ("autoscaling.v2.HorizontalPodAutoscalerSpec", "minReplicas")),
        Col("MaxPods", "string", ("autoscaling.v2.HorizontalPodAutoscalerSpec", "maxReplicas")),
        Col(
            "Replicas",
            "string",
            ("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas"),
        ),
        AGE,
    ),
)
def _hpa(obj: Obj, now: datetime) -> Cells:
    metrics, current = _hpa_v2_shape(obj)
    ref = _map(obj, "spec", "scaleTargetRef")
    min_replicas = _get(obj, "spec", "minReplicas")
    return [
        _name(obj),
        f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
        format_hpa_metrics(metrics, current),
        "<unset>" if min_replicas is None else str(_int(min_replicas)),
        _int(_get(obj, "spec", "maxReplicas")),
        _int(_get(obj, "status", "currentReplicas")),
        _age(obj, now),
    ]


@_printer(
    "autoscaling",
    "Scale",
    (
        Col("Name", "string", (_META, "name")),
        Col("Desired", "integer", ("autoscaling.v1.ScaleSpec", "replicas")),
        Col("Available", "integer", ("autoscaling.v1.ScaleStatus", "replicas")),
        AGE,
    ),
)
def _scale(obj: Obj, now: datetime) -> Cells:
    return [
        _name(obj),
        _int(_get(obj, "spec", "replicas")),
        _int(_get(obj, "status", "replicas")),
        _age(obj, now),
    ]


# ---------------------------------------------------------------------------
# RBAC, certificates, coordination, scheduling, node


def subjects_strings(subjects: list[Any]) -> tuple[list[str], list[str], list[str]]:
    """``rbac.SubjectsStrings``: users, groups and ``namespace/name`` service accounts."""
    users, groups, sas = [], [], []
    for subject in subjects:
        kind, name = _get(subject, "kind"), str(_get(subject, "name", default=""))
        if kind == "ServiceAccount":
            sas.append(f"{_get(subject, 'namespace', default='')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return users, groups, sas


def _binding_columns(what: str, definition: str) -> tuple[Col, ...]:
    return (
        NAME,
        Col("Role", "string", (definition, "roleRef")),
        AGE,
        Col("Users", "string", f"Users in the {what}", 1),
        Col("Groups", "string", f"Groups in the {what}", 1),
        Col("ServiceAccounts", "string", f"ServiceAccounts in the {what}", 1),
    )


def _binding(obj: Obj, now: datetime) -> Cells:
    ref = _map(obj, "roleRef")
    users, groups, sas = subjects_strings(_list(obj, "subjects"))
    return [
        _name(obj),
        f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
        _age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(sas),
    ]


_printer(
    "rbac.authorization.k8s.io",
    "RoleBinding",
    _binding_columns("roleBinding", "rbac.v1.RoleBinding"),
)(_binding)
_printer(
    "rbac.authorization.k8s.io",
    "ClusterRoleBinding",
    _binding_columns("clusterRoleBinding", "rbac.v1.ClusterRoleBinding"),
)(_binding)


def csr_condition(obj: Obj) -> str:
    """``extractCSRStatus``: Approved/Denied/Pending, then ``,Failed`` and ``,Issued``."""
    types = {_get(c, "type") for c in _list(obj, "status", "conditions")}
    if "Denied" in types:
        status = "Denied"
    elif "Approved" in types:
        status = "Approved"
    else:
        status = "Pending"
    if "Failed" in types:
        status += ",Failed"
    if _get(obj, "status", "certificate"):
        status += ",Issued"
    return status


@_printer(
    "certificates.k8s.io",
    "CertificateSigningRequest",
    (
        NAME,
        AGE,
        Col(
            "SignerName", "string", ("certificates.v1.CertificateSigningRequestSpec", "signerName")
        ),
        Col("Requestor", "string", ("certificates.v1.CertificateSigningRequestSpec", "request")),
        Col(
            "RequestedDuration",
            "string",
            ("certificates.v1.CertificateSigningRequestSpec", "expirationSeconds"),
        ),
        Col(
            "Condition", "string", ("certificates.v1.CertificateSigningRequestStatus", "conditions")
        ),
    ),
)
def _csr(obj: Obj, now: datetime) -> Cells:
    expiration = _get(obj, "spec", "expirationSeconds")
    duration = "<none>" if expiration is None else human_duration(_int(expiration))
    return [
        _name(obj),
        _age(obj, now),
        _get(obj, "spec", "signerName") or "<none>",
        str(_get(obj, "spec", "username", default="")),
        duration,
        csr_condition(obj),
    ]


@_printer(
    "certificates.k8s.io",
    "ClusterTrustBundle",
    (
        NAME,
        Col("SignerName", "string", ("certificates.v1alpha1.ClusterTrustBundleSpec", "signerName")),
    ),
)
def _cluster_trust_bundle(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), _get(obj, "spec", "signerName") or "<none>"]


@_printer(
    "coordination.k8s.io",
    "Lease",
    (NAME, Col("Holder", "string", ("coordination.v1.LeaseSpec", "holderIdentity")), AGE),
)
def _lease(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), str(_get(obj, "spec", "holderIdentity", default="")), _age(obj, now)]


@_printer(
    "coordination.k8s.io",
    "LeaseCandidate",
    (
        NAME,
        Col("LeaseName", "string", ("coordination.v1alpha2.LeaseCandidateSpec", "leaseName")),
        Col("BinaryVersion", "string", ""),
        Col("EmulationVersion", "string", ""),
        AGE,
    ),
)
def _lease_candidate(obj: Obj, now: datetime) -> Cells:
    spec = _map(obj, "spec")
    return [
        _name(obj),
        str(spec.get("leaseName") or ""),
        str(spec.get("binaryVersion") or ""),
        str(spec.get("emulationVersion") or ""),
        _age(obj, now),
    ]


@_printer(
    "scheduling.k8s.io",
    "PriorityClass",
    (
        NAME,
        Col("Value", "integer", ("scheduling.v1.PriorityClass", "value")),
        Col("Global-Default", "boolean", ("scheduling.v1.PriorityClass", "globalDefault")),
        AGE,
        Col("PreemptionPolicy", "string", ("scheduling.v1.PriorityClass", "preemptionPolicy")),
    ),
)
def _priority_class(obj: Obj, now: datetime) -> Cells:
    return [
        _name(obj),
        _int(obj.get("value")),
        obj.get("globalDefault") is True,
        _age(obj, now),
        str(obj.get("preemptionPolicy") or "PreemptLowerPriority"),
    ]


@_printer("node.k8s.io", "RuntimeClass", (NAME, Col("Handler", "string", ""), AGE))
def _runtime_class(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), str(obj.get("handler") or ""), _age(obj, now)]


# ---------------------------------------------------------------------------
# Admission, flow control, API services, component status

_WEBHOOKS = Col(
    "Webhooks",
    "integer",
    "Webhooks indicates the number of webhooks registered in this configuration",
)


def _webhook_configuration(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), len(_list(obj, "webhooks")), _age(obj, now)]


for _kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
    _printer("admissionregistration.k8s.io", _kind, (NAME, _WEBHOOKS, AGE))(_webhook_configuration)

_PARAM_KIND = Col(
    "ParamKind",
    "string",
    "ParamKind specifies the kind of resources used to parameterize this policy",
)
_POLICY_NAME = Col(
    "PolicyName",
    "string",
    "PolicyName indicates the policy definition which the policy binding binded to",
)
_PARAM_REF = Col(
    "ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"
)


def _param_kind(obj: Obj) -> str:
    kind = _get(obj, "spec", "paramKind")
    if not isinstance(kind, dict):
        return "<unset>"
    return f"{kind.get('apiVersion') or ''}/{kind.get('kind') or ''}"


def _policy(field_name: str) -> CellsFn:
    def cells(obj: Obj, now: datetime) -> Cells:
        count = len(_list(obj, "spec", field_name))
        return [_name(obj), count, _param_kind(obj), _age(obj, now)]

    return cells


def _policy_binding(obj: Obj, now: datetime) -> Cells:
    ref = _get(obj, "spec", "paramRef")
    text = "<unset>"
    if isinstance(ref, dict):
        if ref.get("name"):
            namespace = ref.get("namespace") or "*"
            text = f"{namespace}/{ref['name']}"
        elif ref.get("selector") is not None:
            text = _go_label_selector_struct(ref["selector"])
    policy = str(_get(obj, "spec", "policyName", default=""))
    return [_name(obj), policy, text, _age(obj, now)]


_printer(
    "admissionregistration.k8s.io",
    "ValidatingAdmissionPolicy",
    (
        NAME,
        Col(
            "Validations",
            "integer",
            "Validations indicates the number of validation rules defined in this configuration",
        ),
        _PARAM_KIND,
        AGE,
    ),
)(_policy("validations"))
_printer(
    "admissionregistration.k8s.io",
    "MutatingAdmissionPolicy",
    (
        NAME,
        Col(
            "Mutations",
            "integer",
            "Mutation indicates the number of mutations rules defined in this configuration",
        ),
        _PARAM_KIND,
        AGE,
    ),
)(_policy("mutations"))
for _kind in ("ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicyBinding"):
    _printer("admissionregistration.k8s.io", _kind, (NAME, _POLICY_NAME, _PARAM_REF, AGE))(
        _policy_binding
    )


@_printer(
    "flowcontrol.apiserver.k8s.io",
    "FlowSchema",
    (
        NAME,
        Col(
            "PriorityLevel",
            "string",
            ("flowcontrol.v1.PriorityLevelConfigurationReference", "name"),
        ),
        Col(
            "MatchingPrecedence", "string", ("flowcontrol.v1.FlowSchemaSpec", "matchingPrecedence")
        ),
        Col(
            "DistinguisherMethod",
            "string",
            ("flowcontrol.v1.FlowSchemaSpec", "distinguisherMethod"),
        ),
        AGE,
        Col(
            "MissingPL", "string", "references a broken or non-existent PriorityLevelConfiguration"
        ),
    ),
)
def _flow_schema(obj: Obj, now: datetime) -> Cells:
    method = _get(obj, "spec", "distinguisherMethod", "type")
    missing = "?"
    for cond in _list(obj, "status", "conditions"):
        if _get(cond, "type") == "Dangling":
            missing = str(_get(cond, "status", default=""))
            break
    return [
        _name(obj),
        str(_get(obj, "spec", "priorityLevelConfiguration", "name", default="")),
        _int(_get(obj, "spec", "matchingPrecedence")),
        "<none>" if method is None else str(method),
        _age(obj, now),
        missing,
    ]


@_printer(
    "flowcontrol.apiserver.k8s.io",
    "PriorityLevelConfiguration",
    (
        NAME,
        Col("Type", "string", ("flowcontrol.v1.PriorityLevelConfigurationSpec", "type")),
        Col(
            "NominalConcurrencyShares",
            "string",
            ("flowcontrol.v1.LimitedPriorityLevelConfiguration", "nominalConcurrencyShares"),
        ),
        Col("Queues", "string", ("flowcontrol.v1.QueuingConfiguration", "queues")),
        Col("HandSize", "string", ("flowcontrol.v1.QueuingConfiguration", "handSize")),
        Col(
            "QueueLengthLimit",
            "string",
            ("flowcontrol.v1.QueuingConfiguration", "queueLengthLimit"),
        ),
        AGE,
    ),
)
def _priority_level(obj: Obj, now: datetime) -> Cells:
    shares: Any = "<none>"
    queues: Any = "<none>"
    hand: Any = "<none>"
    length: Any = "<none>"
    limited = _get(obj, "spec", "limited")
    if isinstance(limited, dict):
        shares = _int(limited.get("nominalConcurrencyShares"))
        queuing = _get(limited, "limitResponse", "queuing")
        if isinstance(queuing, dict):
            queues = _int(queuing.get("queues"))
            hand = _int(queuing.get("handSize"))
            length = _int(queuing.get("queueLengthLimit"))
    kind = str(_get(obj, "spec", "type", default=""))
    return [_name(obj), kind, shares, queues, hand, length, _age(obj, now)]


@_printer(
    "internal.apiserver.k8s.io",
    "StorageVersion",
    (
        NAME,
        Col(
            "CommonEncodingVersion",
            "string",
            ("apiserverinternal.v1alpha1.StorageVersionStatus", "commonEncodingVersion"),
        ),
        Col(
            "StorageVersions",
            "string",
            ("apiserverinternal.v1alpha1.StorageVersionStatus", "storageVersions"),
        ),
        AGE,
    ),
)
def _storage_version(obj: Obj, now: datetime) -> Cells:
    versions = _list(obj, "status", "storageVersions")
    texts = (
        f"{_get(v, 'apiServerID', default='')}={_get(v, 'encodingVersion', default='')}"
        for v in versions
    )
    common = _get(obj, "status", "commonEncodingVersion")
    return [
        _name(obj),
        "<unset>" if common is None else str(common),
        _list_with_more(texts),
        _age(obj, now),
    ]


@_printer(
    "apiregistration.k8s.io",
    "APIService",
    (
        NAME,
        Col("Service", "string", "The reference to the service that hosts this API endpoint."),
        Col("Available", "string", "Whether this service is available."),
        AGE,
    ),
)
def _api_service(obj: Obj, now: datetime) -> Cells:
    service = _get(obj, "spec", "service")
    where = "Local"
    if isinstance(service, dict):
        where = f"{service.get('namespace') or ''}/{service.get('name') or ''}"
    available = "Unknown"
    for cond in _list(obj, "status", "conditions"):
        if _get(cond, "type") == "Available":
            status, reason = str(_get(cond, "status", default="")), _get(cond, "reason")
            available = status if status == "True" or not reason else f"{status} ({reason})"
            break
    return [_name(obj), where, available, _age(obj, now)]


@_printer(
    "",
    "ComponentStatus",
    (
        NAME,
        Col("Status", "string", "Status of the component conditions"),
        Col("Message", "string", "Message of the component conditions"),
        Col("Error", "string", "Error of the component conditions"),
    ),
)
def _component_status(obj: Obj, now: datetime) -> Cells:
    status, message, error = "Unknown", "", ""
    for cond in _list(obj, "conditions"):
        if _get(cond, "type") == "Healthy":
            status = "Healthy" if _get(cond, "status") == "True" else "Unhealthy"
            message = str(_get(cond, "message", default=""))
            error = str(_get(cond, "error", default=""))
            break
    return [_name(obj), status, message, error]


# ---------------------------------------------------------------------------
# Dynamic resource allocation (resource.k8s.io)


@_printer("resource.k8s.io", "DeviceClass", (NAME, AGE))
def _device_class(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), _age(obj, now)]


_printer("resource.k8s.io", "ResourceClaimTemplate", (NAME, AGE))(_device_class)


@_printer(
    "resource.k8s.io",
    "ResourceClaim",
    (
        NAME,
        Col(
            "State",
            "string",
            "A summary of the current state (allocated, pending, reserved, etc.).",
        ),
        AGE,
    ),
)
def _resource_claim(obj: Obj, now: datetime) -> Cells:
    states = []
    deleting = _get(obj, "metadata", "deletionTimestamp") is not None
    if deleting:
        states.append("deleted")
    if _get(obj, "status", "allocation") is None:
        if not deleting:
            states.append("pending")
    else:
        states.append("allocated")
        if _list(obj, "status", "reservedFor"):
            states.append("reserved")
    return [_name(obj), ",".join(states), _age(obj, now)]


@_printer(
    "resource.k8s.io",
    "ResourceSlice",
    (
        NAME,
        Col("Node", "string", ("resource.v1beta1.ResourceSliceSpec", "nodeName")),
        Col("Driver", "string", ("resource.v1beta1.ResourceSliceSpec", "driver")),
        Col("Pool", "string", ("resource.v1beta1.ResourcePool", "name")),
        AGE,
    ),
)
def _resource_slice(obj: Obj, now: datetime) -> Cells:
    spec = _map(obj, "spec")
    return [
        _name(obj),
        str(spec.get("nodeName") or ""),
        str(spec.get("driver") or ""),
        str(_get(spec, "pool", "name", default="")),
        _age(obj, now),
    ]


# ---------------------------------------------------------------------------
# The default convertor (kinds without a printer)

DEFAULT_COLUMNS = (NAME, Col("Created At", "date", (_META, "creationTimestamp")))


def _default_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), rfc3339(_get(obj, "metadata", "creationTimestamp"))]


_DEFAULT_PRINTER = Printer(DEFAULT_COLUMNS, _default_cells)


# ---------------------------------------------------------------------------
# Public API for built-in kinds


def has_printer(group: str, kind: str) -> bool:
    """Whether upstream has a dedicated printer (else the NAME / CREATED AT default)."""
    return (group, kind) in _PRINTERS


def _printer_for(group: str, kind: str) -> Printer:
    return _PRINTERS.get((group, kind), _DEFAULT_PRINTER)


@functools.cache
def _columns_cached(group: str, kind: str) -> tuple[tuple[tuple[str, Any], ...], ...]:
    return tuple(tuple(_column_dict(c).items()) for c in _printer_for(group, kind).columns)


def column_definitions(group: str, kind: str) -> list[dict[str, Any]]:
    """``columnDefinitions`` of a built-in kind, priority-1 (wide) columns included."""
    return [dict(items) for items in _columns_cached(group, kind)]


def row_cells(group: str, kind: str, obj: Obj, *, now: datetime) -> Cells:
    """The cells of one object's row, one per column of :func:`column_definitions`."""
    return _printer_for(group, kind).cells(obj, now)


def row_conditions(group: str, kind: str, obj: Obj) -> list[dict[str, Any]]:
    """Row conditions (``Completed`` for finished pods), usually empty."""
    fn = _printer_for(group, kind).conditions
    return fn(obj) if fn is not None else []


# ---------------------------------------------------------------------------
# Custom resources


def _crd_columns(version_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The version's printer columns, or upstream's lone ``Age`` column when it has none."""
    columns = version_spec.get("additionalPrinterColumns") or []
    if columns:
        return [dict(c) for c in columns]
    return [
        {
            "name": "Age",
            "type": "date",
            "description": _doc((_META, "creationTimestamp")),
            "jsonPath": ".metadata.creationTimestamp",
        }
    ]


def _json_path(column: dict[str, Any]) -> str:
    return str(column.get("jsonPath") or column.get("JSONPath") or "")


def crd_column_definitions(version_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns of a custom resource version: ``Name``, then its printer columns."""
    out = [_column_dict(NAME)]
    for col in _crd_columns(version_spec):
        description = col.get("description") or (
            f"Custom resource definition column (in JSONPath format): {_json_path(col)}"
        )
        out.append(
            {
                "name": str(col.get("name") or ""),
                "type": str(col.get("type") or ""),
                "format": str(col.get("format") or ""),
                "description": description,
                "priority": _int(col.get("priority")),
            }
        )
    return out


@functools.lru_cache(maxsize=1024)
def _compiled(path: str) -> jsonpath.Template:
    return jsonpath.parse("{" + path + "}")


def crd_cell(column: dict[str, Any], obj: Obj, *, now: datetime) -> Any:
    """One printer-column cell: the first JSONPath result, typed as the column says."""
    try:
        results = jsonpath.find_results(_compiled(_json_path(column)), obj)
    except jsonpath.JSONPathError:
        return None
    if not results or not results[0]:
        return None
    value = results[0][0]
    col_type = column.get("type")
    if col_type == "string":
        return jsonpath.to_text(value)
    return _typed_cell(str(col_type), value, now=now)


def _typed_cell(col_type: str, value: Any, *, now: datetime) -> Any:
    """``cellForJSONValue``: None whenever the value does not fit the column type."""
    if value is None or isinstance(value, bool) and col_type in ("integer", "number"):
        return None
    if col_type == "integer" and isinstance(value, int | float):
        return int(value)
    if col_type == "number" and isinstance(value, int | float):
        return float(value)
    if col_type == "boolean" and isinstance(value, bool):
        return value
    if col_type == "date" and isinstance(value, str):
        return _date_cell(value, now=now)
    return None


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _date_cell(value: str, *, now: datetime) -> str:
    """``metav1.Time.UnmarshalQueryParameter`` then an age, as the CRD printer does."""
    if value in ("", "null"):
        return "<unknown>"
    match = _RFC3339.match(value)
    if match is None:
        return "<invalid>"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return "<invalid>"
    if parsed.year <= 1:
        return "<unknown>"
    return _between(parsed, _aware(now))


def crd_row_cells(version_spec: dict[str, Any], obj: Obj, *, now: datetime) -> Cells:
    """Cells for a custom resource: its name, then one cell per printer column."""
    return [_name(obj)] + [crd_cell(c, obj, now=now) for c in _crd_columns(version_spec)]


# ---------------------------------------------------------------------------
# Tables


def partial_object_metadata(obj: Obj, *, api_version: str = TABLE_API_VERSION) -> Obj:
    """``meta.AsPartialObjectMetadata``: kind, apiVersion and the whole metadata."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": obj.get("metadata") or {},
    }


def check_include_object(value: str) -> str:
    """Validate ``includeObject`` (empty means ``Metadata``) as upstream does."""
    if value in ("", *INCLUDE_OBJECT_VALUES):
        return value or "Metadata"
    supported = ", ".join(f'"{v}"' for v in INCLUDE_OBJECT_VALUES)
    raise errors.bad_request(
        "Unable to convert to Table as requested: includeObject: Unsupported value: "
        f'"{value}": supported values: {supported}'
    )


Row = tuple[Cells, Obj] | tuple[Cells, Obj, list[dict[str, Any]]]


def _row(row: Row, *, include: str, api_version: str) -> Obj:
    cells, obj = row[0], row[1]
    conditions = row[2] if len(row) > 2 else []
    out: Obj = {"cells": cells}
    if conditions:
        out["conditions"] = conditions
    if include == "Object":
        out["object"] = obj
    elif include == "Metadata":
        out["object"] = partial_object_metadata(obj, api_version=api_version)
    else:
        out["object"] = None
    return out


def table(
    columns: list[dict[str, Any]] | None,
    rows_with_objects: Iterable[Row],
    *,
    resource_version: str,
    continue_token: str | None = None,
    include_object: str = "Metadata",
    no_headers: bool = False,
    remaining_item_count: int | None = None,
    api_version: str = TABLE_API_VERSION,
) -> Obj:
    """A ``meta.k8s.io/v1`` Table from column definitions and (cells, object[, conditions]).

    ``include_object`` is ``Metadata`` (upstream's default: each row carries a
    PartialObjectMetadata), ``Object`` (the full object) or ``None`` (null).
    ``no_headers`` drops the column definitions, as watches do after the first
    event.
    """
    include = check_include_object(include_object)
    metadata: Obj = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata,
        "columnDefinitions": None if no_headers else columns,
        "rows": [_row(r, include=include, api_version=api_version) for r in rows_with_objects],
    }


def table_for(
    group: str,
    kind: str,
    objects: Iterable[Obj],
    *,
    now: datetime,
    resource_version: str,
    continue_token: str | None = None,
    include_object: str = "Metadata",
    no_headers: bool = False,
    remaining_item_count: int | None = None,
    crd_version: dict[str, Any] | None = None,
    api_version: str = TABLE_API_VERSION,
) -> Obj:
    """The whole Table for a list (or one object) of a built-in or custom kind.

    Pass ``crd_version`` (the CRD's ``spec.versions[]`` entry) for custom resources.
    """
    rows: list[Row]
    if crd_version is not None:
        columns = crd_column_definitions(crd_version)
        rows = [(crd_row_cells(crd_version, o, now=now), o) for o in objects]
    else:
        columns = column_definitions(group, kind)
        rows = [
            (row_cells(group, kind, o, now=now), o, row_conditions(group, kind, o)) for o in objects
        ]
    return table(
        columns,
        rows,
        resource_version=resource_version,
        continue_token=continue_token,
        include_object=include_object,
        no_headers=no_headers,
        remaining_item_count=remaining_item_count,
        api_version=api_version,
    )


__all__ = [
    "DEFAULT_COLUMNS",
    "TABLE_API_VERSION",
    "access_modes",
    "check_include_object",
    "column_definitions",
    "crd_cell",
    "crd_column_definitions",
    "crd_row_cells",
    "format_endpoints",
    "format_hpa_metrics",
    "format_label_selector",
    "format_labels",
    "format_quantity",
    "has_printer",
    "human_duration",
    "human_duration_ns",
    "parse_time",
    "partial_object_metadata",
    "pod_status",
    "row_cells",
    "row_conditions",
    "service_ports",
    "table",
    "table_for",
    "translate_timestamp_since",
]
