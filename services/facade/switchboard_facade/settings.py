"""Facade settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from switchboard_common.settings import PeerSettings


class FacadeSettings(PeerSettings):
    #: HTTP bind address.
    host: str = "127.0.0.1"
    #: HTTP port of the gateway.
    port: int = 4000
    #: Address of the router service.
    router_address: str = "127.0.0.1:50053"
    #: Largest accepted request body, bytes (Cursor sends large code contexts); every route, checked from
    #: Content-Length before reading and counted while reading chunked bodies.
    max_body_bytes: int = 20 * 1024 * 1024
    #: Largest request head (request line and headers), bytes; larger heads get 431 before anything else runs.
    http_max_header_bytes: int = 64 * 1024
    #: Seconds a client has to send a whole request head, from the connection's start or its first byte.
    http_header_timeout_seconds: float = 10.0
    #: Longest pause, seconds, between two pieces of a request body before the connection is closed.
    http_body_timeout_seconds: float = 30.0
    #: Seconds an idle keep-alive connection stays open between requests.
    http_idle_timeout_seconds: float = 5.0
    #: Requests one connection may carry; the last answer says ``connection: close``. 0: no limit.
    http_max_requests_per_connection: int = 1000
    #: Long-lived Exchange streams to the router that carry the completions, multiplexed (see
    #: switchboard_router.client.exchange); calls are spread over them round-robin. 0: one unary gRPC call per
    #: completion. A stream writes one message at a time, so calls queue behind each other's writes on a
    #: stream: eight keep that queue short at the concurrency of a busy facade (at concurrency 16, two streams
    #: cost over 10% more CPU per request and a third more added latency than eight).
    router_exchange_streams: int = 8
    #: The gateway's address as clients elsewhere reach it (e.g. https://llm.example.com or a tunnel's
    #: https://....trycloudflare.com); the dashboard's Connect Cursor page shows it. Empty: the address the page
    #: was opened at.
    public_url: str = ""
    #: Origins allowed by CORS ("*" lets the Cursor editor and browser tools call the gateway).
    cors_origins: str = "*"
    #: Also send the custody and request-id headers under this prefix (e.g. "x-ni-": x-ni-custody-path,
    #: x-ni-resolved-jurisdiction, x-ni-request-id, ...); empty: only the x-switchboard-* names.
    header_alias_prefix: str = ""
    # -- dashboard sign-in (docs/sso.md) ----------------------------------------------------------------------
    #: The OpenID Connect provider's issuer URL (its discovery document is <issuer>/.well-known/openid-configuration);
    #: empty: no single sign-on. With the client id and secret, the sign-in page offers "Sign in with SSO".
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    #: Scopes asked for (space- or comma-separated; "openid" is always asked).
    oidc_scopes: str = "openid email profile"
    #: Where the provider sends the browser back; empty: <public_url or the page's address>/ui/sso/callback.
    oidc_redirect_url: str = ""
    #: The claim that names the user (its value becomes the user_id); "sub" is used when it is missing.
    oidc_user_claim: str = "email"
    #: The claim that lists the person's groups (a list or a comma-separated string).
    oidc_groups_claim: str = "groups"
    #: Group → team: "group=team_id,group2=team_id2". A person is made a member of the mapped teams of their groups
    #: and removed from the other mapped teams at each sign-in; a missing team is created.
    oidc_group_teams: str = ""
    #: Group → role: "sb-admins=proxy_admin,auditors=proxy_admin_viewer"; the strongest role of a person's groups wins.
    oidc_group_roles: str = ""
    #: A claim whose value is the role itself (e.g. "switchboard_role"); wins over oidc_group_roles when present.
    oidc_role_claim: str = ""
    #: Role of a person no mapping gives one to ("internal_user", "internal_user_viewer", ...).
    oidc_default_role: str = "internal_user"
    #: Seconds the provider's discovery document and keys are kept before being fetched again (an unknown key id
    #: fetches the keys again at once).
    oidc_cache_seconds: float = 3600.0
    #: Seconds allowed for any call to the provider.
    oidc_timeout_seconds: float = 10.0
    #: The master key may sign in to the dashboard (break-glass); false: only SSO and virtual keys.
    ui_master_key_login: bool = True
    #: Hours a dashboard session lasts.
    ui_session_hours: float = 8.0
