"""Rate limits kept in Redis, exact across any number of auth replicas.

Admission is one Lua script: it checks every limit of the key and its team
and, only if all fit, counts the request in all of them, atomically (Redis
runs a script alone), with Redis' own clock so replicas never disagree about
time. Same semantics as :class:`~switchboard_auth.limits.MemoryLimiter`.

A lease granted with an admission (see ``limits``) is counted by the same
script: its requests are records ``<lease_id>#<i>`` in the RPM log (sorted set),
stamped at the end of the lease's use time, so that replicas which know
nothing of leases still count them; its tokens are added to the window's
counter. Returning a lease removes the unused records by name, which makes
it idempotent; its tokens are taken back once, guarded by a marker key.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from switchboard_auth.limits import (
    LEASE_FREE_DIVISOR,
    LEASE_LIMIT_DIVISOR,
    LEASE_MAX_REQUESTS,
    LEASE_MAX_SECONDS,
    LEASE_MIN_UNITS,
    LEASE_RETURN_MEMORY_SECONDS,
    Admitted,
    Denial,
    LeaseAsk,
    LeaseGrant,
    LeaseReturn,
    LimitCheck,
    LimitState,
    tightest,
)

#: ARGV: request id, tokens, slot ttl, lease id ('' = no lease), lease requests, lease tokens, lease min
#: tokens, lease use seconds, LEASE_FREE_DIVISOR, LEASE_LIMIT_DIVISOR, LEASE_MIN_UNITS, then (rpm, tpm,
#: parallel) per check (-1: no limit). KEYS: (rpm log, tpm counter base, parallel set) per check.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = math.floor(tonumber(t[1]) / 60) * 60
local rid = ARGV[1]
local tokens = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local H = 11
local n = #KEYS / 3
for i = 0, n - 1 do
  local rk, tk, pk = KEYS[i*3+1], KEYS[i*3+2] .. ':' .. window, KEYS[i*3+3]
  local rpm, tpm, par = tonumber(ARGV[H+1+i*3]), tonumber(ARGV[H+2+i*3]), tonumber(ARGV[H+3+i*3])
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
local out = {1, window, 0, 0, 0, '', 0, '', '0', '0'}
for i = 0, n - 1 do
  local rk, tk, pk = KEYS[i*3+1], KEYS[i*3+2] .. ':' .. window, KEYS[i*3+3]
  local rpm, tpm, par = tonumber(ARGV[H+1+i*3]), tonumber(ARGV[H+2+i*3]), tonumber(ARGV[H+3+i*3])
  if rpm >= 0 then
    redis.call('ZADD', rk, now, rid)
    if redis.call('TTL', rk) < 61 then redis.call('EXPIRE', rk, 61) end
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
local lease_id = ARGV[4]
if lease_id == '' then return out end
-- The lease: a share of every limit of the request, all or nothing (see limits.py).
local want_req, want_tok, min_tok, secs = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local free_div, limit_div, min_units = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local req, tok = want_req, want_tok
local req_scopes, tok_scopes = {}, {}
for i = 0, n - 1 do
  local rpm, tpm, par = tonumber(ARGV[H+1+i*3]), tonumber(ARGV[H+2+i*3]), tonumber(ARGV[H+3+i*3])
  if par >= 0 then return out end
  if rpm >= 0 then
    local free = rpm - redis.call('ZCARD', KEYS[i*3+1])
    req = math.min(req, math.floor(free / free_div), math.floor(rpm / limit_div))
    table.insert(req_scopes, i)
  end
  if tpm >= 0 then
    local free = tpm - tonumber(redis.call('GET', KEYS[i*3+2] .. ':' .. window) or '0')
    tok = math.min(tok, math.floor(free / free_div), math.floor(tpm / limit_div))
    table.insert(tok_scopes, i)
  end
end
if #req_scopes == 0 and #tok_scopes == 0 then return out end
if #tok_scopes > 0 then secs = math.min(secs, window + 60 - now) else tok = 0 end
if req < min_units or (#tok_scopes > 0 and tok < math.max(min_units, min_tok)) or secs <= 0 then return out end
local stamp = now + secs
local req_names, tok_names = {}, {}
if #req_scopes > 0 then
  local records = {}
  for j = 0, req - 1 do
    table.insert(records, stamp)
    table.insert(records, lease_id .. '#' .. j)
  end
  for _, i in ipairs(req_scopes) do
    local rk = KEYS[i*3+1]
    redis.call('ZADD', rk, unpack(records))
    local keep = math.ceil(secs) + 61
    if redis.call('TTL', rk) < keep then redis.call('EXPIRE', rk, keep) end
    table.insert(req_names, i)
  end
end
for _, i in ipairs(tok_scopes) do
  local tk = KEYS[i*3+2] .. ':' .. window
  redis.call('INCRBY', tk, tok)
  redis.call('EXPIRE', tk, 120)
  table.insert(tok_names, i)
end
out[4], out[5], out[6], out[7], out[8] = 1, req, table.concat(req_names, ','), tok, table.concat(tok_names, ',')
out[9], out[10] = tostring(secs), tostring(stamp)
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

#: KEYS: the lease's "returned" marker, then `nr` RPM logs, then the TPM counter bases.
#: ARGV: lease id, nr, requests granted, requests used, TPM window, unused tokens.
_RETURN_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease_id, nr = ARGV[1], tonumber(ARGV[2])
local granted, used = tonumber(ARGV[3]), tonumber(ARGV[4])
local window, unused = ARGV[5], tonumber(ARGV[6])
if used > granted then used = granted end
for i = 2, nr + 1 do
  local rk = KEYS[i]
  if granted > used then
    local gone = {}
    for j = used, granted - 1 do table.insert(gone, lease_id .. '#' .. j) end
    redis.call('ZREM', rk, unpack(gone))
  end
  -- Every use happened before this return: the used records need not outlive now + 60 s.
  if used > 0 then
    local records = {}
    for j = 0, used - 1 do
      table.insert(records, now)
      table.insert(records, lease_id .. '#' .. j)
    end
    local done = redis.pcall('ZADD', rk, 'XX', 'LT', unpack(records))
    if type(done) == 'table' and done.err then  -- Redis before 6.2: no LT
      for j = 0, used - 1 do
        local m = lease_id .. '#' .. j
        local score = redis.call('ZSCORE', rk, m)
        if score and tonumber(score) > now then redis.call('ZADD', rk, 'XX', now, m) end
      end
    end
  end
end
if unused > 0 and redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[7]) then
  for i = nr + 2, #KEYS do
    local tk = KEYS[i] .. ':' .. window
    if redis.call('EXISTS', tk) == 1 then
      if redis.call('INCRBY', tk, -unused) < 0 then redis.call('SET', tk, 0, 'KEEPTTL') end
    end
  end
end
return 1
"""


