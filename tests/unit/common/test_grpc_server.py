"""The gRPC bootstrap: one server per port, named when it is taken; a service's bug never reaches a client as text."""

from __future__ import annotations

import socket
import subprocess
import sys

import grpc
import pytest

from switchboard_common.errors import from_rpc_error
from switchboard_common.grpc_server import PortInUse, start_server
from switchboard_common.ports import port_holder


def _register_nothing(server: grpc.aio.Server) -> None:
    return None


async def test_a_second_server_on_a_port_fails_naming_the_port_and_its_holder() -> None:
    first = await start_server("127.0.0.1:0", _register_nothing, ["test.First"])
    try:
        with pytest.raises(PortInUse) as taken:
            await start_server(f"127.0.0.1:{first.port}", _register_nothing, ["test.Second"])
        message = str(taken.value)
        assert f"127.0.0.1:{first.port}" in message
        # The holder is this very process (the lookup skips itself), so no pid is named here; the message says so.
        assert "another process holds it" in message
    finally:
        await first.stop(0)


def test_the_holder_of_a_port_is_named_with_its_command() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    holder = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('127.0.0.1', {port})); s.listen(); print('up', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"up"
        found = port_holder(port)
        assert found is not None and found.startswith(f"pid {holder.pid} (") and "-c import socket" in found
    finally:
        holder.kill()
        holder.communicate()


async def test_a_bug_in_a_service_reaches_the_caller_without_its_text() -> None:
    async def boom(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise RuntimeError("connection to server at 10.0.0.7 (db-primary) failed: password authentication")

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "test.Boom", {"Call": grpc.unary_unary_rpc_method_handler(boom)}),))

    service = await start_server("127.0.0.1:0", register, ["test.Boom"])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary("/test.Boom/Call")(b"", timeout=5)
        err = from_rpc_error(failed.value, "billing")
        assert err.error.code == "billing_error" and err.error.http_status == 503
        assert "10.0.0.7" not in err.message and "RuntimeError" not in err.message and "billing" in err.message
        assert "10.0.0.7" in err.detail, "the detail is kept for the log line of whoever answers the client"
    finally:
        await service.stop(0)
