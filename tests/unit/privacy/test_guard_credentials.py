"""BYOK credentials at rest: sealed with the configured key, opened only with it, rotated without loss."""

from __future__ import annotations

import pytest

from switchboard_common.credential_cipher import CredentialCipher, CredentialError, describe

OWN = {"openai": "sk-own-" + "a1" * 20, "anthropic": "sk-ant-own-" + "b2" * 20}


def test_sealed_credentials_hold_no_plain_value_and_open_with_the_key() -> None:
    cipher = CredentialCipher.from_setting(CredentialCipher.generate_key())
    assert cipher is not None
    token = cipher.seal(OWN)
    assert all(secret not in token for secret in OWN.values())
    assert cipher.open(token) == OWN
    assert cipher.open("") == {}
    assert "sk-" not in repr(cipher) and "keys hidden" in repr(cipher)


def test_another_key_cannot_open_and_says_what_to_check() -> None:
    token = CredentialCipher([CredentialCipher.generate_key()]).seal(OWN)
    with pytest.raises(CredentialError) as caught:
        CredentialCipher([CredentialCipher.generate_key()]).open(token)
    assert "SWITCHBOARD_ENCRYPTION_KEY" in str(caught.value)
    with pytest.raises(CredentialError):
        CredentialCipher([CredentialCipher.generate_key()]).open("not-a-token")


def test_rotation_new_key_first_old_still_opens_then_resealed_tokens_need_only_the_new() -> None:
    old, new = CredentialCipher.generate_key(), CredentialCipher.generate_key()
    stored = CredentialCipher([old]).seal(OWN)
    during = CredentialCipher.from_setting(f"{new}, {old}")
    assert during is not None and during.open(stored) == OWN
    rotated = during.rotate(stored)
    assert CredentialCipher([new]).open(rotated) == OWN
    with pytest.raises(CredentialError):
        CredentialCipher([old]).open(rotated)


def test_setting_is_validated_and_empty_disables_byok() -> None:
    assert CredentialCipher.from_setting("") is None and CredentialCipher.from_setting(" , ") is None
    with pytest.raises(ValueError, match="Fernet keys"):
        CredentialCipher.from_setting("not-a-key")
    cipher = CredentialCipher([CredentialCipher.generate_key()])
    with pytest.raises(ValueError):
        cipher.seal({"openai": ""})


def test_admin_view_shows_providers_and_last_four_only() -> None:
    shown = describe(OWN)
    assert shown == {"anthropic": "..." + OWN["anthropic"][-4:], "openai": "..." + OWN["openai"][-4:]}
