"""Per-namespace defaults: the ``default`` ServiceAccount and the ``kube-root-ca.crt``
ConfigMap, in every active namespace (upstream's serviceaccounts-controller and
root-ca-cert-publisher).

Both are keyed by namespace: a namespace that appears, or an object of ours that is
deleted or edited, enqueues its namespace; the reconcile creates what is missing (and,
for the CA ConfigMap, puts back ``ca.crt`` if it was changed).  Terminating namespaces
are left alone (the API refuses creates in them anyway).

The CA is the server CA (``server-ca.crt`` in the cluster's TLS directory): the bundle
that verifies the API server's serving certificate, which is what pods mount to reach
``kubernetes.default.svc``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from k3py.client import AlreadyExists, Forbidden, NotFound
from k3py.client.resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS
from k3py.server.controllers.base import Controller, is_deleting, meta

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.serviceaccount")

DEFAULT_SA = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


def namespace_is_active(ns: Obj | None) -> bool:
    if ns is None or is_deleting(ns):
        return False
    return (ns.get("status") or {}).get("phase", "Active") == "Active"


class ServiceAccountController(Controller):
    """A ``default`` ServiceAccount in every active namespace, recreated if deleted."""

    name = "serviceaccount"

    def setup(self) -> None:
        self.namespaces = self.ctx.informer(NAMESPACES)
        self.accounts = self.ctx.informer(
            SERVICEACCOUNTS, field_selector=f"metadata.name={DEFAULT_SA}"
        )
        self.namespaces.add_handler(
            on_add=self._enqueue_ns, on_update=lambda _o, n: self._enqueue_ns(n)
        )
        self.accounts.add_handler(on_delete=self._enqueue_owner_ns)

    def _enqueue_ns(self, ns: Obj) -> None:
        self.queue.add(meta(ns).get("name", ""))

    def _enqueue_owner_ns(self, obj: Obj) -> None:
        self.queue.add(meta(obj).get("namespace", ""))

    async def started(self) -> None:
        self.enqueue_all(self.namespaces)

    async def reconcile(self, key: str) -> float | None:
        if not key or not namespace_is_active(self.namespaces.get(key)):
            return None
        if self.accounts.get(DEFAULT_SA, namespace=key) is not None:
            return None
        sa = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SA, "namespace": key},
        }
        try:
            await self.client.create(SERVICEACCOUNTS, sa, namespace=key)
        except (AlreadyExists, NotFound, Forbidden):
            return None  # there already, or the namespace is going
        return None


def read_root_ca(config: Any) -> str:
    """The server CA PEM from the cluster's TLS directory ("" when not available)."""
    tls_dir = getattr(config, "tls_dir", None)
    if tls_dir is None:
        return ""
    path = Path(tls_dir) / "server-ca.crt"
    try:
        return path.read_text()
    except OSError:
        log.warning("root CA publisher: cannot read %s", path)
        return ""


class RootCAPublisher(Controller):
    """``kube-root-ca.crt`` with the cluster CA in every active namespace."""

    name = "root-ca-cert-publisher"

    def setup(self) -> None:
        self.ca = read_root_ca(self.ctx.config)
        self.namespaces = self.ctx.informer(NAMESPACES)
        self.configmaps = self.ctx.informer(
            CONFIGMAPS, field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}"
        )
        self.namespaces.add_handler(
            on_add=self._enqueue_ns, on_update=lambda _o, n: self._enqueue_ns(n)
        )
        self.configmaps.add_handler(
            on_update=lambda _o, n: self._enqueue_owner_ns(n), on_delete=self._enqueue_owner_ns
        )

    def _enqueue_ns(self, ns: Obj) -> None:
        self.queue.add(meta(ns).get("name", ""))

    def _enqueue_owner_ns(self, obj: Obj) -> None:
        self.queue.add(meta(obj).get("namespace", ""))

    async def started(self) -> None:
        if self.ca:
            self.enqueue_all(self.namespaces)

    async def reconcile(self, key: str) -> float | None:
        if not self.ca or not key or not namespace_is_active(self.namespaces.get(key)):
            return None
        cm = self.configmaps.get(ROOT_CA_CONFIGMAP, namespace=key)
        if cm is None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": ROOT_CA_CONFIGMAP,
                    "namespace": key,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                },
                "data": {ROOT_CA_KEY: self.ca},
            }
            try:
                await self.client.create(CONFIGMAPS, body, namespace=key)
            except (AlreadyExists, NotFound, Forbidden):
                return None
            return None
        data = cm.get("data") or {}
        annotations = meta(cm).get("annotations") or {}
        if (
            data == {ROOT_CA_KEY: self.ca}
            and not cm.get("binaryData")
            and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION
        ):
            return None
        # Upstream overwrites data and the description; other annotations stay.
        cm["data"] = {ROOT_CA_KEY: self.ca}
        cm.pop("binaryData", None)
        cm["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
        try:
            await self.client.update(CONFIGMAPS, cm, namespace=key)
        except NotFound:
            return None
        return None


CONTROLLERS = [ServiceAccountController, RootCAPublisher]
