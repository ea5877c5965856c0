"""What billing keeps in memory for life: libraries only some deployments need load on first use, and the
models.dev document is kept as a small index, not as its parsed JSON.

- cryptography (about 6 MB) loads when a credential of a model added at run time is first sealed or opened, though
  billing makes its cipher at start (so a bad ``SWITCHBOARD_ENCRYPTION_KEY`` still fails at once), and creates its
  key in the data directory at first start on the embedded default;
- httpx (about 2 MB) loads with the first alert delivery to a webhook;
- the models.dev data (2 MB of JSON, about 15 MB once parsed) leaves an index of about 5 MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard_common.credential_cipher import CredentialCipher
from tests.harness import python_path


def _run(probe: str) -> str:
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": python_path()})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_billing_starts_without_cryptography_or_an_http_client(tmp_path: Path) -> None:
    key = CredentialCipher.generate_key()
    probe = ("import asyncio, sys, switchboard_billing.__main__\n"
             "from switchboard_common.credential_cipher import CredentialCipher\n"
             "from switchboard_billing.alert_worker import AlertWorker\n"
             "from switchboard_billing.model_store import cipher_for\n"
             f"assert cipher_for('', {str(tmp_path)!r}, embedded=True) is not None  # creates its key file\n"
             f"cipher = CredentialCipher([{key!r}])\n"
             "worker = AlertWorker(None, ())\n"
             "print('loaded:' + ','.join(m for m in ('cryptography', 'httpx') if m in sys.modules))\n"
             "print(cipher.open(cipher.seal({'api_key': 'sk-1'}))['api_key'], 'cryptography' in sys.modules)")
    loaded, used = _run(probe).splitlines()
    assert loaded == "loaded:", f"at start, {loaded}"
    assert used == "sk-1 True"


def test_a_generated_key_is_a_fernet_key() -> None:
    from cryptography.fernet import Fernet

    key = CredentialCipher.generate_key()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"sk-1")) == b"sk-1"
    assert key != CredentialCipher.generate_key()


def test_a_bad_encryption_key_still_fails_at_start() -> None:
    with pytest.raises(ValueError, match="Fernet keys"):
        CredentialCipher(["not-a-key"])
    with pytest.raises(ValueError, match="Fernet keys"):
        CredentialCipher(["c2hvcnQ="])  # base64, but 5 bytes


def test_the_models_dev_index_keeps_a_few_megabytes_not_the_parsed_document() -> None:
    probe = ("import gc\n"
             "from switchboard_rules import model_limits\n"
             "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
             "before = rss()\n"
             "assert model_limits.limits_for('openai', 'gpt-4o-mini').max_output_tokens > 0\n"
             "assert model_limits.known_models('openai') and model_limits.capabilities_for('openai', 'gpt-4o').vision\n"
             "gc.collect()\n"
             "print(round(rss() - before, 1))")
    grown = float(_run(probe))
    assert grown < 9, f"the models.dev data keeps {grown} MB (its parsed JSON alone is about 15 MB)"
