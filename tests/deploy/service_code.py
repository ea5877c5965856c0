"""What the services themselves read, taken from their code: settings classes,
environment variable names, listen ports, health-checked gRPC service names and
HTTP probe routes. The deploy tests compare the manifests against these."""

from __future__ import annotations

import importlib
from functools import cache

from pydantic.fields import FieldInfo

from switchboard_common.settings import ServiceSettings


@cache
def settings_class(service: str) -> type[ServiceSettings]:
    """The one settings class defined in ``switchboard_<service>/settings.py``."""
    module = importlib.import_module(f"switchboard_{service}.settings")
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, ServiceSettings) and v.__module__ == module.__name__]
    assert len(found) == 1, f"{module.__name__} should define exactly one settings class, found {found}"
    return found[0]


def env_prefix(service: str) -> str:
    return str(settings_class(service).model_config.get("env_prefix", ""))


def env_names(service: str) -> dict[str, FieldInfo]:
    """Environment variable name -> field, as pydantic-settings reads them (prefix + upper-cased name)."""
    prefix = env_prefix(service)
    return {(prefix + name).upper(): field for name, field in settings_class(service).model_fields.items()}


def default(service: str, field: str) -> object:
    return settings_class(service).model_fields[field].default


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def is_grpc(service: str) -> bool:
    return "grpc_listen" in settings_class(service).model_fields


def grpc_port(service: str) -> int:
    return port_of(str(default(service, "grpc_listen")))


def grpc_service_name(service: str) -> str:
    """Full name of the service's gRPC API, as registered with the health servicer."""
    pb2 = importlib.import_module(f"switchboard.v1.{service}_pb2")
    (name,) = [s.full_name for s in pb2.DESCRIPTOR.services_by_name.values()]
    return name


def facade_route_paths(endpoint_name: str) -> set[str]:
    """Paths the facade's route modules serve with the endpoint function of that name."""
    import pkgutil

    import switchboard_facade.routes as routes

    paths: set[str] = set()
    for info in pkgutil.iter_modules(routes.__path__):
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", ()):
            if getattr(getattr(route, "endpoint", None), "__name__", "") == endpoint_name:
                paths.add(route.path)
    return paths


def peer_fields() -> dict[str, str]:
    """Facade settings that address a peer service: field name -> peer service."""
    fields = settings_class("facade").model_fields
    return {name: name.removesuffix("_address") for name in fields if name.endswith("_address")}


def framework_env(service: str) -> set[str]:
    """Variables a service's HTTP server reads itself: uvicorn's (the facade), found in uvicorn's own code."""
    if service != "facade":
        return set()
    import inspect
    import re

    import uvicorn.config

    return set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', inspect.getsource(uvicorn.config)))
