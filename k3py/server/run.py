"""The server process, booted in a straight line:

    config → PKI → datastore → object store + admission → bootstrap objects
    → API (HTTPS) → background loops (compaction, deletion finisher) → ready
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from k3py.config import ServerConfig
from k3py.server import admission, errors, lifecycle
from k3py.server.api.app import build_app
from k3py.server.api.state import APIState
from k3py.server.datastore import open_datastore
from k3py.server.inprocess import InProcessTransport
from k3py.server.registry.catalog import Catalog
from k3py.server.registry.store import ObjectStore

log = logging.getLogger("k3py.server")

SA_AUDIENCES = ["https://kubernetes.default.svc.cluster.local", "k3s"]


@dataclass
class RunningServer:
    config: ServerConfig
    runner: web.AppRunner
    datastore: Any
    store: ObjectStore
    catalog: Catalog
    state: APIState
    finisher: lifecycle.Finisher
    port: int
    token: str
    kubeconfig: str
    started_at: float
    transport: InProcessTransport  # the in-process API client transport (k3py.client)
    control: Any = None  # k3py.server.control.ControlPlane (scheduler, controllers, sim nodes)
    agent: Any = None  # k3py.agent.run.RunningAgent (this node), unless --disable-agent

    async def stop(self) -> None:
        if self.agent is not None:
            with contextlib.suppress(Exception):
                await self.agent.stop()
        if self.control is not None:
            await self.control.stop()
        await self.finisher.stop()
        if self.state.stream_proxy is not None:
            with contextlib.suppress(Exception):
                await self.state.stream_proxy.close()
        await self.runner.cleanup()
        await self.datastore.close()


async def start(cfg: ServerConfig) -> RunningServer:
    t0 = time.monotonic()
    # SQLite hands the GIL back per row; with the default 5 ms switch interval a
    # datastore thread waiting behind a busy event loop stalls for whole intervals.
    sys.setswitchinterval(0.001)
    from k3py.server import auth
    from k3py.server.auth import pki

    # PKI and join token.
    keys = pki.ensure_pki(
        tls_dir=cfg.tls_dir,
        node_ip=cfg.node_ip,
        advertise_address=cfg.advertise_address,
        tls_sans=cfg.tls_san,
        cluster_domain=cfg.cluster_domain,
        service_cidr=cfg.service_cidr,
    )
    token = auth.ensure_token(path=cfg.server_dir / "token", ca_pem=keys.server_ca_pem, secret=cfg.token or None)

    # Datastore.
    (cfg.server_dir / "db").mkdir(parents=True, exist_ok=True)
    ds = open_datastore(
        cfg.datastore_url,
        retention_seconds=cfg.retention_seconds,
        retention_revisions=cfg.retention_revisions,
        compaction_interval=cfg.compaction_interval,
    )
    await ds.start()

    # Object store, admission, CRDs.
    catalog = Catalog()
    store = ObjectStore(datastore=ds)
    crds = lifecycle.CRDServing(store=store, catalog=catalog)
    store.admit = [
        admission.NamespaceLifecycle(store=store, catalog=catalog),
        admission.ServiceAllocator(store=store, catalog=catalog, service_cidr=cfg.service_cidr, node_port_range=cfg.node_port_range),
        admission.PodDefaults(**toleration_seconds(cfg)),
        admission.CRDAdmission(clock=store.clock),
    ]
    store.after_write = [crds.after_write]
    await crds.load_all()

    # Authentication and authorization.
    issuer = auth.ServiceAccountTokens(key=keys.service_key)
    by_kind = {"Pod": ("", "v1", "pods"), "Secret": ("", "v1", "secrets"), "Node": ("", "v1", "nodes"),
               "ServiceAccount": ("", "v1", "serviceaccounts")}

    async def object_uid(kind: str, namespace: str, name: str) -> str | None:
        info = catalog.get(*by_kind[kind]) if kind in by_kind else None
        if info is None:
            return None
        rec = await ds.get(info.key(namespace, name))
        return None if rec is None else rec.obj()["metadata"].get("uid")

    async def sa_uid(namespace: str, name: str) -> str | None:
        return await object_uid("ServiceAccount", namespace, name)

    authenticator = auth.Authenticator(
        x509_auth=auth.X509Authenticator(client_ca=keys.client_ca.cert),
        token_authenticators=[
            auth.StaticTokens(),
            auth.ServiceAccountAuthenticator(
                tokens=issuer, audiences=SA_AUDIENCES, service_account_uid=sa_uid, object_uid=object_uid
            ),
        ],
    )
    from k3py.server.auth.nodeauthz import NodeAuthorizer, NodeRestriction, StorePodLookup

    # Kubelets (system:node:<name>) first: their own objects and their pods' only.
    node_authz = NodeAuthorizer(lookup=StorePodLookup(store=store, catalog=catalog))
    authorizer = auth.ChainAuthorizer([node_authz, auth.MastersAuthorizer()])
    store.admit.append(NodeRestriction())

    async def issue_token(*, namespace: str, sa_name: str, sa_uid: str, audiences: list[str],
                          expiration_seconds: int, bound_object: dict[str, Any] | None) -> tuple[str, str]:
        bound = None
        if bound_object:
            uid = await object_uid(bound_object.get("kind", ""), namespace, bound_object.get("name", ""))
            if uid is None or (bound_object.get("uid") and bound_object["uid"] != uid):
                raise errors.not_found(str(bound_object.get("kind", "")).lower() + "s", bound_object.get("name", ""))
            bound = auth.BoundObject(kind=bound_object["kind"], name=bound_object["name"], uid=uid)
        now = store.clock()
        tok = issuer.issue(namespace=namespace, sa_name=sa_name, sa_uid=sa_uid, audiences=audiences,
                           expiration_seconds=expiration_seconds, bound_object=bound, now=now)
        exp = now + datetime.timedelta(seconds=expiration_seconds)
        return tok, exp.strftime("%Y-%m-%dT%H:%M:%SZ")

    server_address = f"{cfg.advertise_address}:{cfg.https_listen_port}"
    state = APIState(
        catalog=catalog,
        store=store,
        authenticate=authenticator.authenticate,
        authorize=authorizer.authorize,
        server_address=server_address,
        token_issuer=issue_token,
        token_reviewer=authenticator.authenticate_token,
    )
    from k3py.server import policy

    policy.install(store=store, catalog=catalog, state=state)
    from k3py.server import streams

    streams.install(state, keys=keys, tls_dir=cfg.tls_dir)
    from k3py.server import metrics

    metrics.install(state)
    app = build_app(state)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    ssl_ctx = auth.server_ssl_context(keys)
    site = web.TCPSite(runner, host=cfg.bind_address, port=cfg.https_listen_port, ssl_context=ssl_ctx, backlog=1024, reuse_address=True)
    await site.start()
    port = cfg.https_listen_port
    if port == 0:
        server = site._server  # noqa: SLF001 - the bound port of an ephemeral listen
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        state.server_address = f"{cfg.advertise_address}:{port}"

    await lifecycle.bootstrap(
        store=store, catalog=catalog, advertise_ip=cfg.advertise_address, port=port,
        service_cidr=cfg.service_cidr, cluster_dns=cfg.cluster_dns,
    )
    finisher = lifecycle.Finisher(store=store, catalog=catalog)
    finisher.start()

    kubeconfig = cfg.write_kubeconfig
    if kubeconfig:
        auth.write_kubeconfig(
            path=Path(kubeconfig),
            mode=cfg.write_kubeconfig_mode,
            server_url=f"https://127.0.0.1:{port}",
            ca_pem=keys.server_ca_pem,
            client_cert_pem=keys.admin.cert_pem,
            client_key_pem=keys.admin.key_pem,
        )
    transport = InProcessTransport.from_state(state)
    from k3py.client import Client
    from k3py.server.join import JoinService

    state.join = JoinService(keys=keys, token=token, cfg=cfg,
                             client_factory=lambda: Client(transport, field_manager="k3py-join"))
    from k3py.server.control import start_control_plane

    control = await start_control_plane(cfg, transport)
    agent = None
    if not cfg.disable_agent:
        agent = await start_embedded_agent(cfg, keys=keys, transport=transport, join=state.join)
    state.ready = True
    log.info("k3py server ready on https://%s:%d in %.2fs", cfg.bind_address, port, time.monotonic() - t0)
    return RunningServer(
        config=cfg, runner=runner, datastore=ds, store=store, catalog=catalog, state=state,
        finisher=finisher, port=port, token=token, kubeconfig=kubeconfig, started_at=t0,
        transport=transport, control=control, agent=agent,
    )


async def start_embedded_agent(
    cfg: ServerConfig, *, keys: Any, transport: InProcessTransport, join: Any = None
) -> Any:
    """This node's agent in the server process: in-process client, certificates from our
    PKI.  Its node name is claimed with its node password first, as a joining agent's is,
    so that no agent can join under the server's node name."""
    from k3py.agent.join import node_password
    from k3py.agent.run import start_agent
    from k3py.client import Client
    from k3py.config import agent_config_for_server

    acfg = agent_config_for_server(cfg)
    if join is not None:
        try:
            await join.claim(name=acfg.node_name, password=node_password(acfg))
        except errors.APIError as e:
            raise RuntimeError(f"cannot start this node's agent: {e}") from e
    serving_ssl = kubelet_ssl_context(keys, tls_dir=cfg.tls_dir, node_name=acfg.node_name, node_ip=acfg.node_ip)
    client = Client(transport, field_manager="kubelet")
    return await start_agent(acfg, client=client, control_plane=True, serving_ssl=serving_ssl)


