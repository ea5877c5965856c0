"""The custody and request-id headers, also under another prefix (``SWITCHBOARD_HEADER_ALIAS_PREFIX``).

A gateway that replaces another keeps its clients' scripts working when the answers carry the headers
those scripts read: with the prefix ``x-ni-``, every answer that carries ``x-switchboard-custody-path``
also carries ``x-ni-custody-path`` with the same value, and likewise for the resolved jurisdiction, the
privacy tier, the PII summary and the request id (``x-ni-request-id``, on every answer, as
``x-request-id`` is). The Switchboard names stay; the aliases are added as each answer starts, on every
route (the fast lane's too), so no route needs to know.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: The Switchboard headers that get an alias, by the suffix the alias keeps.
ALIASED = {
    b"x-request-id": "request-id", b"x-switchboard-request-id": "request-id",
    b"x-switchboard-custody-path": "custody-path", b"x-switchboard-resolved-jurisdiction": "resolved-jurisdiction",
    b"x-switchboard-privacy-tier": "privacy-tier", b"x-switchboard-pii": "pii",
}
_PREFIX = re.compile(r"^[a-z][a-z0-9-]*-$")


class HeaderAliases:
    def __init__(self, prefix: str) -> None:
        prefix = prefix.strip().lower()
        if not _PREFIX.match(prefix) or prefix == "x-switchboard-":
            raise ValueError(f"SWITCHBOARD_HEADER_ALIAS_PREFIX={prefix!r}: give a header prefix ending in '-', such "
                             "as 'x-ni-'")
        self._names = {name: (prefix + suffix).encode("latin-1") for name, suffix in ALIASED.items()}
        self._text_names = {name.decode("latin-1"): alias for name, alias in self._names.items()}
        #: The alias names, for the headers a browser script may read (CORS).
        self.names = tuple(dict.fromkeys(alias.decode("latin-1") for alias in self._names.values()))

    def added(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``headers`` with the alias of each aliased header after them (one of each alias)."""
        extra: dict[bytes, bytes] = {}
        for name, value in headers:
            alias = self._names.get(name.lower())
            if alias is not None:
                extra.setdefault(alias, value)
        return [*headers, *extra.items()] if extra else headers

    def of(self, headers: Mapping[str, str], pairs: Iterable[tuple[bytes, bytes]] = ()) -> list[tuple[bytes, bytes]]:
        """The aliases :meth:`added` would add to an answer whose headers are ``headers`` (a route's, as text) then
        ``pairs``: for the fast lane, which writes a whole answer's head itself."""
        extra: dict[bytes, bytes] = {}
        for text_name, text_value in headers.items():
            alias = self._text_names.get(text_name.lower())
            if alias is not None:
                extra.setdefault(alias, text_value.encode("latin-1"))
        for name, value in pairs:
            alias = self._names.get(name.lower())
            if alias is not None:
                extra.setdefault(alias, value)
        return list(extra.items())

    def wrap(self, send: Send) -> Send:
        """``send`` with the aliases added to the answer's start."""

        async def aliased(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self.added(list(message.get("headers", ())))}
            await send(message)

        return aliased
