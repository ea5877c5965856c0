"""Spend in a window without reading every ledger row in it: hourly totals per budget subject, kept by the database.

Every reservation and every watched settlement asks how much a key, team or
user spent in a window. Summed from the ledger, that costs one row read per
request the subject ever made in the window — a key that made a million
requests this month pays a million reads on each reservation, and more every
hour. So the ledger keeps ``spend_buckets``: per subject (``key:<id>``,
``team:<id>``, ``user:<id>``, ``key_model:<key id>/<model>``, as
``budget_subjects`` names them) and per UTC hour, the sum of ``cost_micros`` of
its rows that started in that hour.

The buckets are maintained by triggers on ``usage_ledger`` (:data:`SQLITE_TRIGGERS`,
:data:`POSTGRES_TRIGGERS`): inserted, updated (a provisional row replaced by the
router's) and deleted rows move their cost in the same transaction as the row
itself, whoever writes it. A window's spend is then exact, not an estimate
(:func:`spent_sql`): the whole hours inside the window come from the buckets,
and the rows of the at most two partial hours at its edges from the ledger,
through its (subject, started_at_ms) indexes. A window always covers "now" (the
current hour is whole in the buckets unless the window began in it), so the
ledger part is at most an hour's rows at the window's start.

On PostgreSQL the triggers run once per statement over its transition tables,
updating a statement's buckets in one sorted upsert, so two settlements that
touch the same buckets lock them in the same order and never deadlock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: A bucket's length: one hour, on UTC hour boundaries (every timezone's day is whole hours but a few).
HOUR_MS = 3_600_000
#: The window of an all-time budget: every instant a ledger row can have.
ALL_TIME = (0, 2**62)

#: The ledger rows of a scope's subject (parameters ``:owner`` and, for a key's budget on a model, ``:model``).
_OWNER_SQL = {
    "key": "key_id = :owner{s}",
    "team": "team_id = :owner{s}",
    "user": "user_id = :owner{s}",
    "key_model": "key_id = :owner{s} AND model = :model{s}",
}


@dataclass(frozen=True, slots=True)
class Span:
    """``[start_ms, end_ms)`` as whole hours ``[hours_from, hours_to)`` and the partial hours at its edges."""

    hours_from: int
    hours_to: int
    head: tuple[int, int]
    tail: tuple[int, int]


def split(start_ms: int, end_ms: int) -> Span:
    """The whole hours of the window and its edges (an edge may be empty; a window inside one hour is all edge)."""
    first = -(-start_ms // HOUR_MS) * HOUR_MS  # the first hour boundary at or after the start
    last = end_ms // HOUR_MS * HOUR_MS  # the last at or before the end
    if first >= last:
        return Span(0, 0, (start_ms, end_ms), (0, 0))
    return Span(first, last, (start_ms, first), (last, end_ms))


def spent_sql(scope: str, suffix: str = "") -> str:
    """A scalar SQL expression: the subject's spend in the window of :func:`spent_params` (same ``suffix``), with
    ``:name`` parameters (SQLAlchemy's ``text`` and sqlite3 take them as they are; :func:`numbered` for asyncpg)."""
    owner = _OWNER_SQL[scope].format(s=suffix)
    hours = (f"(SELECT coalesce(sum(micros), 0) FROM spend_buckets WHERE subject = :subject{suffix} "
             f"AND hour_ms >= :hours_from{suffix} AND hour_ms < :hours_to{suffix})")
    head, tail = (f"(SELECT coalesce(sum(cost_micros), 0) FROM usage_ledger WHERE {owner} "
                  f"AND started_at_ms >= :{edge}_from{suffix} AND started_at_ms < :{edge}_to{suffix})"
                  for edge in ("head", "tail"))
    return f"({hours} + {head} + {tail})"


def spent_params(scope: str, subject_id: str, start_ms: int, end_ms: int, suffix: str = "") -> dict[str, object]:
    """The parameters of :func:`spent_sql` for one subject and window."""
    span = split(start_ms, end_ms)
    params: dict[str, object] = {
        f"subject{suffix}": f"{scope}:{subject_id}", f"hours_from{suffix}": span.hours_from,
        f"hours_to{suffix}": span.hours_to, f"head_from{suffix}": span.head[0], f"head_to{suffix}": span.head[1],
        f"tail_from{suffix}": span.tail[0], f"tail_to{suffix}": span.tail[1]}
    if scope == "key_model":
        key_id, _, model = subject_id.partition("/")
        params[f"owner{suffix}"], params[f"model{suffix}"] = key_id, model
    else:
        params[f"owner{suffix}"] = subject_id
    return params


_NAMED = re.compile(r"(?<!:):([a-z_0-9]+)")


def numbered(sql: str, params: Mapping[str, object], first: int = 1) -> tuple[str, list[object]]:
    """``sql`` with ``:name`` parameters as asyncpg's ``$1, $2, ...`` (from ``first``), and their values in order."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order[name] = first + len(order)
        return f"${order[name]}"

    text = _NAMED.sub(number, sql)
    return text, [params[name] for name in order]


# --- the triggers that keep the buckets ------------------------------------------------------------------------

#: The subjects of one ledger row ``r`` (NULL where it has none), as budget_subjects names them.
_SUBJECTS_OF = {
    "key": "CASE WHEN {r}.key_id <> '' THEN 'key:' || {r}.key_id END",
    "team": "CASE WHEN {r}.team_id <> '' THEN 'team:' || {r}.team_id END",
    "user": "CASE WHEN {r}.user_id <> '' THEN 'user:' || {r}.user_id END",
    "key_model": "CASE WHEN {r}.key_id <> '' THEN 'key_model:' || {r}.key_id || '/' || {r}.model END",
}


def _sqlite_move(row: str, sign: str) -> str:
    subjects = " UNION ALL ".join(f"SELECT {expr.format(r=row)} AS subject" for expr in _SUBJECTS_OF.values())
    return (f"INSERT INTO spend_buckets (subject, hour_ms, micros) "
            f"SELECT subject, {row}.started_at_ms - {row}.started_at_ms % {HOUR_MS}, {sign}{row}.cost_micros "
            f"FROM ({subjects}) WHERE subject IS NOT NULL AND coalesce({row}.cost_micros, 0) <> 0 "
            "ON CONFLICT (subject, hour_ms) DO UPDATE SET micros = micros + excluded.micros;")


#: SQLite: row triggers (one writer at a time, so no order to keep).
SQLITE_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS usage_ledger_spend_insert AFTER INSERT ON usage_ledger "
    f"BEGIN {_sqlite_move('NEW', '')} END",
    f"CREATE TRIGGER IF NOT EXISTS usage_ledger_spend_update AFTER UPDATE OF cost_micros, started_at_ms, key_id, "
    f"team_id, user_id, model ON usage_ledger BEGIN {_sqlite_move('OLD', '-')} {_sqlite_move('NEW', '')} END",
    f"CREATE TRIGGER IF NOT EXISTS usage_ledger_spend_delete AFTER DELETE ON usage_ledger "
    f"BEGIN {_sqlite_move('OLD', '-')} END",
)


def _pg_moves(table: str, sign: str) -> str:
    subjects = ", ".join(f"({expr.format(r='r')})" for expr in _SUBJECTS_OF.values())
    return (f"SELECT s.subject, r.started_at_ms - r.started_at_ms % {HOUR_MS} AS hour_ms, "
            f"{sign}r.cost_micros AS micros FROM {table} r CROSS JOIN LATERAL (VALUES {subjects}) AS s(subject) "
            "WHERE s.subject IS NOT NULL AND coalesce(r.cost_micros, 0) <> 0")


def _pg_apply(moves: str) -> str:
    return ("INSERT INTO spend_buckets (subject, hour_ms, micros) "
            f"SELECT subject, hour_ms, sum(micros) FROM ({moves}) AS m GROUP BY subject, hour_ms "
            'HAVING sum(micros) <> 0 ORDER BY subject COLLATE "C", hour_ms '
            "ON CONFLICT (subject, hour_ms) DO UPDATE SET micros = spend_buckets.micros + EXCLUDED.micros;")


#: PostgreSQL: statement triggers over transition tables, one sorted upsert per statement.
POSTGRES_TRIGGERS = (
    f"""CREATE OR REPLACE FUNCTION usage_ledger_spend() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_pg_apply(_pg_moves('new_rows', ''))}
    ELSIF TG_OP = 'UPDATE' THEN
        {_pg_apply(_pg_moves('old_rows', '-') + ' UNION ALL ' + _pg_moves('new_rows', ''))}
    ELSE
        {_pg_apply(_pg_moves('old_rows', '-'))}
    END IF;
    RETURN NULL;
