"""``python -m switchboard_common.migrate_command <service>``: apply a service's schema migrations and exit.

Run by the production migration Job before new pods start (services also
migrate on start, under an advisory lock, so this is belt and braces for
rolling upgrades). The service's own settings class decides the DSN.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from switchboard_common.database import make_engine, migrate


def database_url(service: str) -> str:
    settings_module = importlib.import_module(f"switchboard_{service}.settings")
    settings = getattr(settings_module, f"{service.capitalize()}Settings")()
    return str(getattr(settings, f"{service}_database_url", "") or settings.database_url)


async def run(service: str) -> list[int]:
    steps = importlib.import_module(f"switchboard_{service}.migrations")
    dsn = database_url(service)
    if not dsn:
        raise SystemExit(f"{service}: SWITCHBOARD_DATABASE_URL is not set")
    engine = make_engine(dsn)
    try:
        return await migrate(engine, steps.MIGRATIONS, steps.LOCK_ID, service)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("auth", "billing"):
        raise SystemExit("usage: python -m switchboard_common.migrate_command auth|billing")
    applied = asyncio.run(run(args[0]))
    print(f"{args[0]}: applied migrations {applied or 'none (up to date)'}")


if __name__ == "__main__":
    main()
