"""Thousands of malformed requests against a live server over HTTPS.

Every request gets the status code its class of mistake deserves (never 500) and a
``metav1.Status`` body carrying that code; none of them stores anything (the store's
revision and every object's revision are unchanged afterwards); and the server is still
healthy at the end (``/readyz``, a normal create and get).

The requests are randomised from a fixed seed (``K3PY_FUZZ_SEED`` overrides it; the
seed is printed).  The run is bounded in count (:data:`TOTAL`) and in time
(:data:`BUDGET_SECONDS`); the first round sends one request of every class, so each
class is exercised whatever the budget cuts.  The server runs in this process (own
thread, own temporary data dir) so the test can read its datastore directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from yarl import URL

from bench.common import client_ssl_context
from tests.conftest import ServerHandle, server_config, start_server_thread, stop_server_thread

pytestmark = pytest.mark.timeout(180)

SEED = int(os.environ.get("K3PY_FUZZ_SEED", "20250611"))
TOTAL = 3000
BUDGET_SECONDS = 45.0
WORKERS = 16
NS = "fuzz"
LIMIT = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

CMS = f"/api/v1/namespaces/{NS}/configmaps"
CM = f"{CMS}/cm"
DEPLOYS = f"/apis/apps/v1/namespaces/{NS}/deployments"
SERVICES = f"/api/v1/namespaces/{NS}/services"
PODS = f"/api/v1/namespaces/{NS}/pods"

Body = bytes | Callable[[], AsyncIterator[bytes]] | None


@dataclass
class Case:
    cls: str
    method: str
    path: str
    expect: frozenset[int]
    body: Body = None
    ctype: str | None = None

    def describe(self) -> str:
        if callable(self.body):
            shown = "<streamed body>"
        elif self.body is None:
            shown = "<no body>"
        else:
            shown = repr(self.body[:160]) + (
                f" (+{len(self.body) - 160} bytes)" if len(self.body) > 160 else ""
            )
        return f"[{self.cls}] {self.method} {self.path[:200]} ({self.ctype}) {shown}"


@dataclass
class Fixture:
    """What the generators know about the objects created before the run."""

    cm_rv: int
    cm_uid: str
    rng: random.Random = field(default_factory=random.Random)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def rname(rng: random.Random, prefix: str = "f") -> str:
    return prefix + "".join(
        rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randint(4, 12))
    )


def cm_obj(name: str, rng: random.Random) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"fuzz": "yes"}},
        "data": {rname(rng, "k"): rname(rng, "v") for _ in range(rng.randint(1, 4))},
    }


def deploy_obj(name: str, *, replicas: Any = 1, port: Any = 8080) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "busybox", "ports": [{"containerPort": port}]}
                    ]
                },
            },
        },
    }


def service_obj(name: str, *, port: Any = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": 8080}]},
    }


def pod_obj(name: str, *, port: Any = 8080) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": port}]}]
        },
    }


def existing_cm(fx: Fixture, **meta: Any) -> dict[str, Any]:
    obj = cm_obj("cm", fx.rng)
    obj["metadata"].update(meta)
    return obj


def splice(rng: random.Random, doc: bytes, needle: bytes, insert: bytes) -> bytes:
    """Put ``insert`` somewhere inside the (unique) string ``needle`` of ``doc``."""
    at = doc.index(needle) + rng.randint(1, len(needle) - 1)
    return doc[:at] + insert + doc[at:]


# ---- the classes of mistakes ------------------------------------------------------------


def too_large(fx: Fixture) -> Case:
    rng = fx.rng
    size = LIMIT + rng.randint(1, 200_000)
    method, path = rng.choice([("POST", CMS), ("PUT", CM), ("PATCH", CM)])
    ctype = MERGE_PATCH if method == "PATCH" else JSON
    obj = cm_obj("cm" if method != "POST" else rname(rng), rng)
    head = dumps(obj)[:-2] + b',"big":"'
    tail = b'"}}'
    filler = size - len(head) - len(tail)
    if rng.random() < 0.5:
        return Case("too_large", method, path, frozenset({413}), head + b"x" * filler + tail, ctype)

    async def stream() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse early
        yield head
        left = filler
        while left > 0:
            n = min(left, 256 * 1024)
            left -= n
            yield b"x" * n
        yield tail

    return Case("too_large", method, path, frozenset({413}), stream, ctype)


_BAD_JSON = [
    b'{"apiVersion":"v1",,"kind":"ConfigMap"}',
    b"{'apiVersion':'v1'}",
    b'{"apiVersion" "v1"}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"},"data":{"a":tru}}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"},"data":[1,2}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"},"data":{"a":01}}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"},"data":{"a":NaN}}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"},"data":{"a":-Infinity}}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME\x01"}}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"}} {"x":1}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"}}]',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME\\q"}}',
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME\\ud800"}} trailing',
    b"\xef\xbb\xbf{}",
    b"",
    b"   \n\t ",
    b"[1,2,3]",
    b'"just a string"',
    b"42",
    b"true",
]


def invalid_json(fx: Fixture) -> Case:
    rng = fx.rng
    method, path = rng.choice([("POST", CMS), ("PUT", CM)])
    pick = rng.random()
    if pick < 0.6:
        body = rng.choice(_BAD_JSON).replace(b"NAME", rname(rng).encode())
    elif pick < 0.8:
        body = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 300))).encode()
    else:
        body = rng.randbytes(rng.randint(1, 300))
    return Case("invalid_json", method, path, frozenset({400}), body, JSON)


_BAD_YAML = [
    "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME\n",
    'apiVersion: "v1\nkind: ConfigMap\n',
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: NAME\n",
    "- a\nb: c\n",
    "apiVersion: v1\nkind: ConfigMap\n  metadata: x\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: *undefined}\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: NAME, self: *m}\n",
    "a: &a [*a]\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME2}\n",
    "? [a, b]\n: c\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME}\ndata: {a: .inf}\n",
    "- 1\n- 2\n",
    "just a scalar\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME}\ndata: !!binary AAAA\n",
    "@at: sign\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME}\ndata: {a: 'unterminated}\n",
]


def invalid_yaml(fx: Fixture) -> Case:
    rng = fx.rng
    method, path = rng.choice([("POST", CMS), ("PUT", CM)])
    text = rng.choice(_BAD_YAML).replace("NAME", rname(rng))
    return Case("invalid_yaml", method, path, frozenset({400}), text.encode(), YAML)


def truncated_json(fx: Fixture) -> Case:
    rng = fx.rng
    kind = rng.choice(["create", "update", "patch"])
    if kind == "create":
        doc, method, path, ctype = dumps(cm_obj(rname(rng), rng)), "POST", CMS, JSON
    elif kind == "update":
        doc, method, path, ctype = dumps(existing_cm(fx)), "PUT", CM, JSON
    else:
        doc, method, path, ctype = dumps({"data": {rname(rng): "v"}}), "PATCH", CM, MERGE_PATCH
    body = doc[: rng.randint(1, len(doc) - 1)]  # no proper prefix of an object is JSON
    return Case("truncated_json", method, path, frozenset({400}), body, ctype)


_BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xe2\x82",
    b"\x80",
    b"\xf8\x88\x80\x80\x80",
]


def invalid_utf8(fx: Fixture) -> Case:
    rng = fx.rng
    name = rname(rng)
    obj = cm_obj(name, rng)
    bad = rng.choice(_BAD_UTF8)
    if rng.random() < 0.7:
        doc = dumps(obj)
        ctype = JSON
    else:
        doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: value{name}\n".encode()
        ctype = YAML
    body = splice(rng, doc, name.encode(), bad)
    return Case("invalid_utf8", "POST", CMS, frozenset({400}), body, ctype)


_WRONG_TYPES = [
    "text/plain",
    "application/xml",
    "text/html",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=zz",
    "application/octet-stream",
    "image/png",
    "application/jsonx",
    "application/json-seq",
]


def wrong_content_type(fx: Fixture) -> Case:
    rng = fx.rng
    pick = rng.random()
    if pick < 0.4:
        method, path, body = "POST", CMS, dumps(cm_obj(rname(rng), rng))
        types = _WRONG_TYPES + [MERGE_PATCH, JSON_PATCH, SMP, APPLY]
    elif pick < 0.7:
        method, path, body = "PUT", CM, dumps(existing_cm(fx, resourceVersion=str(fx.cm_rv)))
        types = _WRONG_TYPES + [MERGE_PATCH, APPLY]
    else:
        method, path, body = "PATCH", CM, dumps({"data": {"a": "b"}})
        types = _WRONG_TYPES + [JSON, YAML]
    return Case("wrong_content_type", method, path, frozenset({415}), body, rng.choice(types))


def protobuf_garbage(fx: Fixture) -> Case:
    rng = fx.rng
    method, path = rng.choice([("POST", CMS), ("PUT", CM), ("PATCH", CM), ("POST", DEPLOYS)])
    body = rng.randbytes(rng.randint(0, 400))
    if rng.random() < 0.6:
        body = b"k8s\x00" + body  # the envelope's magic prefix, then garbage
    return Case("protobuf", method, path, frozenset({400, 415}), body, PROTOBUF)


def strict_unknown(fx: Fixture) -> Case:
    rng = fx.rng
    bogus = "zz" + rname(rng)
    pick = rng.randrange(5)
    if pick == 0:
        obj = cm_obj(rname(rng), rng)
        obj[bogus] = rng.choice([1, "x", {"a": 1}, [1], None, True])
        method, path, ctype = "POST", CMS, JSON
    elif pick == 1:
        obj = cm_obj(rname(rng), rng)
        obj["metadata"][bogus] = "x"
        method, path, ctype = "POST", CMS, JSON
    elif pick == 2:
        obj = deploy_obj(rname(rng))
        obj["spec"]["template"]["spec"]["containers"][0][bogus] = "x"
        method, path, ctype = "POST", DEPLOYS, JSON
    elif pick == 3:
        obj = existing_cm(fx, resourceVersion=str(fx.cm_rv))
        obj[bogus] = "x"
        method, path, ctype = "PUT", CM, JSON
    else:
        obj = {"data": {"a": "b"}, bogus: 1}
        method, path, ctype = "PATCH", CM, MERGE_PATCH
    return Case(
        "strict_unknown",
        method,
        path + "?fieldValidation=Strict",
        frozenset({400}),
        dumps(obj),
        ctype,
    )


def strict_duplicate(fx: Fixture) -> Case:
    rng = fx.rng
    name = rname(rng)
    pick = rng.randrange(6)
    q = "?fieldValidation=Strict"
    if pick == 0:
        body = f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","name":"{name}"}}}}'
        return Case("strict_duplicate", "POST", CMS + q, frozenset({400}), body.encode(), JSON)
    if pick == 1:
        body = f'{{"apiVersion":"v1","kind":"ConfigMap","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}'
        return Case("strict_duplicate", "POST", CMS + q, frozenset({400}), body.encode(), JSON)
    if pick == 2:
        body = f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"1","k":"2"}}}}'
        return Case("strict_duplicate", "POST", CMS + q, frozenset({400}), body.encode(), JSON)
    if pick == 3:
        body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  name: {name}\n"
        return Case("strict_duplicate", "POST", CMS + q, frozenset({400}), body.encode(), YAML)
    if pick == 4:
        body = '{"data":{"k":"1","k":"2"}}'
        return Case(
            "strict_duplicate", "PATCH", CM + q, frozenset({400}), body.encode(), MERGE_PATCH
        )
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: a\n  k: b\n"
    return Case(
        "strict_duplicate",
        "PATCH",
        CM + q + "&fieldManager=fuzz",
        frozenset({400}),
        body.encode(),
        APPLY,
    )


def stale_resource_version(fx: Fixture) -> Case:
    rng = fx.rng
    stale = str(rng.randint(1, fx.cm_rv - 1))
    pick = rng.randrange(4)
    if pick == 0:
        return Case(
            "stale_rv",
            "PUT",
            CM,
            frozenset({409}),
            dumps(existing_cm(fx, resourceVersion=stale)),
            JSON,
        )
    if pick == 1:
        patch = {"metadata": {"resourceVersion": stale}, "data": {"a": rname(rng)}}
        return Case(
            "stale_rv", "PATCH", CM, frozenset({409}), dumps(patch), rng.choice([MERGE_PATCH, SMP])
        )
    if pick == 2:
        opts = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {"resourceVersion": stale},
        }
        return Case("stale_rv", "DELETE", CM, frozenset({409}), dumps(opts), JSON)
    opts = {
        "preconditions": {
            "uid": "00000000-0000-0000-0000-"
            + "".join(rng.choice("0123456789abcdef") for _ in range(12))
        }
    }
    return Case("stale_rv", "DELETE", CM, frozenset({409}), dumps(opts), JSON)


_BAD_LABEL_SELECTORS = [
    "a in (",
    "!!!",
    "a=b,",
    "=b",
    "a in b",
    "a notin (b",
    "a=(b)",
    ",",
    "a b",
    "a=" + "v" * 64,
    "-a=b",
    "a/b/c=d",
    "a=b c",
    "a>x",
    "a<",
    "!a=b",
    "a!",
]
_BAD_FIELD_SELECTORS = [
    "foo.bar=x",
    "spec.nodeName=x",
    "metadata.name",
    "===",
    "metadata.name in (a)",
    "metadata.name!x",
    "metadata.labels=x",
    "data.x=y",
    "metadata.name=a,zz=b",
]


def label_selector(fx: Fixture) -> Case:
    rng = fx.rng
    sel = rng.choice(_BAD_LABEL_SELECTORS)
    return _selector_case(fx, "label_selector", "labelSelector", sel)


def field_selector(fx: Fixture) -> Case:
    rng = fx.rng
    sel = rng.choice(_BAD_FIELD_SELECTORS)
    return _selector_case(fx, "field_selector", "fieldSelector", sel)


def _selector_case(fx: Fixture, cls: str, param: str, sel: str) -> Case:
    from urllib.parse import quote

    rng = fx.rng
    q = f"{param}={quote(sel, safe='')}"
    method, path = rng.choice(
        [
            ("GET", f"{CMS}?{q}"),
            ("GET", f"{CMS}?watch=1&timeoutSeconds=1&{q}"),
            ("GET", f"/api/v1/configmaps?{q}"),
            ("DELETE", f"{CMS}?{q}"),
        ]
    )
    return Case(cls, method, path, frozenset({400}), None, None)


def json_patch(fx: Fixture) -> Case:
    rng = fx.rng
    key = rname(rng, "k")
    ops: list[tuple[Any, frozenset[int]]] = [
        ({"op": "add", "path": "/data/x", "value": "1"}, frozenset({400})),  # not a list
        ("not a patch", frozenset({400})),
        ([1, 2], frozenset({400})),
        (["x"], frozenset({400})),
        ([{"op": "frob", "path": "/data/" + key}], frozenset({400, 422})),
        ([{"op": "add"}], frozenset({400, 422})),
        ([{"path": "/data/" + key, "value": "v"}], frozenset({400, 422})),
        ([{"op": "remove", "path": "/data/" + key}], frozenset({422})),
        ([{"op": "test", "path": "/metadata/name", "value": key}], frozenset({422})),
        ([{"op": "move", "from": "/data/" + key, "path": "/data/x"}], frozenset({422})),
        (
            [{"op": "add", "path": "/metadata/labels/" + key, "value": rng.randint(0, 99)}],
            frozenset({400, 422}),
        ),
        ([{"op": "replace", "path": "/metadata", "value": [1]}], frozenset({400, 422})),
        ([{"op": "replace", "path": "/metadata/name", "value": key}], frozenset({400, 422})),
        ([{"op": "add", "path": "/zz/" + key + "/deep", "value": 1}], frozenset({422})),
    ]
    doc, expect = rng.choice(ops)
    return Case("json_patch", "PATCH", CM, expect, dumps(doc), JSON_PATCH)


def merge_patch(fx: Fixture) -> Case:
    rng = fx.rng
    key = rname(rng, "k")
    docs: list[tuple[bytes, frozenset[int]]] = [
        (dumps([1, 2]), frozenset({400})),
        (dumps("str"), frozenset({400})),
        (dumps(7), frozenset({400})),
        (b"null", frozenset({400, 422})),
        (dumps({"data": [1]}), frozenset({400})),
        (dumps({"data": {key: 5}}), frozenset({400})),
        (dumps({"data": "x"}), frozenset({400})),
        (dumps({"metadata": [1]}), frozenset({400})),
        (dumps({"metadata": {"name": key}}), frozenset({400})),
        (dumps({"metadata": {"labels": {"bad key!": "v"}}}), frozenset({422})),
        (dumps({"metadata": {"labels": [1]}}), frozenset({400})),
        (b'{"data":{"a":"b"}', frozenset({400})),
    ]
    body, expect = rng.choice(docs)
    return Case("merge_patch", "PATCH", CM, expect, body, MERGE_PATCH)


def strategic_patch(fx: Fixture) -> Case:
    rng = fx.rng
    word = rname(rng, "x")
    docs: list[Any] = [
        {"$patch": word},
        {"data": {"$patch": word}},
        {"metadata": {"labels": {"$patch": word}}},
        {"$retainKeys": word},
        {"metadata": {"$setElementOrder/finalizers": word}},
        {"metadata": {"$deleteFromPrimitiveList": ["a"]}},
        [1, 2],
        word,
    ]
    return Case("strategic_patch", "PATCH", CM, frozenset({400, 422}), dumps(rng.choice(docs)), SMP)


def apply_patch(fx: Fixture) -> Case:
    rng = fx.rng
    good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n"
    pick = rng.randrange(6)
    if pick == 0:  # no fieldManager
        return Case("apply_patch", "PATCH", CM, frozenset({422}), good.encode(), APPLY)
    if pick == 1:
        q = "?fieldManager=" + "m" * rng.randint(129, 300)
        return Case("apply_patch", "PATCH", CM + q, frozenset({422}), good.encode(), APPLY)
    if pick == 2:
        body = good.replace(
            "kind: ConfigMap", "kind: " + rng.choice(["Secret", "Pod", "configmap"])
        )
        return Case(
            "apply_patch",
            "PATCH",
            CM + "?fieldManager=fuzz",
            frozenset({400}),
            body.encode(),
            APPLY,
        )
    if pick == 3:
        body = rng.choice(["a: [\n", "- 1\n- 2\n", "metadata: {name: cm\n", "scalar\n"])
        return Case(
            "apply_patch",
            "PATCH",
            CM + "?fieldManager=fuzz",
            frozenset({400}),
            body.encode(),
            APPLY,
        )
    if pick == 4:  # force is only for apply
        return Case(
            "apply_patch",
            "PATCH",
            CM + "?force=true",
            frozenset({400, 422}),
            dumps({"data": {"a": "b"}}),
            MERGE_PATCH,
        )
    body = good.replace("name: cm", "name: " + rname(rng))
    return Case(
        "apply_patch", "PATCH", CM + "?fieldManager=fuzz", frozenset({400}), body.encode(), APPLY
    )


def long_name(fx: Fixture) -> Case:
    rng = fx.rng
    n = rng.randint(254, 1200)
    name = "".join(rng.choice(string.ascii_lowercase) for _ in range(n))
    if rng.random() < 0.7:
        return Case("long_name", "POST", CMS, frozenset({422}), dumps(cm_obj(name, rng)), JSON)
    return Case("long_name", "POST", DEPLOYS, frozenset({422}), dumps(deploy_obj(name)), JSON)


_BAD_CHARS = ["A", "Z", "_", "!", " ", "@", "é", "/", "%", "*", ":", "\\", "\u2603", "\t"]


def bad_name(fx: Fixture) -> Case:
    rng = fx.rng
    base = rname(rng)
    pick = rng.randrange(4)
    if pick == 0:
        at = rng.randint(0, len(base))
        name = base[:at] + rng.choice(_BAD_CHARS) + base[at:]
    elif pick == 1:
        name = rng.choice(["-", "."]) + base
    elif pick == 2:
        name = base + rng.choice(["-", "."])
    else:
        name = base[:2] + ".." + base[2:]
    if rng.random() < 0.75:
        return Case("bad_name", "POST", CMS, frozenset({422}), dumps(cm_obj(name, rng)), JSON)
    # Service names are DNS labels, stricter still.
    return Case("bad_name", "POST", SERVICES, frozenset({422}), dumps(service_obj(name)), JSON)


def deep_nesting(fx: Fixture) -> Case:
    rng = fx.rng
    depth = rng.choice([201, 1000, 10_000, rng.randint(300, 20_000)])
    pick = rng.randrange(5)
    if pick == 0:
        body, ctype = b"[" * depth + b"]" * depth, JSON
    elif pick == 1:
        body, ctype = b'{"a":' * depth + b"1" + b"}" * depth, JSON
    elif pick == 2:
        inner = b"[" * depth + b"]" * depth
        body, ctype = (
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"'
            + rname(rng).encode()
            + b'","annotations":{"a":'
            + inner
            + b"}}}",
            JSON,
        )
    elif pick == 3:
        body, ctype = b"a: " + b"[" * depth + b"]" * depth + b"\n", YAML
    else:
        body, ctype = b"[" * depth, rng.choice([JSON, YAML])  # deep and unterminated
    method, path = rng.choice([("POST", CMS), ("PUT", CM)])
    if rng.random() < 0.2:
        method, path, ctype = "PATCH", CM, rng.choice([MERGE_PATCH, SMP, JSON_PATCH])
        body = (
            b'{"data":' + b"[" * depth + b"]" * depth + b"}"
            if ctype != JSON_PATCH
            else b"[" * depth + b"]" * depth
        )
    return Case("deep_nesting", method, path, frozenset({400}), body, ctype)


def wrong_type_meta(fx: Fixture) -> Case:
    rng = fx.rng
    pairs = [
        ("v1", "Secret"),
        ("apps/v1", "ConfigMap"),
        ("v2", "ConfigMap"),
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("v1", "configmap"),
        ("V1", "ConfigMap"),
        ("v1", 5),
        (7, "ConfigMap"),
        ("v1", ["ConfigMap"]),
        ("v1", {"kind": "ConfigMap"}),
        (None, "Secret"),
    ]
    api_version, kind = rng.choice(pairs)
    obj = cm_obj(rname(rng), rng)
    obj["apiVersion"], obj["kind"] = api_version, kind
    if rng.random() < 0.3:
        dep = deploy_obj(rname(rng))
        dep["apiVersion"] = rng.choice(["v1", "apps/v1beta1", "extensions/v1beta1", "batch/v1"])
        return Case("wrong_type_meta", "POST", DEPLOYS, frozenset({400}), dumps(dep), JSON)
    if rng.random() < 0.3:
        obj["metadata"]["name"] = "cm"
        obj["metadata"]["resourceVersion"] = str(fx.cm_rv)
        return Case("wrong_type_meta", "PUT", CM, frozenset({400}), dumps(obj), JSON)
    return Case("wrong_type_meta", "POST", CMS, frozenset({400}), dumps(obj), JSON)


def huge_numbers(fx: Fixture) -> Case:
    rng = fx.rng
    digits = "9" + "".join(rng.choice(string.digits) for _ in range(rng.randint(20, 5000)))
    literal = rng.choice(
        [digits, "-" + digits, "1e999", "-1e999", digits + ".5", "1" + "0" * 400 + "e10"]
    )
    pick = rng.randrange(3)
    name = rname(rng)
    if pick == 0:
        text = f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"a":{literal}}}}}'
        return Case("huge_numbers", "POST", CMS, frozenset({400}), text.encode(), JSON)
    if pick == 1:
        body = dumps(deploy_obj(name, replicas=0)).replace(
            b'"replicas":0', b'"replicas":' + literal.encode()
        )
        return Case("huge_numbers", "POST", DEPLOYS, frozenset({400}), body, JSON)
    body = dumps(service_obj(name, port=1)).replace(b'"port":1', b'"port":' + literal.encode())
    return Case("huge_numbers", "POST", SERVICES, frozenset({400}), body, JSON)


def nulls(fx: Fixture) -> Case:
    rng = fx.rng
    name = rname(rng)
    pick = rng.randrange(7)
    if pick == 0:
        method, path = rng.choice([("POST", CMS), ("PUT", CM)])
        return Case("nulls", method, path, frozenset({400}), b"null", JSON)
    if pick == 1:
        return Case(
            "nulls",
            "POST",
            CMS,
            frozenset({400, 422}),
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":null}',
            JSON,
        )
    if pick == 2:
        return Case(
            "nulls",
            "POST",
            CMS,
            frozenset({400, 422}),
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":null}}',
            JSON,
        )
    if pick == 3:
        dep = deploy_obj(name)
        dep["spec"] = None
        return Case("nulls", "POST", DEPLOYS, frozenset({400, 422}), dumps(dep), JSON)
    if pick == 4:
        dep = deploy_obj(name)
        dep["spec"]["template"]["spec"]["containers"] = None
        return Case("nulls", "POST", DEPLOYS, frozenset({400, 422}), dumps(dep), JSON)
    if pick == 5:
        pod = pod_obj(name)
        pod["spec"] = None
        return Case("nulls", "POST", PODS, frozenset({400, 422}), dumps(pod), JSON)
    svc = service_obj(name)
    svc["spec"]["ports"] = [None]
    return Case("nulls", "POST", SERVICES, frozenset({400, 422}), dumps(svc), JSON)


def metadata_not_object(fx: Fixture) -> Case:
    rng = fx.rng
    value = rng.choice([[1, 2], [], ["name", "x"], "x", 5, True, [{"name": "x"}]])
    obj = cm_obj(rname(rng), rng)
    obj["metadata"] = value
    pick = rng.randrange(3)
    if pick == 0:
        return Case("metadata_list", "POST", CMS, frozenset({400}), dumps(obj), JSON)
    if pick == 1:
        obj["metadata"] = value
        return Case("metadata_list", "PUT", CM, frozenset({400}), dumps(obj), JSON)
    return Case(
        "metadata_list", "PATCH", CM + "?fieldManager=fuzz", frozenset({400}), dumps(obj), APPLY
    )


def bad_integers(fx: Fixture) -> Case:
    rng = fx.rng
    name = rname(rng)
    pick = rng.randrange(6)
    if pick == 0:
        return Case(
            "bad_integers",
            "POST",
            DEPLOYS,
            frozenset({422}),
            dumps(deploy_obj(name, replicas=rng.randint(-(2**31), -1))),
            JSON,
        )
    if pick == 1:
        big = rng.choice([2**31, 2**32 + 5, 2**63 - 1, 2**63, 2**64])
        return Case(
            "bad_integers",
            "POST",
            DEPLOYS,
            frozenset({400, 422}),
            dumps(deploy_obj(name, replicas=big)),
            JSON,
        )
    if pick == 2:
        port = rng.choice([rng.randint(-(2**31), 0), rng.randint(65536, 2**31 - 1)])
        return Case(
            "bad_integers",
            "POST",
            SERVICES,
            frozenset({422}),
            dumps(service_obj(name, port=port)),
            JSON,
        )
    if pick == 3:
        port = rng.choice([2**31, -(2**31) - 1, 2**40])
        return Case(
            "bad_integers",
            "POST",
            SERVICES,
            frozenset({400, 422}),
            dumps(service_obj(name, port=port)),
            JSON,
        )
    if pick == 4:
        port = rng.choice([rng.randint(-(2**31), 0), rng.randint(65536, 2**31 - 1)])
        return Case(
            "bad_integers",
            "POST",
            DEPLOYS,
            frozenset({422}),
            dumps(deploy_obj(name, port=port)),
            JSON,
        )
    port = rng.choice([rng.randint(-1000, 0), rng.randint(65536, 10**6)])
    return Case(
        "bad_integers", "POST", PODS, frozenset({422}), dumps(pod_obj(name, port=port)), JSON
    )


_RESERVED = ("api", "apis", "healthz", "livez", "readyz", "version", "openapi", "metrics", "")


def path_garbage(fx: Fixture) -> Case:
    rng = fx.rng
    seg_chars = string.ascii_letters + string.digits + "-._~"

    def seg() -> str:
        s = "".join(rng.choice(seg_chars) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.3:
            s += "".join(f"%{rng.randint(0, 255):02X}" for _ in range(rng.randint(1, 3)))
        return s.strip(".") or "zz"

    pick = rng.randrange(8)
    if pick == 0:
        path = "/zz" + "/".join(seg() for _ in range(rng.randint(1, 6)))
    elif pick == 1:
        path = f"/api/v1/namespaces/{NS}/zz{rname(rng)}"
    elif pick == 2:
        path = f"/apis/zz{rname(rng)}.example.com/v1/things"
    elif pick == 3:
        path = rng.choice(
            [
                "/api/v9/pods",
                "/apis/apps/v9/deployments",
                "/api/v1beta7/configmaps",
                "/apis/apps/v1/zzpods",
            ]
        )
    elif pick == 4:
        path = f"{CM}/zz{rname(rng)}"
    elif pick == 5:
        path = f"{CMS}/zz{rname(rng)}"  # a ConfigMap that does not exist
    elif pick == 6:
        path = f"/api/v1/zz{rname(rng)}/" + "/".join(seg() for _ in range(rng.randint(1, 5)))
    else:
        path = f"/apis/zz{rname(rng)}"
    return Case("path_garbage", "GET", path, frozenset({404}), None, None)


def bad_method(fx: Fixture) -> Case:
    rng = fx.rng
    cm_json = dumps(cm_obj(rname(rng), rng))
    cases = [
        ("PUT", CMS, cm_json, JSON),
        ("PATCH", CMS, b'{"data":{"a":"b"}}', MERGE_PATCH),
        ("POST", CM, cm_json, JSON),
        ("POST", f"/api/v1/namespaces/{NS}", b"{}", JSON),
        (
            rng.choice(["PROPFIND", "MKCOL", "LOCK", "COPY", "MOVE"]),
            rng.choice([CMS, CM, DEPLOYS]),
            None,
            None,
        ),
        (
            rng.choice(["POST", "PUT", "DELETE", "PATCH"]),
            rng.choice(["/version", "/api", "/apis", "/api/v1", "/openapi/v2"]),
            b"{}",
            JSON,
        ),
    ]
    method, path, body, ctype = rng.choice(cases)
    return Case("bad_method", method, path, frozenset({405}), body, ctype)


def bad_query(fx: Fixture) -> Case:
    rng = fx.rng
    cm_json = dumps(cm_obj(rname(rng), rng))
    cases: list[tuple[str, str, bytes | None, str | None, frozenset[int]]] = [
        (
            "GET",
            f"{CMS}?limit=" + rng.choice(["abc", "1.5", "0x10", "9" * 30]),
            None,
            None,
            frozenset({400}),
        ),
        ("GET", f"{CMS}?watch=" + rng.choice(["maybe", "yes", "2"]), None, None, frozenset({400})),
        (
            "GET",
            f"{CMS}?watch=1&timeoutSeconds=" + rng.choice(["x", "1.5", "--1"]),
            None,
            None,
            frozenset({400}),
        ),
        (
            "GET",
            f"{CMS}?watch=1&resourceVersion=" + rng.choice(["abc", "-x", "1.5", "-5", "9" * 25]),
            None,
            None,
            frozenset({400}),
        ),
        (
            "GET",
            f"{CMS}?watch=1&allowWatchBookmarks=" + rng.choice(["perhaps", "yes"]),
            None,
            None,
            frozenset({400}),
        ),
        (
            "POST",
            f"{CMS}?dryRun=" + rng.choice(["Some", "all", "true", "None"]),
            cm_json,
            JSON,
            frozenset({400}),
        ),
        (
            "POST",
            f"{CMS}?fieldValidation=" + rng.choice(["Loose", "strict", "yes"]),
            cm_json,
            JSON,
            frozenset({400}),
        ),
        (
            "DELETE",
            f"{CM}?propagationPolicy=" + rng.choice(["Bogus", "background", "Now"]),
            None,
            None,
            frozenset({422}),
        ),
        (
            "DELETE",
            f"{CM}?gracePeriodSeconds=" + rng.choice(["abc", "1.5", "soon"]),
            None,
            None,
            frozenset({400}),
        ),
        ("DELETE", f"{CM}?dryRun=Some", None, None, frozenset({400})),
    ]
    method, path, body, ctype, expect = rng.choice(cases)
    return Case("bad_query", method, path, expect, body, ctype)


def bad_delete_options(fx: Fixture) -> Case:
    rng = fx.rng
    cases: list[tuple[bytes, frozenset[int]]] = [
        (b'{"gracePeriodSeconds":"abc"}', frozenset({400})),
        (b'{"gracePeriodSeconds":1.5}', frozenset({400})),
        (b'{"preconditions":[1]}', frozenset({400})),
        (b'{"preconditions":{"uid":5}}', frozenset({400})),
        (b'{"dryRun":"All"}', frozenset({400})),
        (b'{"dryRun":["Bogus"]}', frozenset({400})),
        (b'{"orphanDependents":"yes"}', frozenset({400})),
        (b'{"propagationPolicy":"Bogus"}', frozenset({422})),
        (b'{"propagationPolicy":5}', frozenset({400})),
        (b"[1,2]", frozenset({400})),
        (b'{"gracePeriodSeconds":', frozenset({400})),
        (b"[" * 5000, frozenset({400})),
    ]
    body, expect = rng.choice(cases)
    return Case("bad_delete_options", "DELETE", CM, expect, body, JSON)


def bad_labels(fx: Fixture) -> Case:
    rng = fx.rng
    obj = cm_obj(rname(rng), rng)
    pick = rng.randrange(5)
    if pick == 0:
        obj["metadata"]["labels"] = {"bad key!": "v"}
    elif pick == 1:
        obj["metadata"]["labels"] = {"k": "v" * rng.randint(64, 300)}
    elif pick == 2:
        obj["metadata"]["labels"] = {"k": "bad value!"}
    elif pick == 3:
        obj["metadata"]["annotations"] = {"big": "x" * (256 * 1024 + rng.randint(1, 1000))}
    else:
        obj["data"] = {"bad key!" + rname(rng): "v"}
    return Case("bad_labels", "POST", CMS, frozenset({422}), dumps(obj), JSON)


CLASSES: list[tuple[Callable[[Fixture], Case], float]] = [
    (too_large, 0.15),
    (invalid_json, 1),
    (invalid_yaml, 1),
    (truncated_json, 1),
    (invalid_utf8, 1),
    (wrong_content_type, 1),
    (protobuf_garbage, 1),
    (strict_unknown, 1),
    (strict_duplicate, 1),
    (stale_resource_version, 1),
    (label_selector, 1),
    (field_selector, 1),
    (json_patch, 1),
    (merge_patch, 1),
    (strategic_patch, 1),
    (apply_patch, 1),
    (long_name, 1),
    (bad_name, 1),
    (deep_nesting, 0.5),
    (wrong_type_meta, 1),
    (huge_numbers, 1),
    (nulls, 1),
    (metadata_not_object, 1),
    (bad_integers, 1),
    (path_garbage, 1),
    (bad_method, 1),
    (bad_query, 1),
    (bad_delete_options, 1),
    (bad_labels, 1),
]


def generate(fx: Fixture, total: int) -> Iterator[Case]:
    """One case of every class first, then weighted random picks."""
    gens = [g for g, _ in CLASSES]
    weights = [w for _, w in CLASSES]
    for g in gens:
        yield g(fx)
    for _ in range(total - len(gens)):
        yield fx.rng.choices(gens, weights)[0](fx)


# ---- running ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    h = start_server_thread(server_config(tmp_path_factory.mktemp("k3py-bad-input")))
    yield h
    stop_server_thread(h)


def check_status_body(status: int, raw: bytes) -> str | None:
    """None when ``raw`` is a failure metav1.Status with ``code == status``."""
    try:
        body = json.loads(raw)
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body is not an object"
    if body.get("kind") != "Status" or body.get("apiVersion") != "v1":
        return "body is not a v1 Status"
    if body.get("status") != "Failure":
        return "Status.status is not Failure"
    if body.get("code") != status:
        return f"Status.code {body.get('code')} != HTTP status {status}"
    if not body.get("message"):
        return "Status has no message"
    return None


async def send(session: aiohttp.ClientSession, base: str, case: Case) -> str | None:
    headers = {"Content-Type": case.ctype} if case.ctype else {}
    data: Any = case.body() if callable(case.body) else case.body
    url = URL(base + case.path, encoded=True)
    try:
        async with session.request(case.method, url, data=data, headers=headers) as resp:
            raw = await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError) as e:
        return f"{case.describe()}: client error {type(e).__name__}: {e}"
    if status not in case.expect or status >= 500:
        return f"{case.describe()}: got {status} (expected {sorted(case.expect)}): {raw[:300]!r}"
    problem = check_status_body(status, raw)
    if problem:
        return f"{case.describe()}: {problem}: {raw[:300]!r}"
    return None


async def snapshot(h: ServerHandle) -> tuple[int, dict[str, int]]:
    ds = h.running.datastore

    async def grab() -> tuple[int, dict[str, int]]:
        page = await ds.list("/")
        return page.revision, {r.key: r.revision for r in page.records}

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(grab(), h.loop))


async def setup_objects(session: aiohttp.ClientSession, base: str) -> Fixture:
    async def post(path: str, obj: dict[str, Any]) -> dict[str, Any]:
        async with session.post(base + path, data=dumps(obj), headers={"Content-Type": JSON}) as r:
            body = await r.json()
            assert r.status == 201, body
            return dict(body)

    await post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    cm_meta = {"name": "cm", "labels": {"fuzz": "yes"}}
    cm = await post(
        CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": cm_meta, "data": {"a": "1"}}
    )
    # Some more writes so that "stale" resourceVersions below the ConfigMap's exist.
    await post(DEPLOYS, deploy_obj("dep"))
    await post(SERVICES, service_obj("svc"))
    async with session.put(
        base + CM, data=dumps({**cm, "data": {"a": "2"}}), headers={"Content-Type": JSON}
    ) as r:
        cm = await r.json()
        assert r.status == 200, cm
    return Fixture(
        cm_rv=int(cm["metadata"]["resourceVersion"]),
        cm_uid=cm["metadata"]["uid"],
        rng=random.Random(SEED),
    )


async def test_malformed_requests_are_refused_and_store_nothing(live: ServerHandle) -> None:
    print(f"\nbad-input seed: {SEED} (set K3PY_FUZZ_SEED to replay)")
    ctx = client_ssl_context(live.kubeconfig)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ctx, limit=WORKERS), timeout=timeout
    ) as session:
        fx = await setup_objects(session, live.url)
        rev0, objects0 = await snapshot(live)
        assert objects0, "the snapshot should hold the bootstrap objects"

        cases = list(generate(fx, TOTAL))
        failures: list[str] = []
        sent: dict[str, int] = {}
        deadline = time.monotonic() + BUDGET_SECONDS
        queue = iter(cases)

        async def worker() -> None:
            for case in queue:
                if time.monotonic() > deadline:
                    return
                sent[case.cls] = sent.get(case.cls, 0) + 1
                problem = await send(session, live.url, case)
                if problem:
                    failures.append(problem)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        total = sum(sent.values())
        print(f"sent {total} malformed requests: {dict(sorted(sent.items()))}")
        assert not failures, f"{len(failures)} of {total} requests answered wrongly:\n" + "\n".join(
            failures[:40]
        )
        assert set(sent) == {g(fx).cls for g, _ in CLASSES}, "every class must have been exercised"

        # Nothing was stored: same revision, same objects at the same revisions.
        rev1, objects1 = await snapshot(live)
        assert rev1 == rev0, f"the store's revision moved from {rev0} to {rev1}"
        assert objects1 == objects0

        # And the server is healthy.
        async with session.get(live.url + "/readyz") as r:
            assert r.status == 200 and (await r.text()).strip() == "ok"
        ok = cm_obj("after-fuzz", random.Random(1))
        async with session.post(
            live.url + CMS, data=dumps(ok), headers={"Content-Type": JSON}
        ) as r:
            created = await r.json()
            assert r.status == 201, created
        async with session.get(live.url + CMS + "/after-fuzz") as r:
            got = await r.json()
            assert r.status == 200 and got["data"] == ok["data"], got
        rev2, _ = await snapshot(live)
        assert rev2 == rev0 + 1 == int(created["metadata"]["resourceVersion"])


def test_generators_only_make_requests_the_suite_can_check() -> None:
    """Every class yields well-formed cases: an expectation without 5xx, a path, a method."""
    fx = Fixture(cm_rv=10, cm_uid="u", rng=random.Random(SEED))
    seen = set()
    for case in generate(fx, 600):
        seen.add(case.cls)
        assert case.expect and all(400 <= c < 500 for c in case.expect), case.describe()
        assert case.path.startswith("/") and case.method.isupper()
    assert len(seen) == len(CLASSES)
