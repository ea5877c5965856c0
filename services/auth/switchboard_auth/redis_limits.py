"""Rate limits kept in Redis, exact across any number of auth replicas.

Admission is one Lua script: it checks every limit of the key and its team
and, only if all fit, counts the request in all of them, atomically (Redis
runs a script alone), with Redis' own clock so replicas never disagree about
time. Same semantics as :class:`~switchboard_auth.limits.MemoryLimiter`.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from switchboard_auth.limits import Admitted, Denial, LimitCheck, LimitState, tightest

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = math.floor(tonumber(t[1]) / 60) * 60
local rid = ARGV[1]
local tokens = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local n = #KEYS / 3
for i = 0, n - 1 do
  local rk, tk, pk = KEYS[i*3+1], KEYS[i*3+2] .. ':' .. window, KEYS[i*3+3]
  local rpm, tpm, par = tonumber(ARGV[4+i*3]), tonumber(ARGV[5+i*3]), tonumber(ARGV[6+i*3])
  if rpm >= 0 then
    redis.call('ZREMRANGEBYSCORE', rk, '-inf', now - 60)
    if redis.call('ZCARD', rk) + 1 > rpm then
      local oldest = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
      local retry = 60
      if oldest[2] then retry = tonumber(oldest[2]) + 60 - now end
      return {0, i, 'rpm_limit', tostring(retry)}
    end
  end
  if tpm >= 0 then
    local used = tonumber(redis.call('GET', tk) or '0')
    if used + tokens > tpm then
      return {0, i, 'tpm_limit', tostring(window + 60 - now)}
    end
  end
  if par >= 0 then
    redis.call('ZREMRANGEBYSCORE', pk, '-inf', now - ttl)
    if redis.call('ZCARD', pk) + 1 > par then
      return {0, i, 'max_parallel_requests', '1'}
    end
  end
end
local out = {1, window, 0}
for i = 0, n - 1 do
  local rk, tk, pk = KEYS[i*3+1], KEYS[i*3+2] .. ':' .. window, KEYS[i*3+3]
  local rpm, tpm, par = tonumber(ARGV[4+i*3]), tonumber(ARGV[5+i*3]), tonumber(ARGV[6+i*3])
  if rpm >= 0 then
    redis.call('ZADD', rk, now, rid)
    redis.call('EXPIRE', rk, 61)
    local count = redis.call('ZCARD', rk)
    local oldest = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
    table.insert(out, 'requests')
    table.insert(out, rpm)
    table.insert(out, rpm - count)
    table.insert(out, tostring(tonumber(oldest[2]) + 60 - now))
  end
  if tpm >= 0 then
    local used = redis.call('INCRBY', tk, tokens)
    redis.call('EXPIRE', tk, 120)
    local remaining = tpm - used
    if remaining < 0 then remaining = 0 end
    table.insert(out, 'tokens')
    table.insert(out, tpm)
    table.insert(out, remaining)
    table.insert(out, tostring(window + 60 - now))
  end
  if par >= 0 then
    redis.call('ZADD', pk, now, rid)
    redis.call('EXPIRE', pk, math.ceil(ttl))
    out[3] = 1
  end
end
return out
"""

_RELEASE = """
local rid = ARGV[1]
local window = ARGV[2]
local delta = tonumber(ARGV[3])
for i = 1, #KEYS, 2 do
  redis.call('ZREM', KEYS[i+1], rid)
  if delta ~= 0 then
    local tk = KEYS[i] .. ':' .. window
    if redis.call('EXISTS', tk) == 1 then
      if redis.call('INCRBY', tk, delta) < 0 then redis.call('SET', tk, 0, 'KEEPTTL') end
    end
  end
end
return 1
"""


def _limit(value: int | None) -> int:
    return -1 if value is None else value


class RedisLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str, slot_ttl_seconds: float = 960.0) -> None:
        self.client = client
        self.prefix = prefix
        self.slot_ttl_seconds = slot_ttl_seconds
        self._admit = client.register_script(_ADMIT)
        self._release = client.register_script(_RELEASE)

    def _keys(self, scope: str, owner_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}rl:{scope}:{owner_id}"
        return f"{base}:rpm", f"{base}:tpm", f"{base}:par"

    async def admit(self, checks: list[LimitCheck], request_id: str, tokens: int) -> Admitted | Denial:
        keys: list[str] = []
        args: list[object] = [request_id, tokens, self.slot_ttl_seconds]
        for check in checks:
            keys.extend(self._keys(check.scope, check.owner_id))
            args.extend((_limit(check.rpm), _limit(check.tpm), _limit(check.parallel)))
        result = await self._admit(keys=keys, args=args)
        if int(result[0]) == 0:
            check = checks[int(result[1])]
            name = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
            limit = {"rpm_limit": check.rpm, "tpm_limit": check.tpm, "max_parallel_requests": check.parallel}[name]
            return Denial(check.scope, check.owner_id, name, int(limit or 0), float(result[3]))
        admitted = Admitted(tpm_window_start=int(result[1]), holds_parallel_slot=bool(int(result[2])))
        rest = result[3:]
        for i in range(0, len(rest), 4):
            name = rest[i].decode() if isinstance(rest[i], bytes) else str(rest[i])
            admitted.states.append(LimitState(name, int(rest[i + 1]), int(rest[i + 2]), float(rest[i + 3])))
        admitted.states = tightest(admitted.states)
        return admitted

    async def release(self, scopes: list[tuple[str, str]], request_id: str, tpm_window_start: int,
                      token_delta: int) -> None:
        keys: list[str] = []
        for scope, owner_id in scopes:
            _, tpm, par = self._keys(scope, owner_id)
            keys.extend((tpm, par))
        if keys:
            await self._release(keys=keys, args=[request_id, tpm_window_start, token_delta])

    async def close(self) -> None:
        await self.client.aclose()
