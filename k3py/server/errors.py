"""One error tree for the whole server, turned into ``metav1.Status`` bodies at the edge.

Everything below the HTTP layer (registry, patching, validation, datastore
adapters) raises :class:`APIError` (or a helper-built instance of it); the API
middleware renders ``err.status()`` with ``err.code``.  Field order of the
rendered dict follows Go's ``metav1.Status`` so the JSON matches upstream byte
for byte.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Cause(TypedDict, total=False):
    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    message: str
    field: str


class APIError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> APIError:
    return APIError(
        404,
        "NotFound",
        f'{qualified(resource, group)} "{name}" not found',
        details=_details(name, group, resource),
    )


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        details=_details(name, group, resource),
    )


def conflict(resource: str, name: str, group: str = "", why: str = "") -> APIError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        details=_details(name, group, resource),
    )


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> APIError:
    """422 Invalid, message formatted like apimachinery's NewInvalid."""
    qkind = f"{kind}.{group}" if group else kind
    parts = []
    for c in causes:
        f = c.get("field", "")
        parts.append(f"{f}: {c.get('message', '')}" if f else c.get("message", ""))
    if len(parts) == 1:
        agg = parts[0]
    else:
        agg = "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = _details(name, group, kind)
    details["causes"] = list(causes)
    return APIError(422, "Invalid", f'{qkind} "{name}" is invalid: {agg}', details=details)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def forbidden(user: str, verb: str, resource: str, group: str, name: str, namespace: str) -> APIError:
    what = qualified(resource, group)
    msg = f'{what}{" " + repr(name).replace(chr(39), chr(34)) if name else ""} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}"'
    msg += f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return APIError(403, "Forbidden", msg, details=_details(name, group, resource))


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf" if not content_type else f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got "{content_type}")')


def too_large() -> APIError:
    return APIError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message)
