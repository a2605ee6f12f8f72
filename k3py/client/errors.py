"""One error tree for every transport, built from ``metav1.Status`` bodies.

    ClientError
    ├── ApiError (code, reason, message, status body)
    │   ├── BadRequest 400, Unauthorized 401, Forbidden 403, NotFound 404,
    │   ├── Conflict 409 (reason Conflict), AlreadyExists 409 (reason AlreadyExists),
    │   ├── Gone 410 (a watch or list from a compacted resourceVersion: relist),
    │   ├── Invalid 422, TooManyRequests 429, ServerError 5xx
    └── TransportError (the request never got an answer: connection, TLS, protocol)

Both transports translate at their boundary (``raise from_status(body) from cause``), so
callers catch ``NotFound`` whether the server is in the same process or across the network.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


class ClientError(Exception):
    """Anything the client raises."""


class TransportError(ClientError):
    """No answer from the API server (connection refused, TLS failure, broken stream)."""


class ApiError(ClientError):
    """The API server answered with an error ``Status``."""

    def __init__(self, status: Obj) -> None:
        self.status: Obj = status
        self.code: int = int(status.get("code") or 0)
        self.reason: str = str(status.get("reason") or "")
        self.message: str = str(status.get("message") or "")
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @property
    def details(self) -> Obj:
        d = self.status.get("details")
        return d if isinstance(d, dict) else {}

    @property
    def causes(self) -> list[Obj]:
        return list(self.details.get("causes") or [])


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class MethodNotAllowed(ApiError):
    pass


class Conflict(ApiError):
    """A lost optimistic-concurrency race (resourceVersion or precondition): re-read, retry."""


class AlreadyExists(ApiError):
    pass


class Gone(ApiError):
    """The requested resourceVersion was compacted away: list again."""


class Invalid(ApiError):
    pass


class TooManyRequests(ApiError):
    pass


class ServerError(ApiError):
    pass


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def error_class(*, code: int, reason: str) -> type[ApiError]:
    if code == 409:
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if code >= 500:
        return ServerError
    return _BY_CODE.get(code, ApiError)


def from_status(status: Obj, *, code: int | None = None) -> ApiError:
    """The error for a ``Status`` body; ``code`` (the HTTP status) wins over a missing one."""
    body = dict(status)
    if code is not None and not body.get("code"):
        body["code"] = code
    cls = error_class(code=int(body.get("code") or 0), reason=str(body.get("reason") or ""))
    return cls(body)


def status_for(*, code: int, message: str, reason: str = "") -> Obj:
    """A ``Status`` for an answer that carried none (a proxy's HTML error page, say)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
