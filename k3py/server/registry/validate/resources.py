"""Resource names and quantities: ``ResourceList``, requests versus limits, quota names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import quantity as qty
from .access import get_map
from .field import GoValue, Path, forbidden, invalid, required
from .meta import NEGATIVE_MSG

STANDARD_CONTAINER = frozenset({"cpu", "memory", "ephemeral-storage"})
STANDARD = STANDARD_CONTAINER | {
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
}
STANDARD_QUOTA = STANDARD - {"storage"}
INTEGER = frozenset(
    {
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
QOS_RESOURCES = ("cpu", "memory")

NameCheck = Callable[[str, Path], list[Cause]]


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    if is_native(name) or name.startswith("requests."):
        return False
    return not names.check_qualified_name("requests." + name)


def is_integer_resource(name: str) -> bool:
    return name in INTEGER or is_extended(name)


def overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepages(name)


def _is_standard(name: str) -> bool:
    return name in STANDARD or name.startswith(("hugepages-", "requests.hugepages-"))


def check_resource_name(name: str, path: Path) -> list[Cause]:
    """``validateResourceName``: qualified, and standard unless domain-prefixed."""
    errs = [invalid(path, name, m) for m in names.check_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and not _is_standard(name):
        return [invalid(path, name, "must be a standard resource type or fully qualified")]
    return []


def check_container_resource_name(name: str, path: Path) -> list[Cause]:
    errs = check_resource_name(name, path)
    if "/" not in name:
        if not (name in STANDARD_CONTAINER or is_hugepages(name)):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not is_native(name) and not is_extended(name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def check_quota_resource_name(name: str, path: Path) -> list[Cause]:
    errs = check_resource_name(name, path)
    if "/" not in name and not (
        name in STANDARD_QUOTA or name.startswith(("hugepages-", "requests.hugepages-"))
    ):
        errs.append(invalid(path, name, "must be a standard resource for quota"))
    return errs


def parse_field(raw: Any, path: Path) -> tuple[qty.Quantity | None, list[Cause]]:
    """A quantity field; a parse error becomes a cause at ``path``."""
    try:
        return qty.parse(raw), []
    except qty.QuantityError as err:
        shown = raw if isinstance(raw, str) else str(raw)
        return None, [invalid(path, shown, str(err))]


def check_quantity_value(name: str, q: qty.Quantity, path: Path) -> list[Cause]:
    """``ValidateResourceQuantityValue``: non-negative, and whole for countable resources."""
    errs = []
    if q.sign() < 0:
        errs.append(invalid(path, str(q), NEGATIVE_MSG))
    if is_integer_resource(name) and q.milli_value() % 1000 != 0:
        errs.append(invalid(path, GoValue(str(q)), "must be an integer"))
    return errs


def positive(q: qty.Quantity, path: Path) -> list[Cause]:
    if q.sign() <= 0:
        return [invalid(path, str(q), "must be greater than zero")]
    return []


def parse_list(
    values: dict[str, Any], path: Path, name_check: NameCheck | None = None
) -> tuple[dict[str, qty.Quantity], list[Cause]]:
    """Parse and check every entry of a ``ResourceList``."""
    parsed: dict[str, qty.Quantity] = {}
    errs: list[Cause] = []
    for name, raw in values.items():
        p = path.key(name)
        if name_check is not None:
            errs += name_check(name, p)
        q, perr = parse_field(raw, p)
        errs += perr
        if q is not None:
            errs += check_quantity_value(name, q, p)
            parsed[name] = q
    return parsed, errs


def _hugepage_divisible(name: str, q: qty.Quantity) -> bool:
    size = qty.try_parse(name[len("hugepages-") :])
    if size is None or size.value <= 0:
        return False
    return (q.value % size.value) == 0


def validate_requirements(
    requirements: dict[str, Any],
    path: Path,
    *,
    name_check: NameCheck = check_container_resource_name,
) -> list[Cause]:
    """``validateResourceRequirements`` for a container (or pod overhead)."""
    lim_path, req_path = path.child("limits"), path.child("requests")
    limits, errs = parse_list(get_map(requirements, "limits"), lim_path, name_check)
    requests, rerrs = parse_list(get_map(requirements, "requests"), req_path, name_check)
    errs += rerrs
    huge = any(is_hugepages(n) for n in [*limits, *requests])
    for name, q in [*limits.items(), *requests.items()]:
        if is_hugepages(name) and not _hugepage_divisible(name, q):
            p = (lim_path if name in limits and limits[name] is q else req_path).key(name)
            errs.append(invalid(p, str(q), f"{q} is not positive integer multiple of {name}"))
    for name, q in requests.items():
        limit = limits.get(name)
        if limit is not None:
            if q.value != limit.value and not overcommit_allowed(name):
                errs.append(invalid(req_path, str(q), f"must be equal to {name} limit of {limit}"))
            elif q.value > limit.value:
                msg = f"must be less than or equal to {name} limit of {limit}"
                errs.append(invalid(req_path, str(q), msg))
        elif not overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
    has_qos = any(n in QOS_RESOURCES for n in [*limits, *requests])
    if huge and not has_qos:
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs
