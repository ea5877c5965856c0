"""Dashboard sessions in auth, against a real auth gRPC server on loopback: who may open them, what a session
token may do, and every way a session ends."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from switchboard.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.cache import VerificationCache
from switchboard_auth.invalidation import InvalidationBus
from switchboard_auth.limits import MemoryLimiter
from switchboard_auth.selfserve import SelfServe
from switchboard_auth.servicer import AuthServicer
from switchboard_auth.store import KeyStore
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.identity import TOKEN_METADATA_KEY, ServiceIdentity

MASTER = "sk-master-unit"
TOKENS = {"facade": "facade-token-unit", "router": "router-token-unit"}
FACADE = ((TOKEN_METADATA_KEY, TOKENS["facade"]),)
ROUTER = ((TOKEN_METADATA_KEY, TOKENS["router"]),)


@dataclass
class Auth:
    stub: auth_pb2_grpc.AuthStub
    store: KeyStore

    async def sso(self, user_id: str, role: str = "", teams: tuple[str, ...] = (),
                  metadata: tuple[tuple[str, str], ...] = FACADE) -> auth_pb2.SessionInfo:
        person = auth_pb2.SsoSignIn(user_id=user_id, user_email=user_id, user_role=role, team_ids=teams,
                                    managed_team_ids=["platform", "ml"])
        return await self.stub.OpenSession(auth_pb2.OpenSessionRequest(sso=person), metadata=metadata)

    async def create_key(self, caller: str, **spec: object) -> auth_pb2.CreateKeyResponse:
        return await self.stub.CreateKey(auth_pb2.CreateKeyRequest(
            caller=auth_pb2.AdminCaller(api_key=caller), spec=auth_pb2.KeySpec(**spec)), metadata=FACADE)


async def serve(tmp_path: Path, master: str) -> tuple[grpc.aio.Server, Auth, grpc.aio.Channel]:
    store = KeyStore(make_engine(default_sqlite_dsn(tmp_path, "auth.db")))
    await store.migrate()
    bus = InvalidationBus()
    identity = ServiceIdentity("auth", trusted={n: hashlib.sha256(t.encode()).digest() for n, t in TOKENS.items()})
    servicer = AuthServicer(store, master, "pepper", MemoryLimiter(), bus, VerificationCache(bus),
                            identity=identity, self_serve=SelfServe(max_keys_per_user=2))
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return server, Auth(auth_pb2_grpc.AuthStub(channel), store), channel


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Auth]:
    server, handle, channel = await serve(tmp_path, MASTER)
    yield handle
    await channel.close()
    await server.stop(0)
    await handle.store.close()


async def refused(call: object, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()


async def test_only_the_facade_signs_people_in_by_sso(auth: Auth) -> None:
    await refused(auth.sso("eve@example.com", "proxy_admin", metadata=ROUTER), grpc.StatusCode.PERMISSION_DENIED)
    assert await auth.store.user("eve@example.com") is None
    opened = await auth.sso("ann@example.com", teams=("platform",))
    assert opened.token.startswith("sbs_") and opened.kind == "user" and opened.role == "internal_user"
    assert list(opened.team_ids) == ["platform"] and opened.self_serve.max_keys_per_user == 2
    # Stored by hash only.
    async with auth.store.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT session_hash, subject FROM ui_sessions"))).all()
    assert rows and all(opened.token not in str(row) for row in rows)


async def test_a_session_token_acts_with_its_users_rights(auth: Auth) -> None:
    ann = (await auth.sso("ann@example.com", teams=("platform",))).token
    bob = (await auth.sso("bob@example.com")).token
    made = await auth.create_key(ann, key_alias="ann-1", team_id="platform")
    assert made.info.user_id == "ann@example.com"
    await refused(auth.create_key(ann, key_alias="x", is_admin=True), grpc.StatusCode.PERMISSION_DENIED)
    await refused(auth.create_key(ann, key_alias="x", user_id="bob@example.com"), grpc.StatusCode.PERMISSION_DENIED)
    listed = await auth.stub.ListKeys(auth_pb2.ListKeysRequest(caller=auth_pb2.AdminCaller(api_key=bob)),
                                      metadata=FACADE)
    assert list(listed.keys) == []
    await refused(auth.stub.DeleteKeys(auth_pb2.DeleteKeysRequest(
        caller=auth_pb2.AdminCaller(api_key=bob), keys=[made.info.key_id]), metadata=FACADE),
        grpc.StatusCode.PERMISSION_DENIED)
    await refused(auth.stub.ListUsers(auth_pb2.ListUsersRequest(caller=auth_pb2.AdminCaller(api_key=ann)),
                                      metadata=FACADE), grpc.StatusCode.PERMISSION_DENIED)
    await auth.create_key(ann, key_alias="ann-2")
    await refused(auth.create_key(ann, key_alias="ann-3"), grpc.StatusCode.PERMISSION_DENIED)  # two at most
    # A session token is no API key: it cannot make requests.
    await refused(auth.stub.Authorize(auth_pb2.AuthorizeRequest(api_key=ann, model="m"), metadata=FACADE),
                  grpc.StatusCode.UNAUTHENTICATED)


async def test_a_user_session_ends_when_the_user_is_blocked_deleted_or_signs_out(auth: Auth) -> None:
    master = auth_pb2.AdminCaller(api_key=MASTER)
    ann = (await auth.sso("ann@example.com")).token
    await auth.stub.UpdateUser(auth_pb2.UserRequest(caller=master, spec=auth_pb2.UserSpec(
        user_id="ann@example.com", blocked=True), update_fields=["blocked"]), metadata=FACADE)
    await refused(auth.stub.GetSession(auth_pb2.SessionRequest(token=ann), metadata=FACADE),
                  grpc.StatusCode.UNAUTHENTICATED)
    await refused(auth.sso("ann@example.com"), grpc.StatusCode.UNAUTHENTICATED)  # nor sign in again

    bob = (await auth.sso("bob@example.com")).token
    await auth.stub.DeleteUsers(auth_pb2.DeleteUsersRequest(caller=master, user_ids=["bob@example.com"]),
                                metadata=FACADE)
    await refused(auth.stub.GetSession(auth_pb2.SessionRequest(token=bob), metadata=FACADE),
                  grpc.StatusCode.UNAUTHENTICATED)

    carl = (await auth.sso("carl@example.com")).token
    assert (await auth.stub.GetSession(auth_pb2.SessionRequest(token=carl), metadata=FACADE)).user_id
    await auth.stub.CloseSession(auth_pb2.SessionRequest(token=carl), metadata=FACADE)
    await refused(auth.stub.GetSession(auth_pb2.SessionRequest(token=carl), metadata=FACADE),
                  grpc.StatusCode.UNAUTHENTICATED)


async def test_key_and_master_sessions_end_with_their_credential(auth: Auth, tmp_path: Path) -> None:
    key = await auth.create_key(MASTER, key_alias="k")
    by_key = await auth.stub.OpenSession(auth_pb2.OpenSessionRequest(
        caller=auth_pb2.AdminCaller(api_key=key.key)), metadata=FACADE)
    assert by_key.kind == "key" and by_key.key_id == key.info.key_id and by_key.label == "k"
    await auth.stub.DeleteKeys(auth_pb2.DeleteKeysRequest(caller=auth_pb2.AdminCaller(api_key=MASTER),
                                                          keys=[key.info.key_id]), metadata=FACADE)
    await refused(auth.stub.GetSession(auth_pb2.SessionRequest(token=by_key.token), metadata=FACADE),
                  grpc.StatusCode.UNAUTHENTICATED)

    by_master = await auth.stub.OpenSession(auth_pb2.OpenSessionRequest(
        caller=auth_pb2.AdminCaller(api_key=MASTER)), metadata=FACADE)
    assert by_master.kind == "master" and by_master.is_admin
    # The same database behind a server whose master key was rotated: the old master's session has ended.
    server, rotated, channel = await serve(tmp_path, "sk-master-rotated")
    try:
        await refused(rotated.stub.GetSession(auth_pb2.SessionRequest(token=by_master.token), metadata=FACADE),
                      grpc.StatusCode.UNAUTHENTICATED)
    finally:
        await channel.close()
        await server.stop(0)
        await rotated.store.close()


async def test_an_expired_session_has_ended(auth: Auth) -> None:
    ann = (await auth.sso("ann@example.com")).token
    async with auth.store.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE ui_sessions SET expires_at = 1"))
    await refused(auth.stub.GetSession(auth_pb2.SessionRequest(token=ann), metadata=FACADE),
                  grpc.StatusCode.UNAUTHENTICATED)
    await refused(auth.stub.OpenSession(auth_pb2.OpenSessionRequest(
        caller=auth_pb2.AdminCaller(api_key=ann)), metadata=FACADE), grpc.StatusCode.INVALID_ARGUMENT)


async def test_a_teams_metadata_overrides_the_operators_self_serve_limits(auth: Auth) -> None:
    master = auth_pb2.AdminCaller(api_key=MASTER)
    await auth.stub.CreateTeam(auth_pb2.TeamRequest(caller=master, spec=auth_pb2.TeamSpec(
        team_id="ml", metadata={"self_serve_max_keys_per_user": "3", "self_serve_max_budget": "5"})),
        metadata=FACADE)
    ann = (await auth.sso("ann@example.com", teams=("ml",))).token
    for n in range(3):
        made = await auth.create_key(ann, key_alias=f"ml-{n}", team_id="ml")
        assert made.info.limits.max_budget_micros == 5_000_000  # the team's bound, given to a key without one
    await refused(auth.create_key(ann, key_alias="ml-3", team_id="ml"), grpc.StatusCode.PERMISSION_DENIED)
    await refused(auth.create_key(ann, key_alias="rich", team_id="ml",
                                  limits=auth_pb2.Limits(max_budget_micros=6_000_000)),
                  grpc.StatusCode.PERMISSION_DENIED)
