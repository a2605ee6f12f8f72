"""The WebSocket channel protocols of exec/attach (``*.channel.k8s.io``).

Every binary message starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 status
(error), 4 resize.  ``v5`` adds the close signal ``[255, ch]`` (half-close of stdin);
``v4`` and ``v5`` carry a JSON ``metav1.Status`` on channel 3; older versions carry the
bare error text there (nothing on success).  The ``base64`` variants use text messages:
the channel as an ASCII digit followed by base64 data.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
BASE64 = "base64.channel.k8s.io"
# Server preference order (aiohttp picks the first of ours the client offers).
PROTOCOLS = [V5, V4, V4_BASE64, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io", BASE64]

SUCCESS: dict[str, object] = {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> dict[str, object]:
    """The Status of a finished command, as the kubelet reports it."""
    if code == 0:
        return dict(SUCCESS)
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command, exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure(message: str) -> dict[str, object]:
    return {"metadata": {}, "status": "Failure", "message": message}


@dataclass(frozen=True)
class Codec:
    """Framing of one negotiated subprotocol."""

    protocol: str

    @property
    def text(self) -> bool:
        return "base64" in self.protocol

    @property
    def close_signal(self) -> bool:
        return self.protocol == V5

    @property
    def json_status(self) -> bool:
        return self.protocol.startswith(("v4.", "v5."))

    def encode(self, channel: int, data: bytes) -> bytes | str:
        if self.text:
            return chr(ord("0") + channel) + base64.b64encode(data).decode()
        return bytes([channel]) + data

    def decode(self, message: bytes | str) -> tuple[int, bytes] | None:
        """(channel, payload) of a client message; None for an empty or malformed one."""
        if isinstance(message, str):
            if not self.text or not message:
                return None
            try:
                return ord(message[0]) - ord("0"), base64.b64decode(message[1:], validate=True)
            except (binascii.Error, ValueError):
                return None
        if not message:
            return None
        return message[0], bytes(message[1:])

    def status(self, raw: bytes) -> bytes | str | None:
        """The status channel message for a runtime Status (JSON); None when nothing is sent."""
        if self.json_status:
            return self.encode(ERROR, raw)
        try:
            st = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self.encode(ERROR, raw)
        if not isinstance(st, dict) or st.get("status") == "Success":
            return None
        return self.encode(ERROR, str(st.get("message", "")).encode())
