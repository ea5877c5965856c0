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

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


def _fernet() -> ModuleType:
    """cryptography's Fernet, imported when a cipher first seals or opens a token: a service that never does
    (billing with no model added at run time holding a credential) does not carry the library (about 6 MB)."""
    from cryptography import fernet

    return fernet


class CredentialError(Exception):
    """A stored credential token that cannot be opened (wrong key, damaged, or not a token)."""


class CredentialCipher:
    """Seals and opens the provider credentials of one key or team."""

    __slots__ = ("_keys", "_made", "_invalid")

    def __init__(self, keys: Sequence[str]) -> None:
        """Checks the keys at once (a misconfigured service fails at start, not at its first credential)."""
        if not keys:
            raise ValueError("at least one encryption key is required (SWITCHBOARD_ENCRYPTION_KEY)")
        self._keys = tuple(key.strip().encode() for key in keys)
        if not all(_is_fernet_key(key) for key in self._keys):
            raise ValueError("SWITCHBOARD_ENCRYPTION_KEY must hold Fernet keys (32 url-safe base64-encoded bytes) "
                             "separated by commas; make one with CredentialCipher.generate_key()")
        self._made: MultiFernet | None = None
        self._invalid: type[Exception] = Exception

    @property
    def _fernet(self) -> MultiFernet:
        if self._made is None:
            fernet = _fernet()
            self._invalid = fernet.InvalidToken
            self._made = fernet.MultiFernet([fernet.Fernet(key) for key in self._keys])
        return self._made

    @classmethod
    def from_setting(cls, value: str) -> CredentialCipher | None:
        """The cipher for a ``SWITCHBOARD_ENCRYPTION_KEY`` value; None when it is empty (BYOK disabled)."""
        keys = [key for key in (part.strip() for part in value.split(",")) if key]
        return cls(keys) if keys else None

    @staticmethod
    def generate_key() -> str:
        """A new Fernet key: 32 random bytes, url-safe base64 (the format ``Fernet.generate_key`` makes and
        :func:`_is_fernet_key` checks), made without loading cryptography, so that a service creating its key
        at first start does not carry the library for it."""
        return base64.urlsafe_b64encode(os.urandom(32)).decode()

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
        cipher = self._fernet
        try:
            raw = cipher.decrypt(token.encode())
        except self._invalid:
            raise CredentialError("stored provider credentials cannot be decrypted with SWITCHBOARD_ENCRYPTION_KEY "
                                  "(was the key that sealed them removed?)") from None
        value = json.loads(raw)
        return {str(k): str(v) for k, v in value.items()}

    def rotate(self, token: str) -> str:
        """``token`` re-sealed with the first (newest) key."""
        cipher = self._fernet
        try:
            return str(cipher.rotate(token.encode()).decode())
        except self._invalid:
            raise CredentialError("stored provider credentials cannot be decrypted for rotation") from None


def _is_fernet_key(key: bytes) -> bool:
    """Fernet's own rule for a key: 32 bytes in url-safe base64."""
    try:
        return len(base64.urlsafe_b64decode(key)) == 32
    except (binascii.Error, ValueError):
        return False


def describe(credentials: Mapping[str, str]) -> dict[str, str]:
    """What the admin API may show of credentials: the providers and the last four characters."""
    return {provider: "..." + secret[-4:] for provider, secret in sorted(credentials.items())}
