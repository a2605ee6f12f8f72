"""Pod specs, pod templates and pods (``ValidatePodSpec``, ``ValidatePodCreate/Update``).

A pod's spec is nearly immutable: an update may change container images,
shorten ``activeDeadlineSeconds``, add tolerations and remove scheduling gates.
Everything else is compared after "munging" those fields back to their old
values, and a difference is reported as upstream does, with a short diff.
"""

from __future__ import annotations

import re
from typing import Any

from k3py.apimachinery import names
from k3py.apimachinery.jsoncopy import clone
from k3py.server.errors import Cause

from . import formats, scheduling
from .access import dicts, get_int, get_list, get_map, get_opt_int, get_str, has, str_map
from .containers import apparmor_profile, containers, id_range, init_containers, seccomp_profile
from .field import (
    GoValue,
    Path,
    describe,
    duplicate,
    forbidden,
    go_quote,
    invalid,
    not_supported,
    required,
)
from .meta import (
    META,
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from .resources import validate_requirements
from .volumes import validate_volumes

SPEC = Path("spec")
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
UPDATABLE = [
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
]
SYSCTL = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"


def pod_annotations(annotations: dict[str, Any], path: Path) -> list[Cause]:
    """``ValidatePodSpecificAnnotations`` (the parts that still matter)."""
    errs: list[Cause] = []
    if DELETION_COST in annotations:
        value = annotations[DELETION_COST]
        try:
            ok = (
                isinstance(value, str)
                and -(2**31) <= int(value.strip()) < 2**31
                and value == value.strip()
            )
        except ValueError:
            ok = False
        if not ok:
            errs.append(invalid(path.key(DELETION_COST), value, "must be a 32bit integer"))
    return errs


def _sysctls(sc: dict[str, Any], path: Path, spec: dict[str, Any]) -> list[Cause]:
    pattern = re.compile(SYSCTL)
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate(dicts(get_list(sc, "sysctls"))):
        name, p = get_str(item, "name"), path.at(i).child("name")
        if not name:
            errs.append(required(p))
        elif len(name) > 253 or not pattern.match(name):
            msg = f"must have at most 253 characters and match regex {SYSCTL}"
            errs.append(invalid(p, name, msg))
        elif name in seen:
            errs.append(duplicate(p, name))
        if spec.get("hostNetwork") is True and name.startswith("net."):
            errs.append(invalid(p, name, "may not be specified when 'hostNetwork' is true"))
        ipc = name in ("kernel.sem",) or name.startswith(("kernel.shm", "kernel.msg", "fs.mqueue."))
        if spec.get("hostIPC") is True and ipc:
            errs.append(invalid(p, name, "may not be specified when 'hostIPC' is true"))
        seen.add(name)
    return errs


def pod_security(spec: dict[str, Any], path: Path) -> list[Cause]:
    sc = spec.get("securityContext")
    if not isinstance(sc, dict):
        return []
    errs = id_range(get_opt_int(sc, "fsGroup"), path.child("fsGroup"))
    errs += id_range(get_opt_int(sc, "runAsUser"), path.child("runAsUser"))
    errs += id_range(get_opt_int(sc, "runAsGroup"), path.child("runAsGroup"))
    for i, gid in enumerate(get_list(sc, "supplementalGroups")):
        errs += id_range(gid if isinstance(gid, int) else 0, path.child("supplementalGroups").at(i))
    if sc.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        msg = "ShareProcessNamespace and HostPID cannot both be enabled"
        errs.append(invalid(path.child("shareProcessNamespace"), True, msg))
    errs += _sysctls(sc, path.child("sysctls"), spec)
    enums = {
        "fsGroupChangePolicy": ["Always", "OnRootMismatch"],
        "supplementalGroupsPolicy": ["Merge", "Strict"],
        "seLinuxChangePolicy": ["MountOption", "Recursive"],
    }
    for key, allowed in enums.items():
        if has(sc, key) and get_str(sc, key) not in allowed:
            errs.append(not_supported(path.child(key), get_str(sc, key), allowed))
    errs += seccomp_profile(sc.get("seccompProfile"), path.child("seccompProfile"))
    return errs + apparmor_profile(sc.get("appArmorProfile"), path.child("appArmorProfile"))


def _host_network_ports(spec: dict[str, Any], path: Path, *, is_pod: bool) -> list[Cause]:
    if spec.get("hostNetwork") is not True:
        return []
    errs: list[Cause] = []
    for i, ctr in enumerate(dicts(get_list(spec, "containers"))):
        for j, port in enumerate(dicts(get_list(ctr, "ports"))):
            hp, cp = get_int(port, "hostPort"), get_int(port, "containerPort")
            if (is_pod or hp != 0) and hp != cp:
                p = path.child("containers").at(i).child("ports").at(j).child("hostPort")
                errs.append(invalid(p, hp, "must match `containerPort` when `hostNetwork` is true"))
    return errs


def _enum(value: str, path: Path, allowed: list[str]) -> list[Cause]:
    if not value:
        return [required(path)]
    if value not in allowed:
        return [not_supported(path, value, allowed)]
    return []


def _names(spec: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    subdomains = ("serviceAccountName", "nodeName", "priorityClassName")
    for key in subdomains:
        value = get_str(spec, key)
        if value:
            errs += [
                invalid(path.child(key), value, m) for m in names.check_dns1123_subdomain(value)
            ]
    for key in ("hostname", "subdomain"):
        value = get_str(spec, key)
        if value:
            errs += [invalid(path.child(key), value, m) for m in names.check_dns1123_label(value)]
    if has(spec, "runtimeClassName"):
        value = get_str(spec, "runtimeClassName")
        errs += [
            invalid(path.child("runtimeClassName"), value, m)
            for m in names.check_dns1123_subdomain(value)
        ]
    return errs


def _misc(spec: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    deadline = get_opt_int(spec, "activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= formats.MAX_INT32:
        rng = formats.inclusive_range(1, formats.MAX_INT32)
        errs.append(invalid(path.child("activeDeadlineSeconds"), deadline, rng))
    for i, ref in enumerate(dicts(get_list(spec, "imagePullSecrets"))):
        if set(ref) - {"name"}:
            shown = GoValue(f"core.LocalObjectReference{{Name:{go_quote(get_str(ref, 'name'))}}}")
            errs.append(
                invalid(path.child("imagePullSecrets").at(i), shown, "only name may be set")
            )
    for i, gate in enumerate(dicts(get_list(spec, "readinessGates"))):
        ctype = get_str(gate, "conditionType")
        p = path.child("readinessGates").at(i).child("conditionType")
        errs += [invalid(p, ctype, m) for m in names.check_qualified_name(ctype)]
    gate_names = [get_str(g, "name") for g in dicts(get_list(spec, "schedulingGates"))]
    for i, gate_name in enumerate(gate_names):
        p = path.child("schedulingGates").at(i)
        errs += [invalid(p, gate_name, m) for m in names.check_qualified_name(gate_name)]
        if gate_name in gate_names[:i]:
            errs.append(duplicate(p, gate_name))
    for i, alias in enumerate(dicts(get_list(spec, "hostAliases"))):
        p = path.child("hostAliases").at(i)
        errs += [
            invalid(p.child("ip"), get_str(alias, "ip"), m)
            for m in formats.check_ip(get_str(alias, "ip"))
        ]
        for j, host in enumerate(get_list(alias, "hostnames")):
            text = host if isinstance(host, str) else ""
            errs += [
                invalid(p.child("hostnames").at(j), text, m)
                for m in names.check_dns1123_subdomain(text)
            ]
    if has(spec, "preemptionPolicy"):
        errs += _enum(
            get_str(spec, "preemptionPolicy"),
            path.child("preemptionPolicy"),
            ["PreemptLowerPriority", "Never"],
        )
    if has(spec, "overhead"):
        errs += validate_requirements({"limits": get_map(spec, "overhead")}, path.child("overhead"))
    if has(spec, "os"):
        os_name = get_str(get_map(spec, "os"), "name")
        if not os_name:
            errs.append(required(path.child("os", "name"), "cannot be empty"))
        elif os_name not in ("linux", "windows"):
            errs.append(not_supported(path.child("os"), os_name, ["linux", "windows"]))
    return errs


def _host_users(spec: dict[str, Any], path: Path) -> list[Cause]:
    if get_map(spec, "securityContext").get("hostUsers") is not False:
        return []
    errs = []
    for key, child in (
        ("hostNetwork", "hostNetwork"),
        ("hostPID", "HostPID"),
        ("hostIPC", "HostIPC"),
    ):
        if spec.get(key) is True:
            errs.append(forbidden(path.child(child), "when `pod.Spec.HostUsers` is false"))
    return errs


def validate_pod_spec(
    spec: dict[str, Any], path: Path, *, pod_name: str = "", is_pod: bool = False
) -> list[Cause]:
    """``ValidatePodSpec``."""
    errs: list[Cause] = []
    if not has(spec, "terminationGracePeriodSeconds"):
        errs.append(required(path.child("terminationGracePeriodSeconds")))
    grace = get_opt_int(spec, "terminationGracePeriodSeconds")
    host_users = get_map(spec, "securityContext").get("hostUsers") is not False
    vols, verrs = validate_volumes(
        get_list(spec, "volumes"), path.child("volumes"), pod_name=pod_name
    )
    errs += verrs
    restart = get_str(spec, "restartPolicy")
    errs += containers(
        get_list(spec, "containers"),
        path.child("containers"),
        volumes=vols,
        grace=grace,
        restart_policy=restart,
        host_users=host_users,
    )
    errs += init_containers(
        get_list(spec, "initContainers"),
        get_list(spec, "containers"),
        path.child("initContainers"),
        volumes=vols,
        grace=grace,
        restart_policy=restart,
        host_users=host_users,
    )
    errs += _host_network_ports(spec, path, is_pod=is_pod)
    errs += _enum(restart, path.child("restartPolicy"), RESTART_POLICIES)
    errs += _enum(get_str(spec, "dnsPolicy"), path.child("dnsPolicy"), DNS_POLICIES)
    errs += validate_labels(get_map(spec, "nodeSelector"), path.child("nodeSelector"))
    errs += pod_security(spec, path.child("securityContext"))
    errs += scheduling.affinity(spec.get("affinity"), path.child("affinity"))
    errs += scheduling.dns_config(
        spec.get("dnsConfig"), get_str(spec, "dnsPolicy"), path.child("dnsConfig")
    )
    errs += scheduling.topology_spread(
        get_list(spec, "topologySpreadConstraints"), path.child("topologySpreadConstraints")
    )
    errs += _host_users(spec, path)
    errs += _names(spec, path)
    errs += scheduling.tolerations(get_list(spec, "tolerations"), path.child("tolerations"))
    return errs + _misc(spec, path)


def validate_template(template: dict[str, Any], path: Path) -> list[Cause]:
    """``ValidatePodTemplateSpec``: template labels/annotations and its pod spec."""
    meta = get_map(template, "metadata")
    errs = validate_labels(get_map(meta, "labels"), path.child("labels"))
    errs += validate_annotations(get_map(meta, "annotations"), path.child("annotations"))
    errs += pod_annotations(get_map(meta, "annotations"), path.child("annotations"))
    spec = get_map(template, "spec")
    errs += validate_pod_spec(spec, path.child("spec"))
    if get_list(spec, "ephemeralContainers"):
        errs.append(
            forbidden(
                path.child("spec", "ephemeralContainers"),
                "ephemeral containers not allowed in pod template",
            )
        )
    return errs


def _image_whitespace(spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("containers", "initContainers"):
        for i, ctr in enumerate(dicts(get_list(spec, key))):
            image = get_str(ctr, "image")
            if image != image.strip():
                p = SPEC.child(key).at(i).child("image")
                errs.append(invalid(p, image, "must not have leading or trailing whitespace"))
    return errs


def _pod_meta_and_spec(obj: dict[str, Any], *, namespaced: bool) -> list[Cause]:
    meta, spec = get_map(obj, "metadata"), get_map(obj, "spec")
    errs = validate_object_meta(obj, namespaced=namespaced, name_fn=formats.name_is_dns_subdomain)
    errs += pod_annotations(get_map(meta, "annotations"), META.child("annotations"))
    errs += validate_pod_spec(spec, SPEC, pod_name=get_str(meta, "name"), is_pod=True)
    if not get_str(spec, "serviceAccountName"):
        for vi, vol in enumerate(dicts(get_list(spec, "volumes"))):
            for si, src in enumerate(dicts(get_list(get_map(vol, "projected"), "sources"))):
                if has(src, "serviceAccountToken"):
                    p = (
                        SPEC.child("volumes")
                        .at(vi)
                        .child("projected", "sources")
                        .at(si)
                        .child("serviceAccountToken")
                    )
                    errs.append(
                        forbidden(p, "must not be specified when serviceAccountName is not set")
                    )
    return errs + _image_whitespace(spec)


def validate_pod_create(obj: dict[str, Any], *, namespaced: bool) -> list[Cause]:
    errs = _pod_meta_and_spec(obj, namespaced=namespaced)
    spec = get_map(obj, "spec")
    if get_list(spec, "ephemeralContainers"):
        errs.append(forbidden(SPEC.child("ephemeralContainers"), "cannot be set on create"))
    if get_str(spec, "nodeName") and get_list(spec, "schedulingGates"):
        errs.append(
            forbidden(
                SPEC.child("nodeName"), "cannot be set until all schedulingGates have been cleared"
            )
        )
    return errs


def _container_updates(new: list[Any], old: list[Any], path: Path) -> tuple[list[Cause], bool]:
    if len(new) != len(old):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    errs: list[Cause] = []
    for i, ctr in enumerate(dicts(new)):
        image = get_str(ctr, "image")
        if not image:
            errs.append(required(path.at(i).child("image")))
        if image != image.strip():
            errs.append(
                invalid(
                    path.at(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                )
            )
    return errs, False


def _deadline_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    new, old = (
        get_opt_int(spec, "activeDeadlineSeconds"),
        get_opt_int(old_spec, "activeDeadlineSeconds"),
    )
    p = SPEC.child("activeDeadlineSeconds")
    if new is not None:
        if not 0 <= new <= formats.MAX_INT32:
            return [invalid(p, new, formats.inclusive_range(0, formats.MAX_INT32))]
        if old is not None and old < new:
            return [invalid(p, new, "must be less than or equal to previous value")]
    elif old is not None:
        return [invalid(p, None, "must not update from a positive integer to nil value")]
    return []


def _tolerations_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    new = dicts(get_list(spec, "tolerations"))
    for old in dicts(get_list(old_spec, "tolerations")):
        stripped = {k: v for k, v in old.items() if k != "tolerationSeconds"}
        if not any(
            {k: v for k, v in t.items() if k != "tolerationSeconds"} == stripped for t in new
        ):
            msg = "existing toleration can not be modified except its tolerationSeconds"
            return [forbidden(SPEC.child("tolerations"), msg)]
    return []


def _gates_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    old_names = {get_str(g, "name") for g in dicts(get_list(old_spec, "schedulingGates"))}
    errs: list[Cause] = []
    for i, gate in enumerate(dicts(get_list(spec, "schedulingGates"))):
        name = get_str(gate, "name")
        if name not in old_names:
            p = SPEC.child("schedulingGates").at(i).child("name")
            errs.append(
                forbidden(p, f"only deletion is allowed, but found new scheduling gate '{name}'")
            )
    return errs


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            _diff(old.get(key), new.get(key), f"{path}.{key}" if path else key, out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{i}]", out)
    elif old != new and not (old in (None, {}, []) and new in (None, {}, [])):
        out.append(f"- \t{path}: {_short(old)},\n+ \t{path}: {_short(new)},")


def _short(value: Any) -> str:
    return describe(value) if value is not None else "nil"


def _munge(spec: dict[str, Any], old_spec: dict[str, Any]) -> dict[str, Any]:
    munged = clone(spec)
    for key in ("containers", "initContainers"):
        for ctr, old_ctr in zip(
            dicts(get_list(munged, key)), dicts(get_list(old_spec, key)), strict=False
        ):
            ctr["image"] = old_ctr.get("image")
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = clone(old_spec[key])
    old_grace = get_opt_int(old_spec, "terminationGracePeriodSeconds")
    if (
        old_grace is not None
        and old_grace < 0
        and get_opt_int(munged, "terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old_grace
    if get_list(old_spec, "schedulingGates") and str_map(munged, "nodeSelector") != str_map(
        old_spec, "nodeSelector"
    ):
        old_sel = str_map(old_spec, "nodeSelector")
        if all(str_map(munged, "nodeSelector").get(k) == v for k, v in old_sel.items()):
            munged["nodeSelector"] = clone(old_spec.get("nodeSelector"))
    return munged


def _normalized(value: Any) -> Any:
    """Drop null/empty values so ``{}`` and a missing field compare equal (Go zero values)."""
    if isinstance(value, dict):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "", False, 0)}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def validate_pod_update(
    obj: dict[str, Any], old: dict[str, Any], *, namespaced: bool
) -> list[Cause]:
    errs = validate_object_meta_update(obj, old)
    errs += _pod_meta_and_spec(obj, namespaced=namespaced)
    spec, old_spec = get_map(obj, "spec"), get_map(old, "spec")
    for key in ("containers", "initContainers"):
        cerrs, stop = _container_updates(
            get_list(spec, key), get_list(old_spec, key), SPEC.child(key)
        )
        errs += cerrs
        if stop:
            return errs
    deadline = _deadline_update(spec, old_spec)
    if deadline:
        return errs + deadline
    errs += _tolerations_update(spec, old_spec)
    errs += _gates_update(spec, old_spec)
    munged = _normalized(_munge(spec, old_spec))
    before = _normalized(old_spec)
    if munged != before:
        lines: list[str] = []
        _diff(before, munged, "", lines)
        diff = "\n".join(["  core.PodSpec{", *lines, "  }"])
        msg = f"pod updates may not change fields other than {','.join(UPDATABLE)}\n{diff}"
        errs.append(forbidden(SPEC, msg))
    return errs
