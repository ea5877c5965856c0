"""A port that is taken stops a start with one line naming the port, its holder and the setting that moves it."""

from __future__ import annotations

import socket

import pytest

from switchboard_common import metrics
from switchboard_common.ports import PortInUse


def test_a_metrics_port_in_use_is_named_with_its_setting_not_a_traceback() -> None:
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(PortInUse) as taken:
            metrics.serve(port)
    message = str(taken.value)
    assert message.startswith(f"cannot listen on 0.0.0.0:{port}: ") and "SWITCHBOARD_METRICS_PORT" in message
