"""Internal services reach the router only as the docs say: the prod overlay's NetworkPolicies, evaluated
as Kubernetes does, admit the example client (deploy/k8s/examples/router-client) and refuse a pod or a
namespace without its label; the example validates and hands the client its key from a Secret."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.deploy import service_code as code
from tests.deploy.manifests import K8S, Rendered, env_of, render
from tests.deploy.test_render import KUBERNETES_VERSION

Labels = dict[str, str]
NAMESPACE = "switchboard"


def selects(selector: dict[str, Any] | None, labels: Labels) -> bool:
    """A label selector (matchLabels and matchExpressions) matches these labels; {} matches everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if (operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and labels.get(key) in values) \
                or (operator == "Exists" and key not in labels) or (operator == "DoesNotExist" and key in labels):
            return False
    return True


def admitted(policies: list[dict[str, Any]], target: Labels, source: Labels, source_namespace: Labels,
             port: int) -> bool:
    """Whether traffic from a pod (its labels and its namespace's) reaches ``target`` in NAMESPACE on ``port``.

    Policies selecting the target that include Ingress isolate it; then some rule must allow the source."""
    isolating = [p for p in policies if selects(p["spec"]["podSelector"], target)
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get("ingress") or ():
            if rule.get("ports") and not any(p.get("port") == port for p in rule["ports"]):
                continue
            if not rule.get("from"):
                return True  # a rule without sources admits every source
            for peer in rule["from"]:
                if "ipBlock" in peer:
                    continue
                namespace_ok = (selects(peer["namespaceSelector"], source_namespace) if "namespaceSelector" in peer
                                else source_namespace.get("kubernetes.io/metadata.name") == NAMESPACE)
                if namespace_ok and ("podSelector" not in peer or selects(peer["podSelector"], source)):
                    return True
    return False


@pytest.fixture(scope="module")
def example() -> Rendered:
    return Rendered("router-client", render(K8S / "examples" / "router-client"))


def client_pod(example: Rendered) -> tuple[Labels, Labels]:
    """(pod labels, namespace labels) of the example client, as the cluster would see them."""
    deployment = example.get("Deployment", "report-writer")
    namespace = example.get("Namespace", deployment["metadata"]["namespace"])
    labels = {**namespace["metadata"].get("labels", {}), "kubernetes.io/metadata.name": namespace["metadata"]["name"]}
    return dict(deployment["spec"]["template"]["metadata"]["labels"]), labels


def test_the_router_admits_the_labelled_example_client_and_nothing_unlabelled(
        rendered: dict[str, Rendered], example: Rendered) -> None:
    prod = rendered["prod"]
    policies = prod.of_kind("NetworkPolicy")
    router = prod.deployment("router")["spec"]["template"]["metadata"]["labels"]
    port = code.grpc_port("router")
    pod, namespace = client_pod(example)
    assert admitted(policies, router, pod, namespace, port), "the example client is refused"
    unlabelled = {k: v for k, v in pod.items() if k != "switchboard.io/router-client"}
    assert not admitted(policies, router, unlabelled, namespace, port), "a pod without the label gets in"
    other_namespace = {"kubernetes.io/metadata.name": "elsewhere"}
    assert not admitted(policies, router, pod, other_namespace, port), "a namespace without the label gets in"
    assert not admitted(policies, router, pod, namespace, code.grpc_port("auth")), "another port gets in"
    for service in ("auth", "billing"):
        target = prod.deployment(service)["spec"]["template"]["metadata"]["labels"]
        assert not admitted(policies, target, pod, namespace, code.grpc_port(service)), f"the client reaches {service}"
    facade = prod.deployment("facade")["spec"]["template"]["metadata"]["labels"]
    own = {"kubernetes.io/metadata.name": NAMESPACE}
    assert admitted(policies, router, facade, own, port), "the facade must still reach the router"


def test_the_example_validates_and_takes_its_key_from_a_secret(example: Rendered) -> None:
    for doc in example.docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    deployment = example.get("Deployment", "report-writer")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["SWITCHBOARD_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "router-client-key"
    assert env["SWITCHBOARD_ROUTER_ADDRESS"]["value"].endswith(f"switchboard-router.{NAMESPACE}.svc.cluster.local:"
                                                                f"{code.grpc_port('router')}")
    assert container["image"].startswith("ghcr.io/switchboard-gateway/switchboard-router:")
    egress = example.get("NetworkPolicy", "report-writer-to-router")
    assert any(p.get("port") == code.grpc_port("router") for rule in egress["spec"]["egress"] for p in rule["ports"])
