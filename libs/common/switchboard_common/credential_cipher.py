"""Provider credentials a service stores, encrypted at rest: keys' and teams' own (bring your own key, in
auth) and those of models added at run time (in billing).

A key's or team's credentials (provider name -> API key), or a model's (setting -> value), are stored as one
Fernet token
(AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package) made with the key in
``SWITCHBOARD_ENCRYPTION_KEY``. The setting holds one or more Fernet keys separated by commas:
the first encrypts, every one decrypts, so a key is rotated by

1. putting a new key first (``SWITCHBOARD_ENCRYPTION_KEY=new,old``) and restarting the service: new and
   updated credentials are sealed with ``new``, old ones still open with ``old``;
2. re-sealing the stored tokens (``CredentialCipher.rotate``), after which ``old`` can be removed.

Plain credentials are never logged, never returned by the admin API and never stored; they exist
decrypted only in memory, on their way to the router. ``repr`` of the cipher and
of its errors shows no key material.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


def _fernet() -> ModuleType:
    """cryptography's Fernet, imported when a cipher is first made: a service that seals nothing never loads
    the library."""
    from cryptography import fernet

    return fernet


class CredentialError(Exception):
    """A stored credential token that cannot be opened (wrong key, damaged, or not a token)."""


class CredentialCipher:
    """Seals and opens the provider credentials of one key or team."""

    __slots__ = ("_fernet", "_invalid")

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required (SWITCHBOARD_ENCRYPTION_KEY)")
        fernet = _fernet()
        self._invalid = fernet.InvalidToken
        try:
            self._fernet: MultiFernet = fernet.MultiFernet([fernet.Fernet(key.strip().encode()) for key in keys])
        except ValueError:
            raise ValueError("SWITCHBOARD_ENCRYPTION_KEY must hold Fernet keys (32 url-safe base64-encoded bytes) "
                             "separated by commas; make one with CredentialCipher.generate_key()") from None

    @classmethod
    def from_setting(cls, value: str) -> CredentialCipher | None:
        """The cipher for a ``SWITCHBOARD_ENCRYPTION_KEY`` value; None when it is empty (BYOK disabled)."""
        keys = [key for key in (part.strip() for part in value.split(",")) if key]
        return cls(keys) if keys else None

    @staticmethod
    def generate_key() -> str:
        return str(_fernet().Fernet.generate_key().decode())

    def __repr__(self) -> str:
        return "CredentialCipher(<keys hidden>)"

    def seal(self, credentials: Mapping[str, str]) -> str:
        """One token holding every credential of a key, team or model."""
        for provider, secret in credentials.items():
            if not provider or not isinstance(secret, str) or not secret:
                raise ValueError(f"the credential for provider {provider!r} must be a non-empty string")
        return self._fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        """The credentials sealed in ``token``; {} for an empty token."""
        if not token:
            return {}
        try:
            raw = self._fernet.decrypt(token.encode())
        except self._invalid:
            raise CredentialError("stored provider credentials cannot be decrypted with SWITCHBOARD_ENCRYPTION_KEY "
                                  "(was the key that sealed them removed?)") from None
        value = json.loads(raw)
        return {str(k): str(v) for k, v in value.items()}

    def rotate(self, token: str) -> str:
        """``token`` re-sealed with the first (newest) key."""
        try:
            return str(self._fernet.rotate(token.encode()).decode())
        except self._invalid:
            raise CredentialError("stored provider credentials cannot be decrypted for rotation") from None


def describe(credentials: Mapping[str, str]) -> dict[str, str]:
    """What the admin API may show of credentials: the providers and the last four characters."""
    return {provider: "..." + secret[-4:] for provider, secret in sorted(credentials.items())}
