"""The catalog file, as every service reads it (see :mod:`switchboard_rules.catalog.file`)."""

from switchboard_rules.catalog.envsubst import expand
from switchboard_rules.catalog.file import (
    STRATEGIES,
    CatalogError,
    CatalogFile,
    DeploymentSpec,
    ModelSpec,
    load_catalog_file,
    parse_catalog_file,
)

__all__ = ["STRATEGIES", "CatalogError", "CatalogFile", "DeploymentSpec", "ModelSpec", "expand",
           "load_catalog_file", "parse_catalog_file"]
