"""Virtual keys: generation, keyed hashing and constant-time comparison.

A key is a prefix (``sk-`` unless ``SWITCHBOARD_KEY_PREFIX`` names another) followed
by 32 random bytes (base64url, 43 characters). It is stored only as
HMAC-SHA256(pepper, key), the prefix included, so a key is found by its hash
whatever prefix it was issued with: a leaked database reveals neither the keys
nor, without the pepper, a way to test guesses offline.
"""

from __future__ import annotations

import hmac
import secrets

KEY_PREFIX = "sk-"
KEY_RANDOM_BYTES = 32


def generate_key(prefix: str = KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(key: str, pepper: str) -> str:
    # hmac.digest is the one-shot C path: the same digest as hmac.new(...).hexdigest(), at a fraction of the cost.
    return hmac.digest(pepper.encode(), key.encode(), "sha256").hex()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_key_id() -> str:
    """A public, non-secret identifier of a key (safe in logs, ledgers and URLs)."""
    return "key_" + secrets.token_hex(8)
