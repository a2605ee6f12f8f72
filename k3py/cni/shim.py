"""The CNI executables (``k3py`` and ``loopback``): thin, stdlib only.

containerd runs one process per CNI call.  Importing pyroute2 costs about a third of a
second of CPU, so these executables only hand the call to the agent's CNI daemon over its
unix socket (``daemonSocket`` in the network config, or beside the IPAM dir) and print its
answer.  When the daemon is not there (agent down, a DEL during cleanup) they do the work
themselves with the full plugin.  Installed as a copy of this file with a ``python -S``
shebang (see ``k3py.cni.install``).
"""

import json
import os
import socket
import sys

ENV_KEYS = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")


def _socket_path(conf: dict) -> str:
    """From the network config, else beside the executables (containerd's own ``loopback``
    config names no socket): ``<agent>/cni/bin/<exe>`` -> ``<agent>/cni/cni.sock``."""
    if conf.get("daemonSocket"):
        return str(conf["daemonSocket"])
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    return os.path.join(os.path.dirname(here), "cni.sock")


def _forward(path: str, request: bytes) -> tuple[int, str] | None:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(path)
    except OSError:
        return None
    with s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks) or b"{}")
    return int(reply.get("code", 1)), str(reply.get("stdout", ""))


def main() -> int:
    command = os.environ.get("CNI_COMMAND", "")
    conf_text = sys.stdin.read() if command != "VERSION" else (sys.stdin.read() if not sys.stdin.isatty() else "")
    try:
        conf = json.loads(conf_text) if conf_text.strip() else {}
    except ValueError:
        conf = {}
    if os.path.basename(sys.argv[0]) == "loopback":
        conf.setdefault("type", "loopback")
    env = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
    result = None
    path = _socket_path(conf)
    if path and command != "VERSION":
        request = json.dumps({"command": command, "env": env, "conf": json.dumps(conf)}).encode()
        result = _forward(path, request)
    if result is None:
        import site

        site.main()
        from k3py.cni.plugin import run

        result = run(command, env, json.dumps(conf))
    code, out = result
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