def _limit(value: int | None) -> int:
    return -1 if value is None else value


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLimiter:
    #: A Redis that cannot be reached (or refuses a script) makes rate limits unavailable: a 503, never a pass.
    unavailable_errors: tuple[type[Exception], ...] = (RedisError,)

    def __init__(self, client: aioredis.Redis, prefix: str, slot_ttl_seconds: float = 960.0) -> None:
        self.client = client
        self.prefix = prefix
        self.slot_ttl_seconds = slot_ttl_seconds
        self._admit = client.register_script(_ADMIT)
        self._release = client.register_script(_RELEASE)
        self._return_lease = client.register_script(_RETURN_LEASE)

    def _keys(self, scope: str, owner_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}rl:{scope}:{owner_id}"
        return f"{base}:rpm", f"{base}:tpm", f"{base}:par"

    async def admit(self, checks: list[LimitCheck], request_id: str, tokens: int,
                    lease: LeaseAsk | None = None) -> Admitted | Denial:
        keys: list[str] = []
        args: list[str | int | float] = [request_id, tokens, self.slot_ttl_seconds]
        if lease is None:
            args += ["", 0, 0, 0, 0]
        else:
            args += [lease.lease_id, min(lease.requests, LEASE_MAX_REQUESTS), lease.tokens, lease.min_tokens,
                     min(lease.use_seconds, LEASE_MAX_SECONDS)]
        args += [LEASE_FREE_DIVISOR, LEASE_LIMIT_DIVISOR, LEASE_MIN_UNITS]
        for check in checks:
            keys.extend(self._keys(check.scope, check.owner_id))
            args.extend((_limit(check.rpm), _limit(check.tpm), _limit(check.parallel)))
        result = await self._admit(keys=keys, args=args)
        if int(result[0]) == 0:
            check = checks[int(result[1])]
            name = _text(result[2])
            limit = {"rpm_limit": check.rpm, "tpm_limit": check.tpm, "max_parallel_requests": check.parallel}[name]
            return Denial(check.scope, check.owner_id, name, int(limit or 0), float(result[3]))
        admitted = Admitted(tpm_window_start=int(result[1]), holds_parallel_slot=bool(int(result[2])))
        if lease is not None and int(result[3]):
            def scopes(indices: object) -> tuple[str, ...]:
                return tuple(checks[int(i)].scope for i in _text(indices).split(",") if i)
            admitted.lease = LeaseGrant(lease.lease_id, int(result[4]), scopes(result[5]), int(result[6]),
                                        scopes(result[7]), admitted.tpm_window_start, float(result[8]),
                                        float(result[9]))
        rest = result[10:]
        for i in range(0, len(rest), 4):
            admitted.states.append(LimitState(_text(rest[i]), int(rest[i + 1]), int(rest[i + 2]), float(rest[i + 3])))
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

    async def return_lease(self, returned: LeaseReturn) -> None:
        keys = [f"{self.prefix}rl:lease:{returned.lease_id}:returned"]
        keys += [self._keys(scope, owner_id)[0] for scope, owner_id in returned.request_scopes]
        keys += [self._keys(scope, owner_id)[1] for scope, owner_id in returned.token_scopes]
        await self._return_lease(keys=keys, args=[
            returned.lease_id, len(returned.request_scopes), min(returned.requests, LEASE_MAX_REQUESTS),
            max(0, returned.requests_used), returned.tpm_window_start,
            max(0, returned.tokens - max(0, returned.tokens_used)), int(LEASE_RETURN_MEMORY_SECONDS)])

    async def close(self) -> None:
        await self.client.aclose()
