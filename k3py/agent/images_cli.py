"""``k3py images import FILE…`` and ``k3py images list``: the node's containerd images,
for machines without a registry (as ``k3s ctr images import`` / ``crictl images``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from k3py.agent.config import AgentConfig


def _address(data_dir: str, endpoint: str) -> str:
    if endpoint:
        return endpoint.removeprefix("unix://")
    return str(AgentConfig(data_dir=Path(data_dir)).containerd_dir / "containerd.sock")


def _existing_socket(data_dir: str, endpoint: str) -> str:
    address = _address(data_dir, endpoint)
    if not Path(address).exists():
        where = f"--container-runtime-endpoint {endpoint}" if endpoint else f"--data-dir {data_dir}"
        raise click.ClickException(
            f"no containerd socket at {address}: is the k3py agent running with {where}?"
        )
    return address


_data_dir = click.option(
    "--data-dir",
    "-d",
    default="/var/lib/k3py",
    envvar="K3PY_DATA_DIR",
    show_default=True,
    help="The agent's data dir (its containerd socket lives there)",
)
_endpoint = click.option(
    "--container-runtime-endpoint",
    "endpoint",
    default="",
    envvar="K3PY_CONTAINER_RUNTIME_ENDPOINT",
    help="A CRI socket to use instead of the data dir's containerd",
)


@click.group()
def images() -> None:
    """Import and list the node's container images."""


@images.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_data_dir
@_endpoint
def import_(files: tuple[str, ...], data_dir: str, endpoint: str) -> None:
    """Import OCI or Docker image archives (tar) into the node's containerd."""
    from k3py.agent.images import import_archives

    address = _existing_socket(data_dir, endpoint)
    try:
        names = asyncio.run(import_archives(address=address, paths=[Path(f) for f in files]))
    except RuntimeError as e:
        raise click.ClickException(str(e)) from e
    for n in names:
        click.echo(f"imported {n}")


@images.command("list")
@_data_dir
@_endpoint
def list_(data_dir: str, endpoint: str) -> None:
    """List images as ``crictl images`` does."""
    from k3py.agent.cri.client import CRIClient, CRIError
    from k3py.agent.images import human_size

    address = _existing_socket(data_dir, endpoint)

    async def fetch() -> list[tuple[str, str, str, str]]:
        cri = await CRIClient.connect(address, timeout=5.0)
        try:
            rows = []
            for img in await cri.list_images():
                tags = list(img.repo_tags) or ["<none>:<none>"]
                for tag in tags:
                    repo, _, t = tag.rpartition(":")
                    rows.append(
                        (repo, t, img.id.removeprefix("sha256:")[:13], human_size(int(img.size)))
                    )
            return sorted(rows)
        finally:
            await cri.close()

    try:
        rows = asyncio.run(fetch())
    except CRIError as e:
        raise click.ClickException(f"cannot reach containerd at {address}: {e}") from e
    widths = [
        max(len(r[i]) for r in [("IMAGE", "TAG", "IMAGE ID", "SIZE"), *rows]) for i in range(4)
    ]
    for r in [("IMAGE", "TAG", "IMAGE ID", "SIZE"), *rows]:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
