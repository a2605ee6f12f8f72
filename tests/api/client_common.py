"""Helpers shared by the ``test_client_*`` files: namespaces made through the official
Python client (kubectl's protobuf create is not decoded yet), unique names, and the
parsed Status body of an ApiException."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

_counter = itertools.count(1)


def uniq(prefix: str) -> str:
    return f"{prefix}-{os.getpid() % 10000}-{next(_counter)}"


def make_namespace(core: Any, *, prefix: str = "pc", labels: dict[str, str] | None = None) -> str:
    name = uniq(prefix)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    return name


def fresh_namespace(core_v1: Any) -> Iterator[str]:
    """Body of each file's ``ns`` fixture: a namespace made with the Python client,
    deleted afterwards."""
    name = make_namespace(core_v1)
    yield name
    try:
        core_v1.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


def status_body(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status", body
    assert body["apiVersion"] == "v1", body
    assert body["status"] == "Failure", body
    assert body["code"] == exc.status, body
    return body


def expect_error(
    fn: Callable[..., Any], *args: Any, status: int, reason: str, **kwargs: Any
) -> dict[str, Any]:
    """Call fn, expect an ApiException with that HTTP status and Status reason."""
    with pytest.raises(ApiException) as info:
        fn(*args, **kwargs)
    exc = info.value
    assert exc.status == status, (exc.status, exc.body)
    body = status_body(exc)
    assert body["reason"] == reason, body
    return body


def wait_until(pred: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll pred until it returns something truthy (no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def raw_json(resp: Any) -> Any:
    """Body of a ``_preload_content=False`` response, decoded."""
    return json.loads(resp.data)


def as_dict(api_client: Any, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = api_client.sanitize_for_serialization(obj)
    return out
