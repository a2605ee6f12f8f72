"""The server keeps a DaemonSet's template generation annotation as upstream does."""

from __future__ import annotations

from k3py.client import DAEMONSETS
from tests.unit.conftest import Env

ANN = "deprecated.daemonset.template.generation"


def ds(image: str) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


async def test_template_generation_starts_at_one_and_follows_template_changes(env: Env) -> None:
    c = env.client
    created = await c.create(DAEMONSETS, ds("one"))
    assert created["metadata"]["annotations"][ANN] == "1"
    same = await c.patch(DAEMONSETS, "d", {"spec": {"minReadySeconds": 3}}, namespace="default")
    assert same["metadata"]["annotations"][ANN] == "1"
    changed = await c.patch(
        DAEMONSETS, "d",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "two"}]}}}},
        namespace="default", patch_type="strategic",
    )  # fmt: skip
    assert changed["metadata"]["annotations"][ANN] == "2"
    status = await c.patch(
        DAEMONSETS, "d", {"status": {"numberReady": 0}}, namespace="default", subresource="status"
    )
    assert status["metadata"]["annotations"][ANN] == "2"
