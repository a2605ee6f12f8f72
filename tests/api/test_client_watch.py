"""The official Python client against k3py: list + watch (resume, synthetic ADDED,
410 after compaction), label and field selectors on list/watch/deletecollection, and
limit/continue pagination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.api.client_common import expect_error, fresh_namespace
from tests.conftest import ServerHandle, server_config, start_server_thread, stop_server_thread

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def ns(core_v1: Any) -> Iterator[str]:
    yield from fresh_namespace(core_v1)


def _cm(name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None) -> Any:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def _events(stream: Iterator[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"].metadata.name) for e in stream]


# ---- list + watch ------------------------------------------------------------------


def test_watch_from_resource_version_replays_exactly(core_v1: Any, ns: str) -> None:
    core_v1.create_namespaced_config_map(ns, _cm("a", data={"v": "0"}))
    listed = core_v1.list_namespaced_config_map(ns)
    rv = listed.metadata.resource_version
    assert int(rv) >= int(listed.items[0].metadata.resource_version)
    assert [i.metadata.name for i in listed.items] == ["a"]

    core_v1.create_namespaced_config_map(ns, _cm("b"))
    core_v1.patch_namespaced_config_map("a", ns, {"data": {"v": "1"}})
    core_v1.delete_namespaced_config_map("b", ns)
    core_v1.create_namespaced_config_map(ns, _cm("c"))

    w = watch.Watch()
    events = list(
        w.stream(core_v1.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1)
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
        ("ADDED", "c"),
    ]
    assert events[1]["object"].data == {"v": "1"}
    rvs = [int(e["object"].metadata.resource_version) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # Objects in events carry apiVersion and kind.
    assert events[0]["raw_object"]["apiVersion"] == "v1"
    assert events[0]["raw_object"]["kind"] == "ConfigMap"

    # Resuming from the middle sees only what follows.
    middle = str(rvs[1])
    later = list(
        w.stream(core_v1.list_namespaced_config_map, ns, resource_version=middle, timeout_seconds=1)
    )
    assert _events(iter(later)) == [("DELETED", "b"), ("ADDED", "c")]


def test_watch_without_resource_version_sends_synthetic_added(core_v1: Any, ns: str) -> None:
    for n in ("x1", "x2", "x3"):
        core_v1.create_namespaced_config_map(ns, _cm(n))
    w = watch.Watch()
    seen: list[tuple[str, str]] = []
    for ev in w.stream(core_v1.list_namespaced_config_map, ns, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            # The existing objects came first; now a live change.
            core_v1.create_namespaced_config_map(ns, _cm("live"))
        if len(seen) == 4:
            w.stop()
    assert sorted(seen[:3]) == [("ADDED", "x1"), ("ADDED", "x2"), ("ADDED", "x3")]
    assert seen[3] == ("ADDED", "live")


def test_watch_single_object_by_name(core_v1: Any, ns: str) -> None:
    core_v1.create_namespaced_config_map(ns, _cm("one"))
    core_v1.create_namespaced_config_map(ns, _cm("two"))
    rv = core_v1.list_namespaced_config_map(ns).metadata.resource_version
    core_v1.patch_namespaced_config_map("two", ns, {"data": {"k": "v"}})
    core_v1.patch_namespaced_config_map("one", ns, {"data": {"k": "v"}})
    events = watch.Watch().stream(
        core_v1.list_namespaced_config_map,
        ns,
        field_selector="metadata.name=one",
        resource_version=rv,
        timeout_seconds=1,
    )
    assert _events(events) == [("MODIFIED", "one")]


@pytest.fixture(scope="module")
def compacting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """A server of its own whose log keeps only the newest few revisions."""
    data: Path = tmp_path_factory.mktemp("k3py-compact")
    h = start_server_thread(
        server_config(data, retention_revisions=3, retention_seconds=0, compaction_interval=0)
    )
    yield h
    stop_server_thread(h)


def test_watch_from_compacted_revision_is_gone(compacting_server: ServerHandle) -> None:
    api = config.new_client_from_config(config_file=str(compacting_server.kubeconfig))
    with api:
        core = client.CoreV1Api(api)
        old_rv = core.create_namespaced_config_map("default", _cm("old")).metadata.resource_version
        for i in range(6):
            core.patch_namespaced_config_map("old", "default", {"data": {"i": str(i)}})
        compacted = compacting_server.call(compacting_server.running.datastore.compact())
        assert compacted > int(old_rv)

        # Raw: an ERROR event carrying a 410 Expired Status.
        resp = core.list_namespaced_config_map(
            "default",
            watch=True,
            resource_version=old_rv,
            timeout_seconds=1,
            _preload_content=False,
        )
        lines = [json.loads(line) for line in resp.data.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert lines[0]["type"] == "ERROR"
        status = lines[0]["object"]
        assert status["kind"] == "Status" and status["code"] == 410
        assert status["reason"] == "Expired"
        assert status["message"].startswith(f"too old resource version: {old_rv} (")

        # Through the Watch helper: it retries once, then raises 410.
        with pytest.raises(ApiException) as info:
            list(
                watch.Watch().stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=old_rv,
                    timeout_seconds=1,
                )
            )
        assert info.value.status == 410

        # A list at the compacted revision is gone too; the current one still works.
        expect_error(
            core.list_namespaced_config_map,
            "default",
            resource_version=old_rv,
            resource_version_match="Exact",
            status=410,
            reason="Expired",
        )
        current = core.list_namespaced_config_map("default").metadata.resource_version
        events = list(
            watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=current,
                timeout_seconds=1,
            )
        )
        assert events == []


# ---- label selectors ----------------------------------------------------------------

_LABELLED = {
    "l1": {"env": "prod", "tier": "web"},
    "l2": {"env": "dev", "tier": "web"},
    "l3": {"env": "qa"},
    "l4": None,
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["l1"]),
        ("env==prod", ["l1"]),
        ("env!=prod", ["l2", "l3", "l4"]),
        ("env in (prod,dev)", ["l1", "l2"]),
        ("env notin (prod,dev)", ["l3", "l4"]),
        ("tier", ["l1", "l2"]),
        ("!tier", ["l3", "l4"]),
        ("env=dev,tier=web", ["l2"]),
        ("env in (prod, qa),!tier", ["l3"]),
        ("env", ["l1", "l2", "l3"]),
        ("", ["l1", "l2", "l3", "l4"]),
    ],
)
def test_label_selectors_on_list(core_v1: Any, ns: str, selector: str, expected: list[str]) -> None:
    for name, labels in _LABELLED.items():
        core_v1.create_namespaced_config_map(ns, _cm(name, labels))
    got = core_v1.list_namespaced_config_map(ns, label_selector=selector).items
    assert [i.metadata.name for i in got] == expected


def test_invalid_label_selector_is_bad_request(core_v1: Any, ns: str) -> None:
    body = expect_error(
        core_v1.list_namespaced_config_map,
        ns,
        label_selector="env in prod",
        status=400,
        reason="BadRequest",
    )
    assert "unable to parse requirement" in body["message"] or "parse" in body["message"]


def test_label_selector_on_watch(core_v1: Any, ns: str) -> None:
    for name, labels in _LABELLED.items():
        core_v1.create_namespaced_config_map(ns, _cm(name, labels))
    rv = core_v1.list_namespaced_config_map(ns).metadata.resource_version
    core_v1.patch_namespaced_config_map("l1", ns, {"data": {"k": "1"}})  # prod: MODIFIED
    core_v1.patch_namespaced_config_map("l3", ns, {"data": {"k": "1"}})  # qa: unseen
    core_v1.patch_namespaced_config_map(
        "l2", ns, {"metadata": {"labels": {"env": "prod"}}}
    )  # enters
    core_v1.patch_namespaced_config_map("l1", ns, {"metadata": {"labels": {"env": "qa"}}})  # leaves
    core_v1.create_namespaced_config_map(ns, _cm("l5", {"env": "prod"}))
    core_v1.delete_namespaced_config_map("l5", ns)
    core_v1.delete_namespaced_config_map("l3", ns)  # qa: unseen
    events = watch.Watch().stream(
        core_v1.list_namespaced_config_map,
        ns,
        label_selector="env in (prod)",
        resource_version=rv,
        timeout_seconds=1,
    )
    assert _events(events) == [
        ("MODIFIED", "l1"),
        ("ADDED", "l2"),
        ("DELETED", "l1"),
        ("ADDED", "l5"),
        ("DELETED", "l5"),
    ]
    # Without a resourceVersion: synthetic ADDED only for matching objects.
    initial = watch.Watch().stream(
        core_v1.list_namespaced_config_map, ns, label_selector="env notin (prod)", timeout_seconds=1
    )
    assert sorted(_events(initial)) == [("ADDED", "l1"), ("ADDED", "l4")]


def test_label_selector_on_delete_collection(core_v1: Any, ns: str) -> None:
    for name, labels in _LABELLED.items():
        core_v1.create_namespaced_config_map(ns, _cm(name, labels))
    core_v1.delete_collection_namespaced_config_map(ns, label_selector="tier=web,env notin (dev)")
    assert [i.metadata.name for i in core_v1.list_namespaced_config_map(ns).items] == [
        "l2",
        "l3",
        "l4",
    ]
    core_v1.delete_collection_namespaced_config_map(ns, label_selector="!env")
    assert [i.metadata.name for i in core_v1.list_namespaced_config_map(ns).items] == ["l2", "l3"]
    core_v1.delete_collection_namespaced_config_map(ns, label_selector="env")
    assert core_v1.list_namespaced_config_map(ns).items == []


# ---- field selectors ----------------------------------------------------------------


def _pod(name: str) -> Any:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "fs"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]),
    )


def test_field_selectors_on_pods(core_v1: Any, ns: str) -> None:
    for n in ("p1", "p2", "p3"):
        core_v1.create_namespaced_pod(ns, _pod(n))
    rv = core_v1.list_namespaced_pod(ns).metadata.resource_version
    core_v1.patch_namespaced_pod_status("p2", ns, {"status": {"phase": "Running"}})

    def names(**kw: Any) -> list[str]:
        return [p.metadata.name for p in core_v1.list_namespaced_pod(ns, **kw).items]

    assert names(field_selector="metadata.name=p1") == ["p1"]
    assert names(field_selector="metadata.name!=p1") == ["p2", "p3"]
    assert names(field_selector="status.phase!=Running") == ["p1", "p3"]
    assert names(field_selector="status.phase=Running") == ["p2"]
    assert names(field_selector="status.phase=Pending,metadata.name!=p3") == ["p1"]
    assert names(field_selector=f"metadata.namespace={ns}") == ["p1", "p2", "p3"]
    assert names(field_selector="spec.nodeName=") == ["p1", "p2", "p3"]
    assert names(field_selector="status.phase!=Running", label_selector="app=fs") == ["p1", "p3"]
    # Across namespaces too.
    everywhere = core_v1.list_pod_for_all_namespaces(
        field_selector=f"metadata.namespace={ns},status.phase=Running"
    )
    assert [p.metadata.name for p in everywhere.items] == ["p2"]

    # Watch: p2 leaves "!=Running" when it starts running.
    events = watch.Watch().stream(
        core_v1.list_namespaced_pod,
        ns,
        field_selector="status.phase!=Running",
        resource_version=rv,
        timeout_seconds=1,
    )
    assert _events(events) == [("DELETED", "p2")]

    # deletecollection with a field selector (grace 0: no kubelet here).
    core_v1.delete_collection_namespaced_pod(
        ns, field_selector="status.phase!=Running", grace_period_seconds=0
    )
    assert names() == ["p2"]


def test_unsupported_field_selector_is_bad_request(core_v1: Any, ns: str) -> None:
    body = expect_error(
        core_v1.list_namespaced_config_map,
        ns,
        field_selector="data.x=1",
        status=400,
        reason="BadRequest",
    )
    assert '"data.x" is not a known field selector' in body["message"]


def test_field_selector_on_delete_collection(core_v1: Any, ns: str) -> None:
    for n in ("f1", "f2", "f3"):
        core_v1.create_namespaced_config_map(ns, _cm(n))
    core_v1.delete_collection_namespaced_config_map(ns, field_selector="metadata.name=f2")
    assert [i.metadata.name for i in core_v1.list_namespaced_config_map(ns).items] == ["f1", "f3"]


# ---- pagination -------------------------------------------------------------------------


def test_limit_continue_pagination(core_v1: Any, ns: str) -> None:
    names = [f"page-{i:02d}" for i in range(25)]
    for n in names:
        core_v1.create_namespaced_config_map(ns, _cm(n, {"paged": "yes"}))
    first = core_v1.list_namespaced_config_map(ns, limit=10)
    assert [i.metadata.name for i in first.items] == names[:10]
    assert first.metadata._continue
    snapshot_rv = first.metadata.resource_version

    # Changes after the first page do not leak into later pages: one consistent list.
    core_v1.delete_namespaced_config_map("page-22", ns)
    core_v1.create_namespaced_config_map(ns, _cm("page-99"))
    core_v1.patch_namespaced_config_map("page-15", ns, {"data": {"changed": "1"}})

    second = core_v1.list_namespaced_config_map(ns, limit=10, _continue=first.metadata._continue)
    assert [i.metadata.name for i in second.items] == names[10:20]
    assert second.metadata.resource_version == snapshot_rv
    assert second.items[5].data is None  # page-15 as it was
    assert second.metadata._continue

    third = core_v1.list_namespaced_config_map(ns, limit=10, _continue=second.metadata._continue)
    assert [i.metadata.name for i in third.items] == names[20:]
    assert third.metadata.resource_version == snapshot_rv
    assert not third.metadata._continue

    # Every token is reusable: the same page again.
    again = core_v1.list_namespaced_config_map(ns, limit=10, _continue=first.metadata._continue)
    assert [i.metadata.name for i in again.items] == names[10:20]

    # A fresh list sees the changes.
    now = [i.metadata.name for i in core_v1.list_namespaced_config_map(ns).items]
    assert "page-22" not in now and "page-99" in now

    # Pagination with a selector.
    sel = core_v1.list_namespaced_config_map(ns, limit=10, label_selector="paged=yes")
    got = [i.metadata.name for i in sel.items]
    while sel.metadata._continue:
        sel = core_v1.list_namespaced_config_map(
            ns, limit=10, label_selector="paged=yes", _continue=sel.metadata._continue
        )
        got += [i.metadata.name for i in sel.items]
    assert got == [n for n in names if n != "page-22"]


def test_bad_continue_token(core_v1: Any, ns: str) -> None:
    expect_error(
        core_v1.list_namespaced_config_map,
        ns,
        limit=5,
        _continue="garbage!!",
        status=400,
        reason="BadRequest",
    )
