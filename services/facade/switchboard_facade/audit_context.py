"""The origin of an admin request (request id, client IP, user agent, door), set once so that every admin call
the request makes carries it to the service that records the change (:mod:`switchboard_common.audit_origin`).

The client IP is the one the facade sees: the peer's address, or the client's from ``X-Forwarded-For`` when the
peer is a trusted proxy (uvicorn's ``--forwarded-allow-ips``, applied on the framework path, see
``FacadeApp.trust_forwarded_headers``); a forwarded header from anyone else is ignored.
"""

from __future__ import annotations

from starlette.requests import Request

from switchboard_common import audit_origin

API = "api"
DASHBOARD = "dashboard"


def begin(request: Request, request_id: str, channel: str) -> None:
    client = request.client.host if request.client is not None else ""
    audit_origin.begin(audit_origin.Origin(request_id, client, request.headers.get("user-agent", ""), channel))
