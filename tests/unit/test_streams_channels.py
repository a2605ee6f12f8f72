"""The exec/attach WebSocket channel framing and Status translation."""

from __future__ import annotations

import orjson

from k3py.agent.streams import channels


def test_binary_framing_and_close_signal() -> None:
    v5 = channels.Codec(channels.V5)
    assert v5.encode(channels.STDOUT, b"hi") == b"\x01hi"
    assert v5.decode(b"\x00data") == (channels.STDIN, b"data")
    assert v5.decode(bytes([255, 0])) == (channels.CLOSE, b"\x00")
    assert v5.decode(b"") is None and v5.decode("0aGk=") is None
    assert v5.close_signal and not channels.Codec(channels.V4).close_signal


def test_base64_framing() -> None:
    b64 = channels.Codec(channels.V4_BASE64)
    assert b64.encode(channels.STDERR, b"hi") == "2aGk="
    assert b64.decode("0aGk=") == (channels.STDIN, b"hi")
    assert b64.decode("0!!") is None


def test_exit_status_shapes() -> None:
    assert channels.exit_status(0) == {"metadata": {}, "status": "Success"}
    st = channels.exit_status(3)
    assert st["reason"] == "NonZeroExitCode"
    assert st["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}


def test_status_passes_through_v4_v5_and_becomes_text_before() -> None:
    fail = orjson.dumps(channels.exit_status(2))
    ok = orjson.dumps(channels.SUCCESS)
    assert channels.Codec(channels.V5).status(fail) == b"\x03" + fail
    assert channels.Codec(channels.V4).status(ok) == b"\x03" + ok
    old = channels.Codec("channel.k8s.io")
    assert old.status(ok) is None
    msg = old.status(fail)
    assert isinstance(msg, bytes) and msg.startswith(
        b"\x03command terminated with non-zero exit code"
    )
