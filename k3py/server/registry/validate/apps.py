"""apps/v1 workloads: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

All apps/v1 selectors are immutable after creation (the strategies' ``ValidateUpdate``).
A StatefulSet's pod template is checked for labels/annotations only, as upstream
does (its volumes may name ``volumeClaimTemplates``).
"""

from __future__ import annotations

from typing import Any

from k3py.server.errors import Cause

from . import formats
from .access import get_int, get_map, get_opt_int, get_str, has
from .field import GoValue, Path, forbidden, go_quote, invalid, not_supported, required
from .meta import (
    as_selector,
    immutable_field,
    label_selector_value,
    labels_value,
    nonnegative,
    semantic_equal,
    validate_annotations,
    validate_label_selector,
    validate_labels,
)
from .pod import pod_annotations, validate_template

SPEC = Path("spec")
SELECTOR_MISMATCH = "`selector` does not match template `labels`"


def int_or_percent(value: Any) -> int:
    """``getIntOrPercentValue``: the number, or the percentage's number."""
    if isinstance(value, str):
        if formats.check_percent(value):
            return 0
        return int(value[:-1])
    return value if isinstance(value, int) else 0


def _shown(value: Any) -> GoValue:
    if isinstance(value, str):
        return GoValue(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}")
    return GoValue(f'intstr.IntOrString{{Type:0, IntVal:{value}, StrVal:""}}')


def positive_int_or_percent(value: Any, path: Path) -> list[Cause]:
    if isinstance(value, str):
        return [invalid(path, _shown(value), m) for m in formats.check_percent(value)]
    return nonnegative(path, value if isinstance(value, int) else 0)


def not_more_than_100_percent(value: Any, path: Path) -> list[Cause]:
    if isinstance(value, str) and not formats.check_percent(value) and int(value[:-1]) > 100:
        return [invalid(path, _shown(value), "must not be greater than 100%")]
    return []


def selector_required(spec: dict[str, Any], path: Path, *, what: str) -> list[Cause]:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return [required(path.child("selector"))]
    errs = validate_label_selector(selector, path.child("selector"))
    if not get_map(selector, "matchLabels") and not selector.get("matchExpressions"):
        errs.append(
            invalid(
                path.child("selector"),
                label_selector_value(selector),
                f"empty selector is invalid for {what}",
            )
        )
    return errs


def _restart_always(template: dict[str, Any], tpath: Path, *, kind: str) -> list[Cause]:
    tspec = get_map(template, "spec")
    errs: list[Cause] = []
    if get_str(tspec, "restartPolicy") != "Always":
        errs.append(
            not_supported(
                tpath.child("spec", "restartPolicy"), get_str(tspec, "restartPolicy"), ["Always"]
            )
        )
    if has(tspec, "activeDeadlineSeconds"):
        msg = f"activeDeadlineSeconds in {kind} is not Supported"
        errs.append(forbidden(tpath.child("spec", "activeDeadlineSeconds"), msg))
    return errs


def _replica_template(spec: dict[str, Any], *, kind: str) -> list[Cause]:
    selector = as_selector(spec.get("selector"))
    if selector is None:
        return [
            invalid(
                SPEC.child("selector"),
                label_selector_value(spec.get("selector")),
                "invalid label selector",
            )
        ]
    template = get_map(spec, "template")
    tpath = SPEC.child("template")
    labels = get_map(get_map(template, "metadata"), "labels")
    errs: list[Cause] = []
    if not selector.empty and not selector.matches(labels):
        errs.append(
            invalid(tpath.child("metadata", "labels"), labels_value(labels), SELECTOR_MISMATCH)
        )
    errs += validate_template(template, tpath)
    return errs + _restart_always(template, tpath, kind=kind)


