"""The operator dashboard at ``/ui``: server-rendered pages over the same Gateway calls as the admin API."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from switchboard_facade.ui.render import STATIC_DIR
from switchboard_facade.ui.routes import connect, keys, models, runtime_models, signin, teams, usage, users

router = APIRouter()
for _module in (signin, keys, runtime_models, models, usage, teams, users, connect):
    router.include_router(_module.router)


def install(app: FastAPI) -> None:
    """Adds the pages and serves /ui/static (CSS, the page script, the chart library built at install time)."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="ui-static")
