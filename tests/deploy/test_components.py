"""The optional components render on top of the prod overlay and stay consistent with the code."""

from __future__ import annotations

import shutil
from pathlib import Path

import kubernetes_validate

from switchboard_common import tracing
from tests.deploy import service_code as code
from tests.deploy.manifests import K8S, SERVICES, Rendered, env_of, render
from tests.deploy.test_render import KUBERNETES_VERSION


def render_with(component: str, tmp_path: Path) -> Rendered:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    overlay = copy / "overlays" / f"prod-{component}"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: switchboard\n"
        f"resources:\n  - ../prod\ncomponents:\n  - ../../components/{component}\n")
    return Rendered(f"prod+{component}", render(overlay))


def test_tracing_component_turns_tracing_on_everywhere(tmp_path: Path, rendered: dict[str, Rendered]) -> None:
    traced = render_with("tracing", tmp_path)
    for doc in traced.docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    for service in SERVICES:
        env = env_of(traced.container(service))
        assert env[tracing.ENDPOINT_ENV]["value"].startswith("http://")
        assert {n for n in env if n.startswith("OTEL_")} <= tracing.ENVIRONMENT
        assert tracing.ENDPOINT_ENV not in env_of(rendered["prod"].container(service)), "off unless the component"
    policy = traced.get("NetworkPolicy", "allow-otlp-export")
    endpoint_port = int(env_of(traced.container("router"))[tracing.ENDPOINT_ENV]["value"].rsplit(":", 1)[1])
    assert policy["spec"]["egress"][0]["ports"][0]["port"] == endpoint_port


def test_gateway_api_component_routes_the_host_to_the_facade_with_stream_timeouts(
        tmp_path: Path, rendered: dict[str, Rendered]) -> None:
    routed = render_with("gateway-api", tmp_path)
    for doc in routed.docs:
        if not doc["apiVersion"].startswith("gateway.networking.k8s.io/"):  # CRDs: no schema in the validator
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    route = routed.get("HTTPRoute", "switchboard")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["metadata"]["namespace"] == "switchboard"
    [parent] = route["spec"]["parentRefs"]
    assert parent["kind"] == "Gateway" and parent["name"] and parent["namespace"]
    ingress = routed.get("Ingress", "switchboard")
    assert route["spec"]["hostnames"] == [rule["host"] for rule in ingress["spec"]["rules"]], "the same public host"
    [rule] = route["spec"]["rules"]
    [backend] = rule["backendRefs"]
    service = routed.get("Service", backend["name"])
    assert backend["kind"] == "Service" and backend["port"] in {p["port"] for p in service["spec"]["ports"]}
    assert int(str(code.default("facade", "port"))) == backend["port"]
    read_timeout = int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"])
    for name in ("request", "backendRequest"):
        assert rule["timeouts"][name].endswith("s") and int(rule["timeouts"][name][:-1]) >= read_timeout
    policy = routed.get("NetworkPolicy", "facade-from-gateway")
    facade_labels = routed.deployment("facade")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= facade_labels.items()
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"][
        "kubernetes.io/metadata.name"] == parent["namespace"], "the Gateway's proxies may reach the facade"
    assert policy["spec"]["ingress"][0]["ports"][0]["port"] == backend["port"]
    assert rendered["prod"].of_kind("HTTPRoute") == [], "off unless the component"


def test_sso_component_gives_the_facade_its_provider_from_a_secret_and_a_way_out(
        tmp_path: Path, rendered: dict[str, Rendered]) -> None:
    signed = render_with("sso", tmp_path)
    for doc in signed.docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    env = env_of(signed.container("facade"))
    for name, key in (("SWITCHBOARD_OIDC_ISSUER", "issuer"), ("SWITCHBOARD_OIDC_CLIENT_ID", "client-id"),
                      ("SWITCHBOARD_OIDC_CLIENT_SECRET", "client-secret")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "switchboard-oidc", "key": key}
    assert {n for n in env if n.startswith("SWITCHBOARD_OIDC_")} <= set(code.env_names("facade"))
    for service in SERVICES:
        if service != "facade":
            assert not any(n.startswith("SWITCHBOARD_OIDC_") for n in env_of(signed.container(service)))
        assert "SWITCHBOARD_OIDC_ISSUER" not in env_of(rendered["prod"].container(service)), "off unless the component"
    policy = signed.get("NetworkPolicy", "facade-to-identity-provider")
    facade_labels = signed.deployment("facade")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= facade_labels.items()
    assert policy["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]
