"""The chunks a stream's route event carries come first among the events that follow it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from switchboard.v1 import router_pb2
from switchboard_router.client.router_client import after_route


async def rest() -> AsyncIterator[router_pb2.StreamEvent]:
    yield router_pb2.StreamEvent(chunks=router_pb2.ChunkBatch(chunks=[b"c"]))
    yield router_pb2.StreamEvent(end=router_pb2.StreamEnd())


async def test_carried_chunks_become_the_first_chunks_event() -> None:
    first = router_pb2.StreamEvent(route=router_pb2.RouteInfo(deployment_id="d"),
                                   first_chunks=router_pb2.ChunkBatch(chunks=[b"a", b"b"]))
    events = [event async for event in after_route(first, rest())]
    assert [e.WhichOneof("event") for e in events] == ["chunks", "chunks", "end"]
    assert list(events[0].chunks.chunks) == [b"a", b"b"] and list(events[1].chunks.chunks) == [b"c"]


async def test_a_route_without_chunks_leaves_the_events_as_they_are() -> None:
    following = rest()
    first = router_pb2.StreamEvent(route=router_pb2.RouteInfo(deployment_id="d"))
    assert after_route(first, following) is following
