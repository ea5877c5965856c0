"""Peer addresses become gRPC targets that balance over every replica."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from switchboard_common.channels import open_channel, target_for


def test_single_addresses_and_schemes_pass_through() -> None:
    assert target_for("127.0.0.1:50051") == "127.0.0.1:50051"
    assert target_for("auth:50051") == "auth:50051"
    assert target_for("dns:///switchboard-auth:50051") == "dns:///switchboard-auth:50051"
    assert target_for(" ipv4:10.0.0.1:1,10.0.0.2:2 ") == "ipv4:10.0.0.1:1,10.0.0.2:2"


def test_a_list_of_ipv4_literals_is_one_ipv4_target() -> None:
    assert target_for("127.0.0.1:1, 127.0.0.2:2,") == "ipv4:127.0.0.1:1,127.0.0.2:2"


def test_a_list_of_ipv6_literals_is_one_ipv6_target_with_brackets() -> None:
    assert target_for("[::1]:1,[fe80::2]:2") == "ipv6:[::1]:1,[fe80::2]:2"


def test_names_in_a_list_are_resolved_to_their_addresses() -> None:
    target = target_for("localhost:7001,127.0.0.9:7002")
    assert target.startswith("ipv4:") and target.endswith(",127.0.0.9:7002")
    assert "127.0.0.1:7001" in target


@pytest.mark.parametrize("bad", ["127.0.0.1:1,[::1]:2", "127.0.0.1:1,dns:///auth:2", "127.0.0.1,127.0.0.2:2"])
def test_mixed_or_malformed_lists_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        target_for(bad)


async def test_calls_survive_servers_that_close_connections_at_max_age() -> None:
    """Servers send GOAWAY at their max connection age; a call racing it is retried transparently, not failed."""
    server = grpc.aio.server(options=[("grpc.max_connection_age_ms", 20), ("grpc.max_connection_age_grace_ms", 60_000)])
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port},127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    failures: list[str] = []

    async def caller() -> int:
        calls = 0
        deadline = asyncio.get_running_loop().time() + 1.5
        while asyncio.get_running_loop().time() < deadline:
            try:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            except grpc.aio.AioRpcError as exc:
                failures.append(exc.code().name)
            calls += 1
        return calls

    try:
        calls = sum(await asyncio.gather(*(caller() for _ in range(16))))
    finally:
        await channel.close()
        await server.stop(None)
    assert calls > 500 and failures == [], f"{len(failures)} of {calls} calls failed: {set(failures)}"


class DnsResponder:
    """A DNS server on loopback that answers every A question with the same addresses (a headless Service)."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            end = 12  # the question's name: length-prefixed labels up to a zero byte
            while query[end]:
                end += query[end] + 1
            (qtype,) = struct.unpack(">H", query[end + 1:end + 3])
            question = query[12:end + 5]
            answers = [b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
                       for ip in (self.addresses if qtype == 1 else [])]
            header = struct.pack(">HHHHHH", struct.unpack(">H", query[:2])[0], 0x8180, 1, len(answers), 0, 0)
            self.sock.sendto(header + question + b"".join(answers), peer)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()
        self.sock.close()


async def test_a_dns_name_balances_over_every_replica_and_fails_over_when_one_dies() -> None:
    """``dns://<server>/name:port`` as a headless Service: every A record gets calls; a dead one is skipped."""
    servers: list[grpc.aio.Server] = []
    port = 0
    for ip in ("127.0.0.1", "127.0.0.2"):
        async def who(request: bytes, context: grpc.aio.ServicerContext, ip: str = ip) -> bytes:
            return ip.encode()
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "test.Who", {"Who": grpc.unary_unary_rpc_method_handler(who)})])
        try:
            port = server.add_insecure_port(f"{ip}:{port}")
        except RuntimeError:
            pytest.skip("127.0.0.2 is not a loopback address on this system (it is on Linux)")
        await server.start()
        servers.append(server)
    dns = DnsResponder(["127.0.0.1", "127.0.0.2"])
    channel = open_channel(f"dns://127.0.0.1:{dns.port}/replicas.switchboard.test:{port}")
    who = channel.unary_unary("/test.Who/Who")
    try:
        before = [await who(b"", timeout=5) for _ in range(20)]
        await servers[0].stop(None)
        after = [await who(b"", timeout=5) for _ in range(20)]
    finally:
        await channel.close()
        for server in servers:
            await server.stop(None)
        dns.close()
    assert set(before) == {b"127.0.0.1", b"127.0.0.2"} and before[-10:].count(b"127.0.0.1") == 5
    assert after == [b"127.0.0.2"] * 20
