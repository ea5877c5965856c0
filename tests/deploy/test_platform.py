"""What a platform team expects of the manifests: recommended labels, images that a workflow builds
under the names the manifests and docker-compose.yaml run, the facade trusting its proxy's forwarded
headers, the service credential from a Secret, and a compose file that matches the manifests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tests.deploy import service_code as code
from tests.deploy.manifests import K8S, OVERLAYS, REPO, SERVICES, Rendered, env_of

COMPONENTS = {*SERVICES, "migrate"}
#: Settings the manifests tune for several replicas behind a load balancer; compose runs one of each.
CLUSTER_TUNING = {"SWITCHBOARD_LOG_LEVEL", "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", "SWITCHBOARD_MAX_BODY_BYTES",
                  "SWITCHBOARD_ROUTER_EXCHANGE_STREAMS"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_application_is_switchboard_and_the_component_is_the_service(rendered: dict[str, Rendered],
                                                                          overlay: str) -> None:
    for doc in rendered[overlay].docs:
        labels = doc["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/part-of") != "switchboard" or doc["kind"] == "Namespace":
            continue
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "switchboard", where
        if doc["kind"] not in ("NetworkPolicy", "ConfigMap"):
            assert labels.get("app.kubernetes.io/component") in COMPONENTS, where
    for service in SERVICES:
        deployment = rendered[overlay].deployment(service)
        expected = {"app.kubernetes.io/name": "switchboard", "app.kubernetes.io/component": service}
        assert deployment["spec"]["selector"]["matchLabels"] == expected
        assert rendered[overlay].get("Service", f"switchboard-{service}")["spec"]["selector"] == expected


def test_the_facade_trusts_the_forwarded_proto_of_the_ingress_controller(rendered: dict[str, Rendered]) -> None:
    """Behind TLS termination the dashboard must see https: uvicorn's proxy-header handling with the value
    the manifest sets accepts X-Forwarded-Proto from an ingress controller pod's address."""
    value = env_of(rendered["prod"].container("facade"))["FORWARDED_ALLOW_IPS"]["value"]
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["scheme"])

    scope = {"type": "http", "scheme": "http", "client": ("10.244.3.17", 40112), "server": ("10.244.1.5", 4000),
             "headers": [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"203.0.113.9")], "path": "/ui"}
    asyncio.run(ProxyHeadersMiddleware(app, trusted_hosts=value)(scope, None, None))
    assert seen == ["https"]
    sources = [peer for rule in rendered["prod"].get("NetworkPolicy", "facade")["spec"]["ingress"]
               for peer in rule["from"]]
    assert sources and all("namespaceSelector" in peer for peer in sources), \
        "only the ingress controller's and the monitoring namespace's pods reach the facade"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_pod_gets_only_the_service_tokens_it_presents_or_checks(rendered: dict[str, Rendered],
                                                                      overlay: str) -> None:
    """The facade and the router present their own token; auth and billing check both; the router checks the
    facade's. No pod holds a token it has no use for."""
    wanted = {
        "facade": {"SWITCHBOARD_SERVICE_TOKEN": "facade"},
        "router": {"SWITCHBOARD_SERVICE_TOKEN": "router", "SWITCHBOARD_FACADE_TOKEN": "facade"},
        "auth": {"SWITCHBOARD_FACADE_TOKEN": "facade", "SWITCHBOARD_ROUTER_TOKEN": "router"},
        "billing": {"SWITCHBOARD_FACADE_TOKEN": "facade", "SWITCHBOARD_ROUTER_TOKEN": "router"},
    }
    for service, tokens in wanted.items():
        env = env_of(rendered[overlay].container(service))
        held = {name: entry["valueFrom"]["secretKeyRef"] for name, entry in env.items() if name.endswith("_TOKEN")}
        assert {name: (ref["name"], ref["key"]) for name, ref in held.items()} == {
            name: ("switchboard-service-tokens", key) for name, key in tokens.items()}, service
        assert set(tokens) <= set(code.env_names(service))


def _base_images() -> dict[str, str]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    return {i["name"].removeprefix("switchboard-"): f"{i['newName']}:{i['newTag']}" for i in kustomization["images"]}


def test_a_workflow_builds_and_pushes_every_image_the_manifests_name() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "images.yaml").read_text())
    [job] = workflow["jobs"].values()
    assert sorted(job["strategy"]["matrix"]["service"]) == sorted(SERVICES)
    steps = {s.get("uses", "").split("@")[0]: s for s in job["steps"]}
    build = steps["docker/build-push-action"]["with"]
    assert build["file"] == "services/${{ matrix.service }}/Dockerfile" and build["context"] == "."
    assert "push" in build and job["permissions"]["packages"] == "write"
    images = steps["docker/metadata-action"]["with"]["images"].replace(
        "${{ env.IMAGE_PREFIX }}", workflow["env"]["IMAGE_PREFIX"])
    tags = steps["docker/metadata-action"]["with"]["tags"]
    assert "type=semver,pattern={{version}}" in tags, "a v0.1.0 tag is pushed as 0.1.0, what the overlays pin"
    for service, image in _base_images().items():
        assert image.rsplit(":", 1)[0] == images.replace("${{ matrix.service }}", service)
        assert (REPO / "services" / service / "Dockerfile").is_file()


def test_compose_runs_the_same_images_ports_and_settings_as_the_manifests(rendered: dict[str, Rendered]) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]
    images = _base_images()
    prod = rendered["prod"]
    for service in SERVICES:
        spec = compose[service]
        assert spec["image"] == images[service]
        assert spec["build"]["dockerfile"] == f"services/{service}/Dockerfile"
        env = {k: str(v) for k, v in spec["environment"].items()}
        manifest = env_of(prod.container(service))
        known = code.env_names(service)
        for name in env:
            if name.startswith("SWITCHBOARD_"):
                assert name in known, f"compose {service}: {name} is not a setting"
        shared = {n for n in manifest if n.startswith("SWITCHBOARD_") and n not in CLUSTER_TUNING}
        assert shared <= set(env), f"compose {service} lacks {shared - set(env)}"
        if code.is_grpc(service):
            assert code.port_of(env["SWITCHBOARD_GRPC_LISTEN"]) == code.grpc_port(service)
        for field, peer in code.peer_fields().items() if service == "facade" else ():
            host, port = env[(code.env_prefix("facade") + field).upper()].split(":")
            assert host == peer and int(port) == code.grpc_port(peer)
    port = env_of(prod.container("facade"))["SWITCHBOARD_PORT"]["value"]
    assert compose["facade"]["ports"] == [f"{port}:{port}"] and int(port) == code.default("facade", "port")
    assert all("ports" not in compose[s] for s in ("auth", "billing", "router", "postgres", "redis"))
