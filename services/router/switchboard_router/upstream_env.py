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
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
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
    """How one URL reaches its proxy: extra request options and headers."""

    options: Mapping[str, Any]
    #: ``Proxy-Authorization`` for a plain-HTTP target (an HTTPS target sends it on the CONNECT instead).
    headers: Mapping[str, str]


_DIRECT_ROUTE = ProxyRoute(MappingProxyType({}), MappingProxyType({}))


class EnvironmentProxies:
    """The proxy of each URL from the environment (``*_PROXY``, ``NO_PROXY``), decided once per URL."""

    __slots__ = ("_proxies", "_decided")

    def __init__(self) -> None:
        self._proxies = urllib.request.getproxies_environment()
        self._decided: dict[str, ProxyRoute] = {}

    def route(self, url: str) -> ProxyRoute | None:
        """How ``url`` goes through its proxy; None when it goes direct."""
        if not self._proxies:
            return None
        decided = self._decided.get(url)
        if decided is None:
            decided = self._decided[url] = self._decide(url)
        return None if decided is _DIRECT_ROUTE else decided

    def _decide(self, url: str) -> ProxyRoute:
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        if not proxy or urllib.request.proxy_bypass_environment(parts.hostname or "", self._proxies):  # type: ignore[attr-defined]  # undocumented, so not in typeshed
            return _DIRECT_ROUTE
        if "://" not in proxy:
            proxy = f"http://{proxy}"
        where = urlsplit(proxy)
        if where.username is None:
            return ProxyRoute({"proxy": proxy}, {})
        credentials = f"{unquote(where.username)}:{unquote(where.password or '')}".encode()
        authorization = {"Proxy-Authorization": "Basic " + base64.b64encode(credentials).decode()}
        bare = proxy.replace(f"{where.netloc.rpartition('@')[0]}@", "", 1)
        if parts.scheme == "https":
            return ProxyRoute({"proxy": bare, "proxy_headers": authorization}, {})
        return ProxyRoute({"proxy": bare}, authorization)
