"""Two auth and two facade processes on PostgreSQL and Redis: one limit, one truth, within a second.

Needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL (a fresh database and
Redis key prefix are made for the run and removed after).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import psycopg
import pytest
import redis

from switchboard_auth.migrations import MIGRATIONS
from tests.conftest import fake_models
from tests.e2e.keys_helpers import admin_post, ok, sdk
from tests.e2e.replicated import NEEDS_DATASTORES, REDIS_URL, datastores
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_replicated_gateway

pytestmark = NEEDS_DATASTORES

SEEN_KEYS: list[str] = []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            fake_openai: tuple[FakeOpenAI, str]) -> Iterator[tuple[Gateway, str, str]]:
    tmp: Path = tmp_path_factory.mktemp("replicas")
    with datastores() as stores:
        dsn, prefix = stores.auth_dsn, stores.redis_prefix
        gw = start_replicated_gateway(tmp, fake_models(fake_openai[1]), auth_env={
            "SWITCHBOARD_DATABASE_URL": dsn, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_REDIS_PREFIX": prefix})
        try:
            yield gw, dsn, prefix
        finally:
            gw.stop()


def generate(gw: Gateway, base_url: str, **spec: object) -> dict[str, object]:
    created = ok(admin_post(gw, "/key/generate", spec, base_url=base_url))
    SEEN_KEYS.append(created["key"])
    return created  # type: ignore[no-any-return]


def attempt(client: openai.OpenAI) -> int:
    try:
        client.chat.completions.create(model="fake-good", messages=[{"role": "user", "content": "hi"}])
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code


def test_both_auth_replicas_migrated_one_postgres_schema(cluster: tuple[Gateway, str, str]) -> None:
    _, dsn, _ = cluster
    with psycopg.connect(dsn) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM auth_schema_migrations ORDER BY version")]
    assert versions == [m.version for m in MIGRATIONS]


def test_rpm_limit_is_exact_across_two_facades_and_two_auth_replicas(cluster: tuple[Gateway, str, str]) -> None:
    gw, _, _ = cluster
    limit = 10
    key = str(generate(gw, gw.base_urls[0], key_alias="shared-rpm", rpm_limit=limit)["key"])
    clients = [sdk(gw, key, url) for url in gw.base_urls]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda i: attempt(clients[i % 2]), range(3 * limit)))
    assert statuses.count(200) == limit, statuses
    assert statuses.count(429) == 2 * limit, statuses


def test_parallel_and_team_limits_are_shared_across_replicas(cluster: tuple[Gateway, str, str]) -> None:
    gw, _, _ = cluster
    team = ok(admin_post(gw, "/team/new", {"team_alias": "replicated", "rpm_limit": 4}, base_url=gw.base_urls[1]))
    keys = [str(generate(gw, gw.base_urls[i % 2], team_id=team["team_id"])["key"]) for i in range(2)]
    clients = [sdk(gw, keys[i % 2], gw.base_urls[i // 2 % 2]) for i in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: attempt(clients[i % 4]), range(12)))
    assert statuses.count(200) == 4 and statuses.count(429) == 8, statuses


@pytest.mark.parametrize("limited", [True, False], ids=["key-with-limits", "key-served-from-facade-cache"])
@pytest.mark.parametrize("change", ["delete", "block", "limit"])
def test_a_change_through_one_facade_is_seen_by_the_other_within_a_second(
        cluster: tuple[Gateway, str, str], change: str, limited: bool) -> None:
    """A key with rate limits is admitted by auth (whose replicas cache verifications); a key without
    is verified from each facade's own cache. Both caches must drop the key on a change made elsewhere."""
    gw, _, _ = cluster
    one, other = gw.base_urls
    alias = f"propagate-{change}-{'limited' if limited else 'cached'}"  # key aliases are unique
    created = generate(gw, one, key_alias=alias, **({"rpm_limit": 1000} if limited else {}))
    key = str(created["key"])
    for _ in range(4):  # both auth replicas and both facades have now verified (and cached) the key
        assert attempt(sdk(gw, key, one)) == 200
        assert attempt(sdk(gw, key, other)) == 200
    path, body, refused = {
        "delete": ("/key/delete", {"keys": [created["key_id"]]}, 401),
        "block": ("/key/block", {"key": created["key_id"]}, 401),
        "limit": ("/key/update", {"key": created["key_id"], "rpm_limit": 8}, 429),
    }[change]
    ok(admin_post(gw, path, body, base_url=one))
    changed_at = time.monotonic()
    client = sdk(gw, key, other)
    while (status := attempt(client)) != refused:
        assert status == 200
        assert time.monotonic() - changed_at < 1.0, f"the other facade still accepts the key after a {change}"
    assert time.monotonic() - changed_at < 1.0


def rpm_log(prefix: str, key_id: str) -> list[str]:
    """The members of the key's RPM log in Redis: request ids (admitted by Authorize) and
    ``<lease_id>#<i>`` (admissions a facade took under a rate-limit lease)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [m.decode() for m in client.zrange(f"{prefix}rl:key:{key_id}:rpm", 0, -1)]
    finally:
        client.close()


def tpm_counted(prefix: str, key_id: str) -> int:
    """Tokens counted for the key, summed over its TPM windows."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(int(client.get(k) or 0) for k in client.scan_iter(match=f"{prefix}rl:key:{key_id}:tpm:*"))
    finally:
        client.close()


