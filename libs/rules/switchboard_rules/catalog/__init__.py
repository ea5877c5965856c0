"""The catalog file, as every service reads it (see :mod:`switchboard_rules.catalog.file`)."""

from switchboard_rules.catalog.envsubst import expand
from switchboard_rules.catalog.file import (
    STRATEGIES,
    CatalogError,
    CatalogFile,
    DeploymentSpec,
    ModelSpec,
    Stored,
    load_catalog_file,
    parse_catalog_file,
    read_document,
    refuse_to_start,
    refusing_invalid_catalog,
    with_what_fits,
)

__all__ = ["STRATEGIES", "CatalogError", "CatalogFile", "DeploymentSpec", "ModelSpec", "Stored", "expand",
           "load_catalog_file", "parse_catalog_file", "read_document", "refuse_to_start",
           "refusing_invalid_catalog", "with_what_fits"]
