"""docs/providers.md's feature table names every registered provider, and its embeddings and completions /
moderations columns are true."""

from __future__ import annotations

from pathlib import Path

from switchboard_router.providers.openai_compat import FLAVOURS
from switchboard_router.providers.registry import adapter_for, known_providers

DOC = Path(__file__).resolve().parents[3] / "docs" / "providers.md"


def feature_rows() -> dict[str, dict[str, str]]:
    lines = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(header, cells, strict=True))
    return rows


def test_every_registered_provider_has_a_row() -> None:
    rows = feature_rows()
    missing = [name for name in known_providers() if name not in rows]
    assert not missing, f"docs/providers.md has no row for {missing}"
    unknown = [name for name in rows if name not in known_providers()]
    assert not unknown, f"docs/providers.md lists providers the registry does not know: {unknown}"


def test_the_embeddings_column_matches_the_adapters() -> None:
    for name, row in feature_rows().items():
        has_embeddings = hasattr(adapter_for(name), "build_embeddings_request")
        assert (row["embeddings"] == "yes") == has_embeddings, name


def test_every_row_fills_every_feature() -> None:
    for name, row in feature_rows().items():
        assert all(row.values()), f"{name}: empty cell"


def test_the_completions_and_moderations_column_matches_the_adapters() -> None:
    for name, row in feature_rows().items():
        flavour = FLAVOURS.get(name)
        expected = ("yes" if flavour and flavour.text_completions else "no",
                    "yes" if flavour and flavour.moderations else "no")
        assert tuple(row["completions / moderations"].split(" / ")) == expected, name