def _strategy(strategy: dict[str, Any], path: Path) -> list[Cause]:
    kind = get_str(strategy, "type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if isinstance(rolling, dict):
            msg = "may not be specified when strategy `type` is 'Recreate'"
            return [forbidden(path.child("rollingUpdate"), msg)]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [
                required(path.child("rollingUpdate"), "this should be defaulted and never be nil")
            ]
        rpath = path.child("rollingUpdate")
        unavailable, surge = rolling.get("maxUnavailable", 0), rolling.get("maxSurge", 0)
        errs = positive_int_or_percent(unavailable, rpath.child("maxUnavailable"))
        errs += positive_int_or_percent(surge, rpath.child("maxSurge"))
        if int_or_percent(unavailable) == 0 and int_or_percent(surge) == 0:
            msg = "may not be 0 when `maxSurge` is 0"
            errs.append(invalid(rpath.child("maxUnavailable"), _shown(unavailable), msg))
        return errs + not_more_than_100_percent(unavailable, rpath.child("maxUnavailable"))
    shown = GoValue(
        f"apps.DeploymentStrategy{{Type:{go_quote(kind)}, "
        "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}"
    )
    return [not_supported(path, shown, ["Recreate", "RollingUpdate"])]


def deployment_spec(spec: dict[str, Any]) -> list[Cause]:
    errs = nonnegative(SPEC.child("replicas"), get_int(spec, "replicas"))
    errs += selector_required(spec, SPEC, what="deployment")
    errs += _replica_template(spec, kind="Deployment")
    errs += _strategy(get_map(spec, "strategy"), SPEC.child("strategy"))
    min_ready = get_int(spec, "minReadySeconds")
    errs += nonnegative(SPEC.child("minReadySeconds"), min_ready)
    errs += nonnegative(
        SPEC.child("revisionHistoryLimit"), get_opt_int(spec, "revisionHistoryLimit")
    )
    deadline = get_opt_int(spec, "progressDeadlineSeconds")
    if deadline is not None:
        errs += nonnegative(SPEC.child("progressDeadlineSeconds"), deadline)
        if deadline <= min_ready:
            errs.append(
                invalid(
                    SPEC.child("progressDeadlineSeconds"),
                    deadline,
                    "must be greater than minReadySeconds",
                )
            )
    return errs


def replica_set_spec(spec: dict[str, Any]) -> list[Cause]:
    errs = nonnegative(SPEC.child("replicas"), get_int(spec, "replicas"))
    errs += nonnegative(SPEC.child("minReadySeconds"), get_int(spec, "minReadySeconds"))
    errs += selector_required(spec, SPEC, what="deployment")
    return errs + _replica_template(spec, kind="ReplicaSet")


def _daemon_strategy(strategy: dict[str, Any], path: Path) -> list[Cause]:
    kind = get_str(strategy, "type")
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        shown = GoValue(
            f"&apps.DaemonSetUpdateStrategy{{Type:{go_quote(kind)}, "
            "RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}"
        )
        return [not_supported(path, shown, ["RollingUpdate", "OnDelete"])]
    rolling = strategy.get("rollingUpdate")
    if not isinstance(rolling, dict):
        return [required(path.child("rollingUpdate"))]
    rpath = path.child("rollingUpdate")
    unavailable, surge = rolling.get("maxUnavailable", 0), rolling.get("maxSurge", 0)
    errs = positive_int_or_percent(unavailable, rpath.child("maxUnavailable"))
    errs += positive_int_or_percent(surge, rpath.child("maxSurge"))
    errs += not_more_than_100_percent(unavailable, rpath.child("maxUnavailable"))
    errs += not_more_than_100_percent(surge, rpath.child("maxSurge"))
    has_unavailable, has_surge = int_or_percent(unavailable) != 0, int_or_percent(surge) != 0
    if has_unavailable and has_surge:
        errs.append(
            invalid(
                rpath.child("maxSurge"),
                _shown(surge),
                "may not be set when maxUnavailable is non-zero",
            )
        )
    elif not has_unavailable and not has_surge:
        errs.append(required(rpath.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
    return errs


def daemon_set_spec(spec: dict[str, Any]) -> list[Cause]:
    errs = validate_label_selector(spec.get("selector"), SPEC.child("selector"))
    selector = as_selector(spec.get("selector"))
    template = get_map(spec, "template")
    tpath = SPEC.child("template")
    labels = get_map(get_map(template, "metadata"), "labels")
    if selector is not None and not selector.matches(labels):
        errs.append(
            invalid(tpath.child("metadata", "labels"), labels_value(labels), SELECTOR_MISMATCH)
        )
    raw = spec.get("selector")
    if (
        isinstance(raw, dict)
        and not get_map(raw, "matchLabels")
        and not raw.get("matchExpressions")
    ):
        errs.append(
            invalid(
                SPEC.child("selector"),
                label_selector_value(raw),
                "empty selector is invalid for daemonset",
            )
        )
    errs += validate_template(template, tpath)
    errs += _restart_always(template, tpath, kind="DaemonSet")
    errs += nonnegative(SPEC.child("minReadySeconds"), get_int(spec, "minReadySeconds"))
    errs += nonnegative(SPEC.child("templateGeneration"), get_int(spec, "templateGeneration"))
    errs += _daemon_strategy(get_map(spec, "updateStrategy"), SPEC.child("updateStrategy"))
    return errs + nonnegative(
        SPEC.child("revisionHistoryLimit"), get_opt_int(spec, "revisionHistoryLimit")
    )


def _retention(policy: Any, path: Path) -> list[Cause]:
    if not isinstance(policy, dict):
        return []
    errs: list[Cause] = []
    for key in ("whenDeleted", "whenScaled"):
        value = get_str(policy, key)
        if value not in ("Retain", "Delete"):
            errs.append(not_supported(path.child(key), value, ["Retain", "Delete"]))
    return errs


def _sts_strategy(strategy: dict[str, Any], path: Path) -> list[Cause]:
    kind = get_str(strategy, "type")
    rolling = strategy.get("rollingUpdate")
    if kind == "":
        return [required(path)]
    if kind == "OnDelete":
        if isinstance(rolling, dict):
            shown = GoValue("&apps.RollingUpdateStatefulSetStrategy{...}")
            return [
                invalid(
                    path.child("rollingUpdate"),
                    shown,
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            ]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return []
        rpath = path.child("rollingUpdate")
        errs = nonnegative(rpath.child("partition"), get_int(rolling, "partition"))
        if has(rolling, "maxUnavailable"):
            value = rolling["maxUnavailable"]
            errs += positive_int_or_percent(value, rpath.child("maxUnavailable"))
            if int_or_percent(value) == 0:
                errs.append(invalid(rpath.child("maxUnavailable"), _shown(value), "cannot be 0"))
            errs += not_more_than_100_percent(value, rpath.child("maxUnavailable"))
        return errs
    shown = GoValue(
        f"apps.StatefulSetUpdateStrategy{{Type:{go_quote(kind)}, "
        "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}"
    )
    return [invalid(path, shown, "must be 'RollingUpdate' or 'OnDelete'")]


def stateful_set_spec(spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    policy = get_str(spec, "podManagementPolicy")
    if not policy:
        errs.append(required(SPEC.child("podManagementPolicy")))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(
            invalid(
                SPEC.child("podManagementPolicy"), policy, "must be 'OrderedReady' or 'Parallel'"
            )
        )
    errs += _sts_strategy(get_map(spec, "updateStrategy"), SPEC.child("updateStrategy"))
    errs += _retention(
        spec.get("persistentVolumeClaimRetentionPolicy"),
        SPEC.child("persistentVolumeClaimRetentionPolicy"),
    )
    errs += nonnegative(SPEC.child("replicas"), get_int(spec, "replicas"))
    errs += nonnegative(SPEC.child("minReadySeconds"), get_int(spec, "minReadySeconds"))
    if has(spec, "ordinals"):
        errs += nonnegative(
            SPEC.child("ordinals.start"), get_int(get_map(spec, "ordinals"), "start")
        )
    errs += selector_required(spec, SPEC, what="statefulset")
    selector = as_selector(spec.get("selector"))
    template = get_map(spec, "template")
    tpath = SPEC.child("template")
    if selector is None:
        errs.append(invalid(SPEC.child("selector"), label_selector_value(spec.get("selector")), ""))
    else:
        meta = get_map(template, "metadata")
        labels = get_map(meta, "labels")
        if not selector.empty and not selector.matches(labels):
            errs.append(
                invalid(tpath.child("metadata", "labels"), labels_value(labels), SELECTOR_MISMATCH)
            )
        errs += validate_labels(labels, tpath.child("labels"))
        errs += validate_annotations(get_map(meta, "annotations"), tpath.child("annotations"))
        errs += pod_annotations(get_map(meta, "annotations"), tpath.child("annotations"))
    return errs + _restart_always(template, tpath, kind="StatefulSet")


def stateful_set_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    mutable = {
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    }
    rest = {k: v for k, v in spec.items() if k not in mutable and v is not None}
    old_rest = {k: v for k, v in old_spec.items() if k not in mutable and v is not None}
    if not semantic_equal(rest, old_rest):
        msg = (
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
            "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
            "forbidden"
        )
        return [forbidden(SPEC, msg)]
    return []


def selector_immutable(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    new, old = spec.get("selector"), old_spec.get("selector")
    return immutable_field(SPEC.child("selector"), new, old, show=label_selector_value(new))


def controller_revision(obj: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    if obj.get("data") is None:
        errs.append(required(Path("data"), "data is mandatory"))
    return errs + nonnegative(Path("revision"), get_int(obj, "revision"))


def controller_revision_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return immutable_field(
        Path("data"), obj.get("data"), old.get("data"), show=GoValue("runtime.RawExtension{...}")
    )