def kubelet_ssl_context(keys: Any, *, tls_dir: Path, node_name: str, node_ip: str) -> Any:
    """The embedded kubelet's serving context: a cert from the server CA (kept in tls_dir),
    client certs required from the client CA."""
    from k3py.agent.join import kubelet_ssl_context as context
    from k3py.server.auth import pki
    from k3py.server.auth.files import write_atomic

    cert_path, key_path = tls_dir / "serving-kubelet.crt", tls_dir / "serving-kubelet.key"
    if not _serving_cert_fits(cert_path, key_path, keys=keys, names=[node_name, node_ip]):
        cert, key = pki.issue_serving_cert(keys, common_name=node_name, dns_names=[node_name, "localhost"],
                                           ip_addresses=[node_ip, "127.0.0.1"])
        write_atomic(key_path, key, mode=0o600)
        write_atomic(cert_path, cert, mode=0o644)

    return context(cert=cert_path, key=key_path, client_ca_pem=keys.client_ca_pem)


def _serving_cert_fits(cert_path: Path, key_path: Path, *, keys: Any, names: list[str]) -> bool:
    """Whether the kept kubelet serving cert is ours, current, and names this node (its IP
    may change between boots)."""
    from k3py.server.auth import pki

    if not cert_path.exists() or not key_path.exists():
        return False
    try:
        cert = pki.load_leaf(cert_path.read_bytes())
    except (ValueError, pki.PKIError):
        return False
    sans = pki.cert_sans(cert)
    have = {*sans.dns, *(str(ip) for ip in sans.ips)}
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return (
        pki.issued_by(cert, keys.server_ca.cert)
        and all(n in have for n in names if n)
        and left > pki.RENEW_WITHIN
    )


def toleration_seconds(cfg: ServerConfig) -> dict[str, int]:
    args = cfg.component_args("kube-apiserver")
    out = {}
    for key, attr in (("default-not-ready-toleration-seconds", "not_ready_seconds"),
                      ("default-unreachable-toleration-seconds", "unreachable_seconds")):
        if key in args:
            out[attr] = int(args.pop(key))
    if args:
        raise ValueError(f"--kube-apiserver-arg: unknown setting(s) {', '.join(sorted(args))}")
    return out


def run(cfg: ServerConfig) -> None:
    """Run until SIGINT/SIGTERM."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass

    async def main() -> None:
        server = await start(cfg)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        with contextlib.suppress(Exception):
            await server.stop()

    asyncio.run(main())
