"""A database out of reach answers a typed 503 naming the service's database; a bad query stays a failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard_common.database_errors import DatabaseUnreachable
from switchboard_common.errors import ServiceError, from_rpc_error
from switchboard_common.grpc_server import GrpcService, start_server
from tests.fakes.server import free_port


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[GrpcService]:
    # Nothing listens on this port: connecting is refused, as when the database server is down.
    unreachable = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
    sqlite = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with sqlite.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        await conn.execute(sa.text("INSERT INTO t VALUES (1)"))

    async def down(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        async with unreachable.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return b"never"

    async def down_stream(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
        yield b"first"
        async with unreachable.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def duplicate(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        async with sqlite.begin() as conn:
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        return b"never"

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Db", {
            "Down": grpc.unary_unary_rpc_method_handler(down),
            "DownStream": grpc.unary_stream_rpc_method_handler(down_stream),
            "Duplicate": grpc.unary_unary_rpc_method_handler(duplicate)}),))

    started = await start_server("127.0.0.1:0", register, ["test.Db"], [DatabaseUnreachable("ledger")])
    yield started
    await started.stop(0)
    await unreachable.dispose()
    await sqlite.dispose()


async def test_an_unreachable_database_is_a_typed_503_naming_it(service: GrpcService) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await channel.unary_unary("/test.Db/Down")(b"")
        err = from_rpc_error(failed.value, "ledger")
        assert err.http_status == 503 and err.error.code == "ledger_database_unavailable"
        assert "cannot reach its database" in err.message and "127.0.0.1" not in err.message

        call = channel.unary_stream("/test.Db/DownStream")(b"")
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            async for message in call:
                received.append(message)
        assert received == [b"first"]
        assert from_rpc_error(cut.value, "ledger").error.code == "ledger_database_unavailable"


async def test_a_query_the_database_refuses_stays_a_failure_of_the_service(service: GrpcService) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await channel.unary_unary("/test.Db/Duplicate")(b"")
    err: ServiceError = from_rpc_error(failed.value, "ledger")
    assert failed.value.code() == grpc.StatusCode.UNKNOWN and err.error.code == "ledger_error"
