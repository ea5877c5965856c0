"""``switchboard import-litellm config.yaml``: a LiteLLM proxy config as the gateway's model catalog.

Converts ``model_list`` (``litellm_params``, ``model_info``), ``litellm_settings`` and ``router_settings``
exactly as the router and billing read a LiteLLM config given to them directly (the conversion is
:mod:`switchboard_rules.catalog.litellm`), writes the catalog's YAML (to ``--output``, else standard output),
and says on standard error, one line each, which settings it did not carry over and why. The output is
checked as the catalog reads it before it is written. Exit status: 0 when converted, 1 when the config
cannot be read or converted (the reason is printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

import yaml

from switchboard_rules.catalog import CatalogError, parse_catalog_file, read_document
from switchboard_rules.catalog.litellm import LiteLLMError, convert_config, is_litellm_config

DESCRIPTION = ("Convert a LiteLLM config.yaml into the gateway's model catalog (config/switchboard.yaml). "
               "Settings that are not supported are listed on standard error; the gateway can also read the "
               "LiteLLM file as it is (SWITCHBOARD_CONFIG=config.yaml) and logs the same list at start.")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "import-litellm", help="convert a LiteLLM config.yaml into the model catalog", description=DESCRIPTION)
    parser.add_argument("config", type=Path, help="the LiteLLM config.yaml")
    parser.add_argument("-o", "--output", type=Path, help="write the catalog here (default: standard output)")
    parser.set_defaults(func=run)
    return parser


def render(document: dict[str, Any], source: str, unsupported: tuple[str, ...]) -> str:
    """The catalog's YAML, headed by where it comes from and what was left out."""
    lines = [f"# Converted from the LiteLLM config {source} by `switchboard import-litellm`.",
             "# ${VAR} is read from the gateway's environment (LiteLLM's os.environ/VAR)."]
    if unsupported:
        lines.append("# Not carried over:")
        lines.extend(f"#   - {note}" for note in unsupported)
    return "\n".join(lines) + "\n" + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        raw = read_document(args.config)
        if not is_litellm_config(raw):
            raise LiteLLMError(f"{args.config} is not a LiteLLM config (it has no model_list)")
        converted = convert_config(raw, str(args.config))
        parse_catalog_file(converted.document, source=str(args.config), env={})
    except (CatalogError, LiteLLMError) as exc:
        err.write(f"error: {exc}\n")
        return 1
    text = render(converted.document, str(args.config), converted.unsupported)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        err.write(f"Wrote {args.output}: {len(converted.document['models'])} models.\n")
    else:
        out.write(text)
    for note in converted.unsupported:
        err.write(f"not supported: {note}\n")
    return 0