END $body$""",
    "DROP TRIGGER IF EXISTS usage_ledger_spend_insert ON usage_ledger",
    "CREATE TRIGGER usage_ledger_spend_insert AFTER INSERT ON usage_ledger REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_spend()",
    "DROP TRIGGER IF EXISTS usage_ledger_spend_update ON usage_ledger",
    "CREATE TRIGGER usage_ledger_spend_update AFTER UPDATE ON usage_ledger "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_spend()",
    "DROP TRIGGER IF EXISTS usage_ledger_spend_delete ON usage_ledger",
    "CREATE TRIGGER usage_ledger_spend_delete AFTER DELETE ON usage_ledger REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_spend()",
)

#: The buckets' table: spend per subject and UTC hour (micro-dollars; rows of unpriced models count 0).
CREATE_TABLE = ("CREATE TABLE IF NOT EXISTS spend_buckets (subject VARCHAR(300) NOT NULL, hour_ms BIGINT NOT NULL, "
                "micros BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (subject, hour_ms))")

#: Fills the buckets from the rows already in the ledger (run once, by the migration that creates them).
BACKFILL = ("INSERT INTO spend_buckets (subject, hour_ms, micros) "
            "SELECT subject, hour_ms, sum(micros) FROM ("
            + " UNION ALL ".join(f"SELECT {expr.format(r='usage_ledger')} AS subject, "
                                 f"started_at_ms - started_at_ms % {HOUR_MS} AS hour_ms, cost_micros AS micros "
                                 "FROM usage_ledger WHERE coalesce(cost_micros, 0) <> 0"
                                 for expr in _SUBJECTS_OF.values())
            + ") AS m WHERE subject IS NOT NULL GROUP BY subject, hour_ms HAVING sum(micros) <> 0")