def test_rate_limit_leases_never_admit_more_than_rpm_across_two_facades(cluster: tuple[Gateway, str, str]) -> None:
    """RPM 200 is large enough to lease: both facades admit most requests on their own, and the total
    admitted in the minute still never exceeds 200."""
    gw, _, prefix = cluster
    limit = 200
    created = generate(gw, gw.base_urls[0], key_alias="leased-rpm", rpm_limit=limit)
    key, key_id = str(created["key"]), str(created["key_id"])
    clients = [sdk(gw, key, url) for url in gw.base_urls]
    warm = [attempt(clients[0]), attempt(clients[1])]  # each facade has verified the key (and holds a lease)
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = warm + list(pool.map(lambda i: attempt(clients[i % 2]), range(2 * limit)))
    admitted = statuses.count(200)
    assert admitted <= limit, statuses
    assert admitted >= limit - 2 * (limit // 20), statuses  # at most one lease per facade may be left unused
    assert statuses.count(429) == len(statuses) - admitted, statuses
    by_authorize = [m for m in rpm_log(prefix, key_id) if "#" not in m]
    assert len(by_authorize) < admitted, "no request was admitted under a lease"
    assert len(rpm_log(prefix, key_id)) <= limit


def test_tpm_corrections_of_leased_requests_reach_the_counters(cluster: tuple[Gateway, str, str]) -> None:
    """Each leased request counts its prompt estimate locally; its real token count, and the unused part of
    the lease, reach Redis in the background: the counters end at the real usage."""
    gw, _, prefix = cluster
    created = generate(gw, gw.base_urls[0], key_alias="leased-tpm", tpm_limit=400_000, rpm_limit=100_000)
    key, key_id = str(created["key"]), str(created["key_id"])
    clients = [sdk(gw, key, url) for url in gw.base_urls]
    padding = "x" * 4000  # counted in the estimate (~1000 tokens), not in the provider's prompt tokens
    real = 0
    for i in range(12):
        answer = clients[i % 2].chat.completions.create(
            model="fake-good", messages=[{"role": "user", "content": "hi"}], user=padding)
        real += answer.usage.total_tokens  # type: ignore[union-attr]
    assert any("#" in m for m in rpm_log(prefix, key_id)), "no request was admitted under a lease"
    assert tpm_counted(prefix, key_id) > 12 * 1000  # estimates and leased tokens, not yet corrected
    # A change to the key retires both facades' leases: their unused tokens go back.
    ok(admin_post(gw, "/key/update", {"key": key_id, "key_alias": "leased-tpm-2"}, base_url=gw.base_urls[0]))
    deadline = time.monotonic() + 5
    while (counted := tpm_counted(prefix, key_id)) != real:
        assert time.monotonic() < deadline, f"counted {counted} tokens, really used {real}"
        time.sleep(0.05)


def test_revocation_stops_a_key_admitted_under_leases_within_a_second(cluster: tuple[Gateway, str, str]) -> None:
    gw, _, prefix = cluster
    one, other = gw.base_urls
    created = generate(gw, one, key_alias="leased-revoke", rpm_limit=1000)
    key, key_id = str(created["key"]), str(created["key_id"])
    client = sdk(gw, key, other)
    for _ in range(4):
        assert attempt(client) == 200
    log = rpm_log(prefix, key_id)
    assert len([m for m in log if "#" not in m]) == 1 and any("#" in m for m in log), log  # 3 were leased
    ok(admin_post(gw, "/key/delete", {"keys": [key_id]}, base_url=one))
    revoked_at, admitted = time.monotonic(), 4
    while (status := attempt(client)) != 401:
        assert status == 200
        admitted += 1
        assert time.monotonic() - revoked_at < 1.0, "the other facade still admits the key under its lease"
    # The lease's unused records were given back: only the real admissions remain.
    deadline = time.monotonic() + 3
    while len(rpm_log(prefix, key_id)) > admitted:
        assert time.monotonic() < deadline, rpm_log(prefix, key_id)
        time.sleep(0.05)


def test_the_plain_key_is_nowhere_in_postgres_redis_files_or_logs(cluster: tuple[Gateway, str, str]) -> None:
    """Runs last in this module: every key created above is searched for everywhere it could leak."""
    gw, dsn, prefix = cluster
    assert SEEN_KEYS
    dumps: list[tuple[str, bytes]] = []
    with psycopg.connect(dsn) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert "virtual_keys" in tables and "teams" in tables
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            dumps.append((f"postgres:{table}", "\n".join(r[0] for r in rows).encode()))
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=prefix + "*"):
        kind = client.type(name)
        value = client.get(name) if kind == b"string" else str(client.zrange(name, 0, -1)).encode()
        dumps.append((f"redis:{name!r}", name + b" " + (value or b"")))
    client.close()
    root = gw.data_dir.parent
    dumps += [(str(p), p.read_bytes()) for p in root.rglob("*") if p.is_file()]
    for where, content in dumps:
        for key in SEEN_KEYS:
            assert key[3:].encode() not in content, f"plain key found in {where}"

