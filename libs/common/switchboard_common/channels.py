"""gRPC client channels between services.

One long-lived channel per peer service, created once per process. The channel
balances round-robin over every address its target names and reconnects by
itself, so a crashed replica costs only the calls that were in flight on it.

An address is one of:

* a gRPC target with a scheme (``dns:///switchboard-auth:50051``,
  ``ipv4:10.0.0.1:50051,10.0.0.2:50051``, ``unix:...``): used as is. ``dns:///``
  of a Kubernetes headless Service is the production form: the channel resolves
  every pod's address, and resolves again when a connection ends (servers close
  connections after ``grpc.max_connection_age_ms``, so new pods get traffic);
* one ``host:port``: a name is resolved through DNS the same way, an IP is used
  as is;
* a comma-separated list ``host1:50051,host2:50051``: IP literals become an
  ``ipv4:``/``ipv6:`` multi-address target; names are resolved once, when the
  channel opens, into their addresses (for a set of hosts that changes, give
  one DNS name that lists them all instead, with ``dns:///``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import grpc

CHANNEL_OPTIONS: Sequence[tuple[str, object]] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # A peer that vanished without closing its connections (node lost) is noticed within 25 s;
    # a crashed process closes them at once. The servers allow pings every 10 s.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.lb_policy_name", "round_robin"),
    # A dead replica is retried quickly and often enough to come back within a couple of seconds.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    # Re-resolution (after a connection ends) may happen every few seconds, so new pods are found soon.
    ("grpc.dns_min_time_between_resolutions_ms", 5_000),
    # No retry policy: a call the server may have seen is never repeated. Only transparent retries run:
    # a call that never reached a server application (its connection was just closing, e.g. after the
    # server's GOAWAY at max connection age, or to a replica that just died) is sent again elsewhere.
    ("grpc.enable_retries", 1),
)


#: Target schemes gRPC reads without ``//`` (a target that starts with one is used as is).
_SCHEMES = ("ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def _split_host_port(address: str) -> tuple[str, str]:
    """``host:port``, ``[v6]:port`` or ``v6:port`` → (host without brackets, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"not a host:port address: {address!r}")
    return host.removeprefix("[").removesuffix("]"), port


def _ip_version(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _resolve(host: str, port: str) -> list[tuple[str, int]]:
    """Every address ``host`` resolves to, as (ip, version), in the resolver's order."""
    infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    found: list[tuple[str, int]] = []
    for family, _, _, _, sockaddr in infos:
        entry = (str(sockaddr[0]), 6 if family == socket.AF_INET6 else 4)
        if entry not in found:
            found.append(entry)
    return found


def _has_scheme(address: str) -> bool:
    return "://" in address or address.startswith(_SCHEMES)


def target_for(address: str) -> str:
    """The gRPC target of a peer address (see the module docstring for the accepted forms)."""
    address = address.strip()
    if "," not in address or _has_scheme(address.split(",", 1)[0]):
        return address
    endpoints: list[tuple[str, str, int, bool]] = []  # (ip, port, version, written as a literal), in order
    for item in (part.strip() for part in address.split(",")):
        if not item:
            continue
        if _has_scheme(item):
            raise ValueError(f"a list of addresses takes plain host:port items, not {item!r}")
        host, port = _split_host_port(item)
        version = _ip_version(host)
        if version is not None:
            endpoints.append((host, port, version, True))
        else:
            endpoints.extend((ip, port, v, False) for ip, v in _resolve(host, port))
    literal_versions = {v for _, _, v, literal in endpoints if literal}
    if len(literal_versions) > 1:
        raise ValueError(f"one list cannot mix IPv4 and IPv6 addresses: {address!r}")
    # One gRPC target holds one address family: the literals' one, else IPv4 when names resolve to both.
    versions = literal_versions or {v for _, _, v, _ in endpoints}
    version = 4 if 4 in versions else 6
    kept = [(ip, port) for ip, port, v, _ in endpoints if v == version]
    if not kept:
        raise ValueError(f"no usable address in {address!r}")
    if version == 4:
        return "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in kept)
    return "ipv6:" + ",".join(f"[{ip}]:{port}" for ip, port in kept)


def open_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target_for(address), options=CHANNEL_OPTIONS)
