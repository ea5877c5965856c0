"""Peer addresses become gRPC targets that balance over every replica."""

from __future__ import annotations

import pytest

from switchboard_common.channels import target_for


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
