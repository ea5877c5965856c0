"""The operator dashboard at ``/ui``: server-rendered pages over the same Gateway calls as the admin API."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from switchboard_facade.ui.render import STATIC_DIR
from switchboard_facade.ui.routes import (
    alerts,
    audit,
    connect,
    keys,
    models,
    runtime_models,
    signin,
    sso,
    teams,
    usage,
    users,
)

router = APIRouter()
# runtime_models before models: "/ui/models/runtime" must not be read as the page of a model named "runtime".
for _module in (signin, sso, usage, keys, teams, users, audit, alerts, runtime_models, models, connect):
    router.include_router(_module.router)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """The icon browsers ask for on their own (pages link the same SVG), so that no visit logs a 404."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"cache-control": "public, max-age=86400"})


def install(app: FastAPI) -> None:
    """Adds the pages and serves /ui/static (the style sheet, the page script, the icon)."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="ui-static")
