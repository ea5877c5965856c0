"""Which gateway the CLI talks to, and with which credential.

The URL: ``--url``, else ``SWITCHBOARD_URL``, else http://127.0.0.1:4000.
The credential: ``--api-key``, else ``SWITCHBOARD_API_KEY``, else ``SWITCHBOARD_MASTER_KEY``, else the
master key ``make run`` keeps in its data directory (``$SWITCHBOARD_DATA_DIR/master_key``, by default
``.switchboard/master_key``), so that the CLI works beside a local gateway with nothing exported.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:4000"
MASTER_KEY_FILE = "master_key"


def default_url() -> str:
    return os.environ.get("SWITCHBOARD_URL") or DEFAULT_URL


def master_key_file() -> Path:
    return Path(os.environ.get("SWITCHBOARD_DATA_DIR") or ".switchboard") / MASTER_KEY_FILE


def default_api_key() -> str:
    for name in ("SWITCHBOARD_API_KEY", "SWITCHBOARD_MASTER_KEY"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return master_key_file().read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=default_url(),
                        help=f"the gateway (env SWITCHBOARD_URL; default {DEFAULT_URL})")
    parser.add_argument("--api-key", default=default_api_key(),
                        help="master, admin or virtual key (env SWITCHBOARD_API_KEY or SWITCHBOARD_MASTER_KEY; "
                             f"default: the key `make run` keeps in {master_key_file()})")


NO_CREDENTIAL = ("no credential: pass --api-key, export SWITCHBOARD_MASTER_KEY (`source .switchboard/env` beside "
                 "`make run`), or run the command in the directory where `make run` runs")
