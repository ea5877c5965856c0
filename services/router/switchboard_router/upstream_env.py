"""What the environment says about reaching providers: proxies and the CA bundle.

The router honours the variables HTTP clients conventionally read:
``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` with ``NO_PROXY`` (credentials
in the proxy URL are sent as ``Proxy-Authorization``), and ``SSL_CERT_FILE`` /
``SSL_CERT_DIR``; without those two, TLS is verified against certifi's CA bundle.
The CA bundle is loaded once per process; the proxy variables are read when a
deployment's pool is built and each URL's route is decided once, so a call pays
a dictionary lookup at most.
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import certifi


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Verified TLS: the CA bundle of ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else certifi's."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """The proxy one URL goes through."""

    host: str
    port: int
    #: Whether the proxy itself is reached over TLS (an ``https://`` proxy URL).
    tls: bool
    #: ``Proxy-Authorization`` value from the credentials in the proxy URL, else None. It goes on the CONNECT of
    #: an HTTPS target, and on the request itself of a plain-HTTP one.
    authorization: str | None


class EnvironmentProxies:
    """The proxy of each URL from the environment (``*_PROXY``, ``NO_PROXY``), decided once per URL."""

    __slots__ = ("_proxies", "_decided")

    def __init__(self) -> None:
        self._proxies = urllib.request.getproxies_environment()
        self._decided: dict[str, ProxyRoute | None] = {}

    def route(self, url: str) -> ProxyRoute | None:
        """How ``url`` goes through its proxy; None when it goes direct."""
        if not self._proxies:
            return None
        try:
            return self._decided[url]
        except KeyError:
            decided = self._decided[url] = self._decide(url)
            return decided

    def _decide(self, url: str) -> ProxyRoute | None:
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        if not proxy or urllib.request.proxy_bypass_environment(parts.hostname or "", self._proxies):  # type: ignore[attr-defined]  # undocumented, so not in typeshed
            return None
        if "://" not in proxy:
            proxy = f"http://{proxy}"
        where = urlsplit(proxy)
        tls = where.scheme == "https"
        authorization = None
        if where.username is not None:
            credentials = f"{unquote(where.username)}:{unquote(where.password or '')}".encode()
            authorization = "Basic " + base64.b64encode(credentials).decode()
        return ProxyRoute(where.hostname or "", where.port or (443 if tls else 80), tls, authorization)
