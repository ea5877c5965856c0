"""Jurisdictions: where a deployment processes a request, and where a key, team or request allows it.

A jurisdiction is a short lower-case name (``ca``, ``us``, ``eu``, ``uk``, ``local``). Deployments
declare one in the catalog (a Google Cloud region implies it: :func:`of_google_region`); keys and
teams carry the set they may be served in, and a request may narrow that set. Auth stores the
sets, the facade and the router read asks from clients, the router enforces them: each parses
names here, so ``CA``, ``" ca "`` and ``ca`` are one jurisdiction everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: In a key's or team's list: every jurisdiction (an explicit opt-out of the gateway's default).
ANY = "*"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")


class JurisdictionError(ValueError):
    """A jurisdiction list that cannot be read; the message says what is expected."""


def parse_jurisdictions(value: str | Iterable[str] | None, what: str = "jurisdictions") -> tuple[str, ...]:
    """Names from a comma-separated string or a list, lower-cased, in order, each once; ``()`` for nothing.

    ``*`` stands alone (any jurisdiction). Raises :class:`JurisdictionError` naming ``what``.
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise JurisdictionError(f"{what} must be jurisdiction names such as 'ca' or 'eu' (got {item!r}).")
        name = item.strip().lower()
        if not name and isinstance(value, str):
            continue
        if name != ANY and not _NAME.match(name):
            raise JurisdictionError(f"{what}: {item!r} is not a jurisdiction name (letters, digits, '-' and '_', at "
                                    "most 20, such as 'ca', 'us', 'eu'; or '*' for any).")
        if name not in names:
            names.append(name)
    if ANY in names and len(names) > 1:
        raise JurisdictionError(f"{what}: '*' (any jurisdiction) stands alone; list names or give '*'.")
    return tuple(names)


def allows_any(names: Iterable[str]) -> bool:
    """An empty list or ``*``: no jurisdiction constraint."""
    names = tuple(names)
    return not names or names == (ANY,)


#: Google Cloud regions outside the region families below, by exact name.
_GOOGLE_REGIONS = {
    "europe-west2": "uk", "europe-west6": "ch", "northamerica-south1": "mx",
    "asia-east1": "tw", "asia-east2": "hk", "asia-northeast1": "jp", "asia-northeast2": "jp",
    "asia-northeast3": "kr", "asia-south1": "in", "asia-south2": "in", "asia-southeast1": "sg",
    "asia-southeast2": "id", "southamerica-east1": "br", "southamerica-west1": "cl", "me-west1": "il",
    "me-central1": "qa", "me-central2": "sa", "africa-south1": "za",
}
#: Region families (name prefixes) and their jurisdiction; the exact names above win.
_GOOGLE_FAMILIES = (("northamerica-northeast", "ca"), ("us-", "us"), ("europe-", "eu"), ("australia-", "au"))


def of_google_region(location: str) -> str:
    """The jurisdiction of a Google Cloud location (``northamerica-northeast1`` → ``ca``, ``europe-west4`` →
    ``eu``, ``europe-west2`` → ``uk``); ``""`` for ``global`` (Google may serve it anywhere) or an unknown name."""
    location = location.strip().lower()
    exact = _GOOGLE_REGIONS.get(location)
    if exact is not None:
        return exact
    return next((jurisdiction for prefix, jurisdiction in _GOOGLE_FAMILIES if location.startswith(prefix)), "")
