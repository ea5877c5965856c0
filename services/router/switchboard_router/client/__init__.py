"""The router's client package: the only code outside the router service that speaks its protocol.

:class:`RouterClient` (the facade's: completions over the Exchange lanes with
the unary fallback, with the caller's service token) and
:class:`SwitchboardRouter` (internal services': a virtual key, JSON in and
out, retries while the router cannot be reached). The message types callers
handle are re-exported here.
"""

from switchboard.v1.router_pb2 import (
    CompleteRequest,
    CompleteResponse,
    DeploymentState,
    DescribeModelsResponse,
    ListModelsResponse,
    ModelDescription,
    ModelInfo,
    Payer,
    RouteInfo,
    RoutingConstraints,
    StreamEvent,
)
from switchboard_router.client.internal import Completion, SwitchboardRouter
from switchboard_router.client.router_client import RouterClient, StreamHandle
from switchboard_router.operations import Operation

__all__ = ["CompleteRequest", "CompleteResponse", "Completion", "DeploymentState", "DescribeModelsResponse",
           "ListModelsResponse", "ModelDescription", "ModelInfo", "Operation",
           "Payer", "RouteInfo", "RouterClient", "RoutingConstraints", "StreamEvent", "StreamHandle",
           "SwitchboardRouter"]
