"""The manifests and images say what the services actually read.

Both sides come from code: the settings classes (field names -> SWITCHBOARD_*
variables, default listen ports), the protobuf descriptors (health-checked
service names), the facade's routes (probe paths), the metrics module (the
/metrics port setting) — and the rendered manifests, parsed.
"""

from __future__ import annotations

import re

import pytest

from switchboard_common import metrics, tracing
from tests.deploy import service_code as code
from tests.deploy.manifests import OVERLAYS, SERVICES, Rendered, env_of, port_named, workload

_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _value(env: dict, name: str) -> str:  # type: ignore[type-arg]
    assert name in env, f"{name} is not set"
    assert "value" in env[name], f"{name} should be a literal value"
    return str(env[name]["value"])


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_is_one_the_service_reads(rendered: dict[str, Rendered], overlay: str, service: str) -> None:
    container = rendered[overlay].container(service)
    env = env_of(container)
    known = code.env_names(service)
    referenced = {m for e in env.values() for m in _REFERENCE.findall(str(e.get("value", "")))}
    prefix = code.env_prefix(service)
    for name in env:
        if name.startswith(prefix):
            assert name in known, f"{overlay}/{service}: {name} is not a field of {code.settings_class(service)}"
        elif name.startswith("OTEL_"):
            assert name in tracing.ENVIRONMENT, f"{overlay}/{service}: tracing does not read {name}"
        elif name in code.framework_env(service):
            continue
        else:
            assert name in referenced, f"{overlay}/{service}: {name} is neither a setting nor used by one"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_secrets_come_from_secret_refs(rendered: dict[str, Rendered], overlay: str, service: str) -> None:
    """Settings that hold credentials (keys, peppers, DSNs with passwords) are never literals in a manifest."""
    env = env_of(rendered[overlay].container(service))
    for name in code.env_names(service):
        if name in env and re.search(r"(_KEY|_PEPPER|DATABASE_URL)$", name):
            entry = env[name]
            literal = str(entry.get("value", ""))
            assert "secretKeyRef" in entry.get("valueFrom", {}) or _REFERENCE.search(literal), \
                f"{overlay}/{service}: {name} must come from a Secret"


@pytest.mark.parametrize("service", ["auth", "billing"])
def test_prod_services_use_their_external_database(rendered: dict[str, Rendered], service: str) -> None:
    assert "SWITCHBOARD_DATABASE_URL" in code.env_names(service)
    entry = env_of(rendered["prod"].container(service))["SWITCHBOARD_DATABASE_URL"]
    assert entry["valueFrom"]["secretKeyRef"]["key"] == "database-url"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", [s for s in SERVICES if code.is_grpc(s)])
def test_grpc_ports_and_probes_match_the_service(rendered: dict[str, Rendered], overlay: str, service: str) -> None:
    r = rendered[overlay]
    container = r.container(service)
    port = code.grpc_port(service)
    assert code.port_of(_value(env_of(container), "SWITCHBOARD_GRPC_LISTEN")) == port
    assert port_named(container, "grpc") == port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == port, f"{service} {probe}"
    assert container["livenessProbe"]["grpc"].get("service", "") == ""
    assert container["readinessProbe"]["grpc"]["service"] == code.grpc_service_name(service)
    svc = r.get("Service", f"switchboard-{service}")
    grpc = next(p for p in svc["spec"]["ports"] if p["name"] == "grpc")
    assert grpc["port"] == port and grpc["targetPort"] in ("grpc", port)
    assert svc["spec"]["clusterIP"] == "None", "clients balance over every pod through a headless Service"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", [s for s in SERVICES if code.is_grpc(s)])
def test_metrics_port_is_declared_everywhere_it_is_used(rendered: dict[str, Rendered], overlay: str,
                                                         service: str) -> None:
    assert metrics.PORT_SETTING in code.settings_class(service).model_fields
    r = rendered[overlay]
    env_name = (code.env_prefix(service) + metrics.PORT_SETTING).upper()
    port = int(_value(env_of(r.container(service)), env_name))
    assert port > 0 and port_named(r.container(service), "metrics") == port
    annotations = r.deployment(service)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == metrics.PATH


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_facade_port_probes_and_peers_match_the_code(rendered: dict[str, Rendered], overlay: str) -> None:
    r = rendered[overlay]
    container = r.container("facade")
    env = env_of(container)
    port = int(str(code.default("facade", "port")))
    assert int(_value(env, "SWITCHBOARD_PORT")) == port
    assert port_named(container, "http") == port
    assert container["livenessProbe"]["httpGet"]["path"] in code.facade_route_paths("liveness")
    assert container["readinessProbe"]["httpGet"]["path"] in code.facade_route_paths("readiness")
    assert container["startupProbe"]["httpGet"]["path"] in code.facade_route_paths("liveness")
    annotations = r.deployment("facade")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == metrics.PATH
    peers = code.peer_fields()
    assert peers, "the facade has no peer addresses"
    for field, peer in peers.items():
        address = _value(env, (code.env_prefix("facade") + field).upper())
        match = re.fullmatch(r"dns:///([a-z0-9-]+):(\d+)", address)
        assert match, f"{field}={address} should be dns:///<service>:<port>"
        host, peer_port = match.group(1), int(match.group(2))
        assert host == f"switchboard-{peer}" and r.get("Service", host)
        assert peer_port == code.grpc_port(peer)


def test_ingress_reaches_the_facade_port(rendered: dict[str, Rendered]) -> None:
    r = rendered["prod"]
    backend = r.get("Ingress", "switchboard")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    svc = r.get("Service", backend["name"])
    port = next(p for p in svc["spec"]["ports"] if p["name"] == backend["port"]["name"])
    assert backend["name"] == "switchboard-facade" and port["port"] == int(str(code.default("facade", "port")))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_open_ports_the_pods_listen_on(rendered: dict[str, Rendered], overlay: str) -> None:
    r = rendered[overlay]
    listening: dict[str, set[int]] = {}
    for resource, pod in r.pod_specs():
        name = workload(resource["spec"]["template"]["metadata"]["labels"])
        listening[name] = {p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
    for policy in r.of_kind("NetworkPolicy"):
        selected = workload(policy["spec"]["podSelector"].get("matchLabels", {}))
        if selected is None:
            continue
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                assert port["port"] in listening[selected], f"{policy['metadata']['name']}: {port}"
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                target = workload(peer.get("podSelector", {}).get("matchLabels", {}))
                if target in listening:
                    assert {p["port"] for p in rule["ports"]} <= listening[target], policy["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_router_reaches_the_internet(rendered: dict[str, Rendered], overlay: str) -> None:
    r = rendered[overlay]
    open_to_world = set()
    for policy in r.of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            if any("ipBlock" in peer for peer in rule.get("to", [])):
                open_to_world.add(workload(policy["spec"]["podSelector"]["matchLabels"]))
    assert open_to_world == {"router"}
    facade_ingress = r.get("NetworkPolicy", "facade")["spec"]["ingress"]
    # In the namespace, auth and billing take calls from the facade and the router (which admits and bills
    # internal services' calls), the router from the facade.
    for name, callers in (("auth", {"facade", "router"}), ("billing", {"facade", "router"}), ("router", {"facade"})):
        sources = [p for rule in r.get("NetworkPolicy", name)["spec"]["ingress"] for p in rule["from"]
                   if "podSelector" in p and "namespaceSelector" not in p]
        assert {workload(s["podSelector"]["matchLabels"]) for s in sources} == callers
    assert any("namespaceSelector" in p for rule in facade_ingress for p in rule["from"])
