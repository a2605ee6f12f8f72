"""Stream protocols of the kubelet API: WebSocket channel framing towards clients
(``channels``), the SPDY remote-command client towards containerd's streaming server
(``remotecommand``) and container log files (``logs``).  SPDY framing and the port-forward
session live in ``k3py.agent.spdy``."""
